"""The daily hypercare report managers send during go-live: one page for one day of the site's time zone,
as an HTML e-mail body and a PDF of the same HTML (WeasyPrint).

What it shows, each from the definitions the dashboards use (so the report and the overview agree):

* yesterday's inflow and outflow (created / resolved between local midnights) and the backlog left;
* open P1 and P2 tickets now, with owner (assignee) and age;
* SLA attainment: the clocks decided that day per priority, and P1-P2 over the exit window;
* the exit criteria (:func:`dashboards.data_overview.exit_criteria`) with their trend against the previous
  archived report (improved, worse, unchanged);
* the dual run's cutover gate (:func:`dashboards.data_cutover.load_dualrun`);
* the top recurring causes of the last seven days (tickets and occurrences per check or category);
* the workarounds still in place (:func:`dashboards.data_service.in_place`), with owner and review date.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import ColumnElement, Connection, and_, case, func, or_, select
from sqlalchemy.orm import Session

from core.i18n import N_, Gettext, html_lang, translations
from core.vocabulary import OPEN_STATUSES, Priority
from dashboards.data import Filters, in_range
from dashboards.data_cutover import DualRunStatus, load_dualrun
from dashboards.data_overview import Criterion, exit_criteria, pack_map
from dashboards.data_service import ActiveWorkaround, SlaCompliance, active_workarounds, combined, in_place
from dashboards.data_service import sla_compliance as sla_of
from dashboards.present import Verdict, as_written, at_least, money, pct, status_word
from dashboards.settings import DashboardsConfig
from tickets.i18n import word
from tickets.models import Ticket, User

TEMPLATES = Path(__file__).resolve().parent / "templates"
TOP_CAUSES = 5


@dataclass(frozen=True, slots=True)
class LocalDays(Filters):
    """A range of days of a time zone: every query bounded by ``start_at``/``end_at`` (through
    :func:`dashboards.data.in_range`) then counts from local midnight to local midnight."""

    tz: str = "UTC"

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time(0), tzinfo=ZoneInfo(self.tz)).astimezone(UTC)

    @property
    def end_at(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=ZoneInfo(self.tz)).astimezone(
            UTC
        )


@dataclass(frozen=True, slots=True)
class UrgentTicket:
    id: int
    priority: str
    title: str
    status: str
    owner: str
    """The assignee, or ``unassigned``."""
    age_h: float
    sla_state: str
    url: str


@dataclass(frozen=True, slots=True)
class Cause:
    cause: str
    tickets: int
    occurrences: int
    open: int


@dataclass(frozen=True, slots=True)
class CriterionTrend:
    name: str
    ok: bool | None
    value: str
    target: str
    was: bool | None
    """The state in the previous archived report (None: no report, or no data then)."""
    trend: str
    """``improved``, ``worse``, ``unchanged`` or ``new``."""

    @property
    def status(self) -> str:
        return status_word(self.ok).text


@dataclass(frozen=True)
class DailyReport:
    day: date
    timezone: str
    generated_at: datetime
    site: str
    currency: str
    inflow: int
    outflow: int
    backlog: int
    urgent: list[UrgentTicket]
    money_at_risk: Decimal
    sla_day: list[SlaCompliance]
    sla_window: SlaCompliance
    sla_window_days: int
    sla_target: float
    criteria: list[CriterionTrend]
    dualrun: DualRunStatus
    causes: list[Cause]
    workarounds: list[ActiveWorkaround]
    notes: list[str] = field(default_factory=list)

    @property
    def sla_verdict(self) -> Verdict:
        """P1-P2 SLA over the exit window against ``dashboard.exit.sla_min_ratio`` (the worse clock)."""
        return self.sla_verdict_in(as_written)

    def sla_verdict_in(self, _: Gettext) -> Verdict:
        """:attr:`sla_verdict` in the reader's words (``_``)."""
        values = [
            v for v in (self.sla_window.response_ratio, self.sla_window.resolution_ratio) if v is not None
        ]
        return at_least(min(values) if values else None, self.sla_target, pct(self.sla_target, 0), _)

    @property
    def title(self) -> str:
        return self.title_in("en")

    def title_in(self, language: str) -> str:
        """The title (and e-mail subject) in ``language``: ``Hypercare daily report — Sun 06 Dec 2026``,
        ``每日上线支持报告 — 2026年12月6日星期日``."""
        _ = translations(language).gettext
        return _("Hypercare daily report — %(day)s") % {"day": day_text(self.day, language)}

    def states(self) -> dict[str, bool | None]:
        """The exit criteria's states, archived so the next report shows its trend."""
        return {c.name: c.ok for c in self.criteria}


def day_text(day: date, language: str) -> str:
    """A day as the report's title writes it in ``language`` (English as before: ``Sun 06 Dec 2026``)."""
    if language == "en":
        return f"{day:%a %d %b %Y}"
    return format_date(day, "full", locale=language)


def _trend(now: bool | None, was: bool | None, known: bool) -> str:
    if not known:
        return "new"
    rank = {True: 2, None: 1, False: 0}
    if rank[now] > rank[was]:
        return "improved"
    if rank[now] < rank[was]:
        return "worse"
    return "unchanged"


def trends(criteria: list[Criterion], previous: Mapping[str, bool | None] | None) -> list[CriterionTrend]:
    prev = previous or {}
    return [
        CriterionTrend(
            c.name, c.ok, c.value, c.target, prev.get(c.name), _trend(c.ok, prev.get(c.name), c.name in prev)
        )
        for c in criteria
    ]


def _count(conn: Connection, *where: ColumnElement[bool]) -> int:
    return int(conn.scalar(select(func.count()).select_from(Ticket).where(*where)) or 0)


def urgent_tickets(conn: Connection, now: datetime, base_url: str) -> list[UrgentTicket]:
    """Open P1 and P2 tickets, most urgent and oldest first, with their assignee."""
    rows = conn.execute(
        select(
            Ticket.id,
            Ticket.priority,
            Ticket.title,
            Ticket.status,
            User.username,
            Ticket.created_at,
            Ticket.sla_state,
        )
        .outerjoin(User, User.id == Ticket.assignee_id)
        .where(Ticket.status.in_(OPEN_STATUSES), Ticket.priority.in_((Priority.P1, Priority.P2)))
        .order_by(Ticket.priority, Ticket.created_at, Ticket.id)
        .limit(100)
    ).all()
    return [
        UrgentTicket(
            int(i),
            str(p),
            str(t),
            str(s),
            str(owner) if owner else "unassigned",
            round((now - at).total_seconds() / 3600, 1),
            str(sla),
            f"{base_url.rstrip('/')}/tickets/{i}",
        )
        for i, p, t, s, owner, at, sla in rows
    ]


def recurring_causes(conn: Connection, f: Filters, *, limit: int = TOP_CAUSES) -> list[Cause]:
    """Tickets seen in the range (created, or an occurrence since) per check id (or category when a ticket
    has no check), most occurrences first."""
    cause = func.coalesce(Ticket.check_id, Ticket.category)
    seen = or_(
        in_range(Ticket.created_at, f),
        and_(Ticket.last_seen_at >= f.start_at, Ticket.last_seen_at < f.end_at),
    )
    rows = conn.execute(
        select(
            cause.label("cause"),
            func.count(Ticket.id),
            func.sum(Ticket.occurrence_count),
            func.sum(case((Ticket.status.in_(OPEN_STATUSES), 1), else_=0)),
        )
        .where(seen)
        .group_by("cause")
        .order_by(func.sum(Ticket.occurrence_count).desc(), func.count(Ticket.id).desc(), "cause")
        .limit(limit)
    ).all()
    return [Cause(str(c), int(n), int(o or 0), int(x or 0)) for c, n, o, x in rows]


def build(
    conn: Connection,
    settings: DashboardsConfig,
    day: date,
    *,
    now: datetime,
    previous: Mapping[str, bool | None] | None = None,
    site: str = "Hypercare",
) -> DailyReport:
    """The report of ``day`` (a day of ``dashboard.daily_report.timezone``) as the store shows it at
    ``now``; ``previous``: the exit criteria's states in the previous report, for their trend."""
    tz = settings.dashboard.daily_report.timezone
    ex = settings.dashboard.exit
    one = LocalDays(day, day, tz=tz)
    end = one.end_at
    inflow = _count(conn, in_range(Ticket.created_at, one))
    outflow = _count(conn, Ticket.resolved_at.is_not(None), in_range(Ticket.resolved_at, one))
    backlog = _count(
        conn, Ticket.created_at < end, or_(Ticket.resolved_at.is_(None), Ticket.resolved_at >= end)
    )
    urgent = urgent_tickets(conn, now, settings.server.base_url())
    at_risk = conn.scalar(
        select(func.sum(Ticket.amount_at_risk)).where(
            Ticket.status.in_(OPEN_STATUSES), Ticket.priority.in_((Priority.P1, Priority.P2))
        )
    )
    window = LocalDays(day - timedelta(days=ex.sla_window_days - 1), day, tz=tz)
    sla_window = combined(sla_of(conn, window, now), ("P1", "P2"))
    # the exit criteria over the 14 days ending with the report's day (UTC days, as the overview counts)
    span = Filters(day - timedelta(days=13), day)
    dualrun = load_dualrun(conn, settings, span, now)
    criteria = exit_criteria(conn, settings, span, now, pack_of=pack_map(settings), dualrun=dualrun)
    week = LocalDays(day - timedelta(days=6), day, tz=tz)
    workarounds = in_place(active_workarounds(Session(bind=conn), Filters(day, day), now))
    notes = []
    if not inflow and not outflow and not urgent:
        notes.append(N_("No ticket was opened or resolved that day and none is open at P1/P2."))
    return DailyReport(
        day=day,
        timezone=tz,
        generated_at=now,
        site=site,
        currency=settings.anomaly.currency,
        inflow=inflow,
        outflow=outflow,
        backlog=backlog,
        urgent=urgent,
        money_at_risk=Decimal(str(at_risk or 0)).quantize(Decimal("0.01")),
        sla_day=sla_of(conn, one, now),
        sla_window=sla_window,
        sla_window_days=ex.sla_window_days,
        sla_target=ex.sla_min_ratio,
        criteria=trends(criteria, previous),
        dualrun=dualrun,
        causes=recurring_causes(conn, week),
        workarounds=workarounds,
        notes=notes,
    )


# --- rendering ------------------------------------------------------------------------------------------

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["pct"] = pct
_env.globals["money"] = money
_env.globals["status_word"] = status_word


def _local(value: datetime, tz: str, language: str = "en") -> str:
    fmt = "%d %b %Y %H:%M" if language == "en" else "%Y-%m-%d %H:%M"
    return value.astimezone(ZoneInfo(tz)).strftime(fmt)


def render_html(report: DailyReport, language: str = "en") -> str:
    """The report as one HTML page (styles inline in the page: mail readers and WeasyPrint both read it), in
    ``language`` (``en``, ``zh_CN``, ``zh_TW``): every heading, label and verdict through the catalogs of
    core/locale; figures, ticket titles, check ids and the dual run's summary as stored."""
    _ = translations(language).gettext
    english = language == "en"
    return _env.get_template("daily_report.html").render(
        r=report,
        _=_,
        lang=html_lang(language),
        title=report.title_in(language),
        local=lambda value, tz: _local(value, tz, language),
        word=str if english else (lambda value: word(_, value)),
    )


def render_pdf(html: str) -> bytes:
    """The same HTML as a PDF (A4), laid out by WeasyPrint."""
    from weasyprint import HTML  # type: ignore[import-untyped]  # noqa: PLC0415 - heavyweight (pango via cffi)

    return bytes(HTML(string=html, base_url=str(TEMPLATES)).write_pdf())
