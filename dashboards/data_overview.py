"""The overview's composite figures: the hypercare exit criteria (catalog section 4.4) with their current
values, the burn-down projection, and the pack of each check.

Every criterion is computed from the same query functions the detail pages show, so a number on the overview
is the number on its page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from core.errors import HypercareError
from core.i18n import Gettext
from core.vocabulary import OPEN_STATUSES, Priority
from dashboards.data import Filters, FlowDay, flow, open_counts, ticket_scope
from dashboards.data_cutover import DualRunStatus
from dashboards.data_health import integration_status
from dashboards.data_monitor import check_summaries, latest_pass_ratio
from dashboards.data_service import active_workarounds, combined, in_place, reopen_rate, sla_compliance
from dashboards.present import as_written, pct
from dashboards.settings import DashboardsConfig
from monitor.checks import configured_checks
from monitor.models import CheckResultRow
from tickets.models import Ticket


@dataclass(frozen=True, slots=True)
class Criterion:
    name: str
    ok: bool | None
    """None: no data to judge by."""
    value: str
    target: str


def pack_map(settings: DashboardsConfig) -> dict[str, str]:
    """Check id -> pack of every check the settings load (empty if the packs cannot be read)."""
    try:
        return {spec.id: spec.pack or "(custom)" for spec in configured_checks(settings)}
    except (HypercareError, OSError, ValueError):
        return {}


@dataclass(frozen=True, slots=True)
class GoLive:
    day: int | None
    """Day N of hypercare (go-live day is day 1); None when ``dashboard.go_live_date`` is not set, 0 or less
    before go-live."""
    first_data: date | None
    """The first day Hypercare holds data for (a ticket or a check result); None: no data yet."""
    data_days: int
    """Days from ``first_data`` to today, today included."""

    def text(self, _: Gettext = as_written) -> str:
        if self.day is None:
            return _("not set")
        return str(self.day) if self.day >= 1 else _("in %(days)s d") % {"days": 1 - self.day}

    def caveat(self, _: Gettext = as_written) -> str | None:
        """Why the day count is not a history of that many days, when it is not (in the reader's words)."""
        if self.day is None or self.day < 1:
            return None
        if self.first_data is None:
            return _("no data collected yet")
        if self.data_days < self.day:
            return _("data since %(first)s: %(have)s of %(days)s days") % {
                "first": self.first_data.isoformat(),
                "have": self.data_days,
                "days": self.day,
            }
        return None


def go_live_status(conn: Connection, go_live: date | None, today: date) -> GoLive:
    """The go-live day and how many of those days Hypercare has data for. Two index probes."""
    first_ticket = conn.scalar(select(func.min(Ticket.created_at)))
    first_check = conn.scalar(select(func.min(CheckResultRow.finished_at)))
    found = [_as_day(v) for v in (first_ticket, first_check) if v is not None]
    first = min(found) if found else None
    day = None if go_live is None else (today - go_live).days + 1
    days = 0 if first is None else (today - first).days + 1
    return GoLive(day, first, days)


def _as_day(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def net_flow_streak(days: Sequence[FlowDay]) -> int:
    """Consecutive days, ending with the last one, with inflow ≤ outflow (K3 stabilisation)."""
    streak = 0
    for day in reversed(days):
        if day.net > 0:
            break
        streak += 1
    return streak


def _open_data_p1_p2(conn: Connection, f: Filters) -> int:
    return int(
        conn.scalar(
            select(func.count(Ticket.id)).where(
                Ticket.status.in_(OPEN_STATUSES),
                Ticket.category == "data",
                Ticket.priority.in_((Priority.P1, Priority.P2)),
                *ticket_scope(f),
            )
        )
        or 0
    )


def _pct(value: float | None) -> str:
    return pct(value)


def exit_criteria(
    conn: Connection,
    settings: DashboardsConfig,
    f: Filters,
    now: datetime,
    *,
    pack_of: dict[str, str],
    dualrun: DualRunStatus,
    _: Gettext = as_written,
) -> list[Criterion]:
    """The measurable exit criteria, each green (True), red (False) or unknown (None) with its value, in the
    reader's words (``_``; the dual run's summary stays as monitor/dualrun words it)."""
    ex = settings.dashboard.exit
    today = now.astimezone(ZoneInfo(f.tz)).date()
    out: list[Criterion] = []
    counts = open_counts(conn, f)
    out.append(
        Criterion(
            _("No open P1, few open P2"),
            counts["P1"] == 0 and counts["P2"] <= ex.max_open_p2,
            f"P1 {counts['P1']}, P2 {counts['P2']}",
            f"P1 0, P2 ≤ {ex.max_open_p2}",
        )
    )
    streak = net_flow_streak(flow(conn, f.last(ex.net_flow_days, today)))
    out.append(
        Criterion(
            _("Backlog not growing"),
            streak >= ex.net_flow_days,
            _("%(days)s day(s) with inflow ≤ outflow") % {"days": streak},
            _("≥ %(days)s consecutive days") % {"days": ex.net_flow_days},
        )
    )
    sla = combined(sla_compliance(conn, f.last(ex.sla_window_days, today), now), ("P1", "P2"))
    values = [v for v in (sla.response_ratio, sla.resolution_ratio) if v is not None]
    out.append(
        Criterion(
            _("SLA met for P1-P2 (%(days)s d)") % {"days": ex.sla_window_days},
            None if not values else min(values) >= ex.sla_min_ratio,
            _("response %(response)s, resolution %(resolution)s")
            % {"response": _pct(sla.response_ratio), "resolution": _pct(sla.resolution_ratio)},
            f"≥ {_pct(ex.sla_min_ratio)}",
        )
    )
    reopen = reopen_rate(conn, f.last(ex.sla_window_days, today))
    out.append(
        Criterion(
            _("Reopen rate (%(days)s d)") % {"days": ex.sla_window_days},
            None if reopen.value is None else reopen.value <= ex.max_reopen_ratio,
            f"{_pct(reopen.value)} ({reopen.numerator}/{reopen.denominator})",
            f"≤ {_pct(ex.max_reopen_ratio)}",
        )
    )
    checks = check_summaries(conn, f.last(7, today), pack_of)
    pass_ratio = latest_pass_ratio(checks)
    data_breaks = _open_data_p1_p2(conn, f)
    out.append(
        Criterion(
            _("Data consistency"),
            None if pass_ratio is None else pass_ratio >= ex.min_check_pass_ratio and data_breaks == 0,
            _("%(share)s of checks passing; %(count)s open P1/P2 data ticket(s)")
            % {"share": _pct(pass_ratio), "count": data_breaks},
            _("≥ %(share)s, no open P1/P2 data break") % {"share": _pct(ex.min_check_pass_ratio)},
        )
    )
    integ = integration_status(conn, f.last(1, today), now)
    age, stuck = integ.oldest_age_s, len(integ.tickets)
    facts = [] if age is None else [_("oldest message %(minutes)s min") % {"minutes": f"{age / 60:.0f}"}]
    facts.append(_("%(count)s open integration ticket(s)") % {"count": stuck})
    out.append(
        Criterion(
            _("Interfaces flowing"),
            None if not integ.rows else (age is None or age <= ex.max_interface_age_s) and stuck == 0,
            _("no integration data") if not integ.rows else _("; ").join(facts),
            _("≤ %(minutes)s min, no open integration ticket")
            % {"minutes": f"{ex.max_interface_age_s / 60:.0f}"},
        )
    )
    register = active_workarounds(Session(bind=conn), f, now)
    workarounds = len(in_place(register))
    left = len(register) - workarounds
    out.append(
        Criterion(
            _("Manual workarounds retired"),
            workarounds <= ex.max_active_workarounds,
            _("%(count)s in place") % {"count": workarounds}
            + (_("; %(count)s on resolved tickets still to end") % {"count": left} if left else ""),
            _("≤ %(count)s in place") % {"count": ex.max_active_workarounds},
        )
    )
    out.append(
        Criterion(
            _("Dual run"),
            dualrun.go,
            dualrun.summary,
            _("the cutover gate (dualrun.exit_criteria) is GO"),
        )
    )
    return out


@dataclass(frozen=True, slots=True)
class BurnDown:
    backlog: int
    daily_burn: float
    """Mean of outflow - inflow over the last ``window`` days (positive: the backlog shrinks)."""
    projected_exit: date | None
    """The day the backlog reaches zero at that pace; None when it does not shrink."""
    points: list[tuple[date, int, str]]
    """(day, backlog, ``actual`` or ``projected``)."""


def burn_down_text(bd: BurnDown, _: Gettext = as_written) -> str:
    """The burn-down in words, the sign spelled out (a negative burn is a growing backlog)."""
    if bd.backlog == 0:
        return _("Backlog **0**: nothing open.")
    if bd.projected_exit is not None:
        return _(
            "Backlog **%(backlog)s**, shrinking by %(burn)s a day (last 7 days): "
            "projected empty on **%(day)s**."
        ) % {"backlog": bd.backlog, "burn": f"{bd.daily_burn:.1f}", "day": bd.projected_exit.isoformat()}
    if bd.daily_burn < 0:
        growth = -bd.daily_burn
        return _("Backlog **%(backlog)s**, growing by %(burn)s a day (last 7 days): no exit in sight.") % {
            "backlog": bd.backlog,
            "burn": f"{growth:.1f}",
        }
    return _("Backlog **%(backlog)s**, flat over the last 7 days (as many closed as opened).") % {
        "backlog": bd.backlog
    }


def burn_down(days: Sequence[FlowDay], *, window: int = 7, horizon: int = 120) -> BurnDown:
    """The backlog so far and its projection at the recent pace."""
    points = [(d.day, d.backlog, "actual") for d in days]
    if not days:
        return BurnDown(0, 0.0, None, points)
    recent = days[-window:]
    burn = sum(-d.net for d in recent) / len(recent)
    last = days[-1]
    if last.backlog == 0:
        return BurnDown(0, burn, last.day, points)
    if burn <= 0:
        return BurnDown(last.backlog, round(burn, 2), None, points)
    days_left = -(-last.backlog // burn)  # ceil
    exit_day = last.day + timedelta(days=int(days_left))
    step = max(1, int(days_left) // 30)
    for i in range(step, min(int(days_left), horizon) + 1, step):
        points.append((last.day + timedelta(days=i), max(0, round(last.backlog - burn * i)), "projected"))
    if int(days_left) <= horizon:
        points.append((exit_day, 0, "projected"))
    return BurnDown(last.backlog, round(burn, 2), exit_day, points)
