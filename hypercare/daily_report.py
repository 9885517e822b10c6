"""The daily hypercare report, wired: compose it from the store (dashboards/daily_report.py), render HTML
and PDF, keep it in the archive (tickets/daily_reports.py), send it to the notification targets tagged for
it, and -- in ``hypercare serve`` -- do all of that once a day at ``dashboard.daily_report.send_at`` in the
site's time zone, for the day before.

Languages: the report is rendered (and archived) in ``site.language`` unless a language is asked for
(``hypercare report daily --language``); each notification target receives it in its own ``language``
(``notifications.targets[].language``, default the site's), rendered once per language.
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
    language: str = "en"
    """The language ``html`` and ``pdf`` are in."""

    @property
    def title(self) -> str:
        return self.report.title_in(self.language)


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
    language: str | None = None,
) -> Produced:
    """The report of ``day``: rendered in ``language`` (default ``site.language``); archived when ``keep``
    (or ``send``); sent when ``send`` (each target in its own language)."""
    now = now or datetime.now(UTC)
    language = language or settings.site.language
    factory = sessionmaker(bind=engine)
    with factory() as session:
        previous = previous_criteria(session, day)
    with engine.connect() as conn:
        report = build(conn, settings, day, now=now, previous=previous)
    html = render_html(report, language)
    pdf = render_pdf(html)
    produced = Produced(report, html, pdf, language=language)
    if keep or send:
        with factory.begin() as session:
            archive(
                session,
                day=day,
                timezone=report.timezone,
                generated_at=now,
                title=produced.title,
                html=html,
                pdf=pdf,
                criteria=report.states(),
            )
    if send:
        sent, error = deliver(settings, produced)
        with factory.begin() as session:
            mark_sent(session, day, sent, error)
        produced = Produced(report, html, pdf, sent, error, language)
    return produced


def deliver(settings: Settings, produced: Produced) -> tuple[int, str | None]:
    """Send the report (HTML body, PDF attached) to every notification target carrying one of
    ``dashboard.daily_report.target_tags`` (every target when empty), each in the target's ``language``
    (else the site's): (targets reached, errors)."""
    tags = set(settings.dashboard.daily_report.target_tags)
    targets = [t for t in settings.notifications.targets if not tags or tags & set(t.tags)]
    if not targets:
        return 0, "no notification target carries a tag of dashboard.daily_report.target_tags"
    sent, errors = 0, []
    rendered: dict[str, Produced] = {produced.language: produced}
    with tempfile.TemporaryDirectory(prefix="hypercare-report-") as folder:
        for index, target in enumerate(settings.notifications.targets):
            if target not in targets:
                continue
            language = target.language or settings.site.language
            if language not in rendered:
                html = render_html(produced.report, language)
                rendered[language] = Produced(produced.report, html, render_pdf(html), language=language)
            version = rendered[language]
            pdf_path = Path(folder) / language / f"hypercare-daily-{produced.report.day.isoformat()}.pdf"
            if not pdf_path.exists():
                pdf_path.parent.mkdir()
                pdf_path.write_bytes(version.pdf)
            ap = apprise.Apprise()
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                added = ap.add(target.url.get_secret_value())
            if not added:
                errors.append(f"notifications.targets[{index}]: not a URL apprise understands")
                continue
            ok = ap.notify(
                body=version.html,
                title=version.title,
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
