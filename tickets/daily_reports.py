"""The archive of the daily hypercare reports: each day's report as it was sent (HTML and PDF), the exit
criteria's states (the next report's trend reads them) and to how many notification targets it went.

The report is composed elsewhere (dashboards/daily_report.py, by the wiring: ``hypercare report daily``
and the daily schedule of ``hypercare serve``); the queue keeps it and its UI lists it (``/reports/daily``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from sqlalchemy import Date, Integer, LargeBinary, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import Base, JSONType, UTCDateTime


class ArchivedReport(Base):
    """One day's daily report, as rendered (one row a day: a re-run replaces it)."""

    __tablename__ = "daily_report"
    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, unique=True)
    """The day reported on, in ``timezone``."""
    timezone: Mapped[str] = mapped_column(String(64))
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    title: Mapped[str] = mapped_column(String(200))
    html: Mapped[str] = mapped_column(Text)
    pdf: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    criteria: Mapped[dict[str, bool | None]] = mapped_column(JSONType)
    """Exit criterion name -> green (true), red (false) or no data (null)."""
    sent_to: Mapped[int] = mapped_column(Integer, default=0)
    """Notification targets that accepted it (0: archived only, or every delivery failed)."""
    delivery_error: Mapped[str | None] = mapped_column(Text)


def archive(
    session: Session,
    *,
    day: date,
    timezone: str,
    generated_at: datetime,
    title: str,
    html: str,
    pdf: bytes,
    criteria: Mapping[str, bool | None],
) -> ArchivedReport:
    """Keep the report of ``day`` (replacing an earlier rendering of the same day)."""
    row = session.scalars(select(ArchivedReport).where(ArchivedReport.day == day)).first()
    if row is None:
        row = ArchivedReport(day=day, sent_to=0)
        session.add(row)
    row.timezone, row.generated_at, row.title = timezone, generated_at, title[:200]
    row.html, row.pdf, row.criteria = html, pdf, dict(criteria)
    session.flush()
    return row


def mark_sent(session: Session, day: date, sent_to: int, error: str | None) -> None:
    row = session.scalars(select(ArchivedReport).where(ArchivedReport.day == day)).one()
    row.sent_to, row.delivery_error = sent_to, error
    session.flush()


def previous_criteria(session: Session, day: date) -> dict[str, bool | None] | None:
    """The exit criteria's states of the latest archived report before ``day`` (None: there is none)."""
    row = session.scalars(
        select(ArchivedReport).where(ArchivedReport.day < day).order_by(ArchivedReport.day.desc()).limit(1)
    ).first()
    return None if row is None else dict(row.criteria)


def archived(session: Session, *, limit: int = 120) -> list[ArchivedReport]:
    """The latest archived reports, newest first (HTML and PDF not loaded)."""
    return list(
        session.scalars(select(ArchivedReport).order_by(ArchivedReport.day.desc()).limit(limit)).all()
    )


def report_of(session: Session, day: date) -> ArchivedReport | None:
    return session.scalars(select(ArchivedReport).where(ArchivedReport.day == day)).first()


def was_sent(session: Session, day: date) -> bool:
    row = report_of(session, day)
    return row is not None and (row.sent_to > 0 or row.delivery_error is not None)
