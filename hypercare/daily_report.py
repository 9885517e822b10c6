"""The daily hypercare report, wired: compose it from the store (dashboards/daily_report.py), render HTML
and PDF, keep it in the archive (tickets/daily_reports.py), send it to the notification targets tagged for
it, and -- in ``hypercare serve`` -- do all of that once a day at ``dashboard.daily_report.send_at`` in the
site's time zone, for the day before.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import apprise
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core.settings import redact_url
from dashboards.daily_report import DailyReport, build, render_html, render_pdf
from hypercare.config import Settings
from tickets.daily_reports import archive, mark_sent, previous_criteria, was_sent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Produced:
    report: DailyReport
    html: str
    pdf: bytes
    sent_to: int = 0
    error: str | None = None


def yesterday(settings: Settings, now: datetime) -> date:
    """The day before ``now`` in the site's time zone (``dashboard.daily_report.timezone``)."""
    return now.astimezone(ZoneInfo(settings.dashboard.daily_report.timezone)).date() - timedelta(days=1)


def produce(
    settings: Settings,
    engine: Engine,
    day: date,
    *,
    now: datetime | None = None,
    keep: bool = False,
    send: bool = False,
) -> Produced:
    """The report of ``day``: rendered; archived when ``keep`` (or ``send``); sent when ``send``."""
    now = now or datetime.now(UTC)
    factory = sessionmaker(bind=engine)
    with factory() as session:
        previous = previous_criteria(session, day)
    with engine.connect() as conn:
        report = build(conn, settings, day, now=now, previous=previous)
    html = render_html(report)
    pdf = render_pdf(html)
    produced = Produced(report, html, pdf)
    if keep or send:
        with factory.begin() as session:
            archive(
                session,
                day=day,
                timezone=report.timezone,
                generated_at=now,
                title=report.title,
                html=html,
                pdf=pdf,
                criteria=report.states(),
            )
    if send:
        sent, error = deliver(settings, produced)
        with factory.begin() as session:
            mark_sent(session, day, sent, error)
        produced = Produced(report, html, pdf, sent, error)
    return produced


def deliver(settings: Settings, produced: Produced) -> tuple[int, str | None]:
    """Send the report (HTML body, PDF attached) to every notification target carrying one of
    ``dashboard.daily_report.target_tags`` (every target when empty): (targets reached, errors)."""
    tags = set(settings.dashboard.daily_report.target_tags)
    targets = [t for t in settings.notifications.targets if not tags or tags & set(t.tags)]
    if not targets:
        return 0, "no notification target carries a tag of dashboard.daily_report.target_tags"
    sent, errors = 0, []
    with tempfile.TemporaryDirectory(prefix="hypercare-report-") as folder:
        pdf_path = Path(folder) / f"hypercare-daily-{produced.report.day.isoformat()}.pdf"
        pdf_path.write_bytes(produced.pdf)
        for index, target in enumerate(settings.notifications.targets):
            if target not in targets:
                continue
            ap = apprise.Apprise()
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                added = ap.add(target.url.get_secret_value())
            if not added:
                errors.append(f"notifications.targets[{index}]: not a URL apprise understands")
                continue
            ok = ap.notify(
                body=produced.html,
                title=produced.report.title,
                body_format=apprise.NotifyFormat.HTML,
                attach=apprise.AppriseAttachment(str(pdf_path)),
            )
            if ok:
                sent += 1
            else:
                errors.append(f"notifications.targets[{index}]: delivery failed")
    error = "; ".join(errors) or None
    return sent, None if error is None else redact_url(error)


def next_run(settings: Settings, now: datetime) -> datetime:
    """The next ``send_at`` of the site's time zone after ``now`` (UTC)."""
    cfg = settings.dashboard.daily_report
    zone = ZoneInfo(cfg.timezone)
    hour, minute = (int(x) for x in cfg.send_at.split(":"))
    local = now.astimezone(zone)
    at = datetime.combine(local.date(), time(hour, minute), tzinfo=zone)
    if at <= local:
        at = datetime.combine(local.date() + timedelta(days=1), time(hour, minute), tzinfo=zone)
    return at.astimezone(UTC)


def send_if_due(settings: Settings, engine: Engine, now: datetime) -> Produced | None:
    """Yesterday's report, produced, archived and sent unless that was done already (by another process,
    or before a restart)."""
    day = yesterday(settings, now)
    with Session(engine) as session:
        if was_sent(session, day):
            return None
    local_now = now.astimezone(ZoneInfo(settings.dashboard.daily_report.timezone))
    hour, minute = (int(x) for x in settings.dashboard.daily_report.send_at.split(":"))
    if local_now.time() < time(hour, minute):
        return None
    produced = produce(settings, engine, day, now=now, send=True)
    log.info(
        "daily report sent",
        extra={"day": day.isoformat(), "sent_to": produced.sent_to, "error": produced.error},
    )
    return produced


async def report_forever(settings: Settings, engine: Engine) -> None:
    """``hypercare serve``: the report of the day before, every day at ``send_at`` site time. Checked every
    minute, so a server started after ``send_at`` still sends that day's (once: the archive says so)."""
    while True:
        try:
            await asyncio.to_thread(send_if_due, settings, engine, datetime.now(UTC))
        except (SQLAlchemyError, OSError) as exc:
            log.warning("daily report not sent; retrying", extra={"error": str(exc).splitlines()[0][:200]})
        await asyncio.sleep(60)
