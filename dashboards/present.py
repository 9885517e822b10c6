"""Rows as the pages show them: JSON-safe records for tables and charts, and the CSV of a table."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from copy import deepcopy
from dataclasses import asdict, dataclass, fields, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlencode

from core.csvsafe import cell
from core.i18n import N_, Gettext


def as_written(text: str) -> str:
    """The text as written (English, the language of the source): the default translation function."""
    return text


# --- presenting: records and CSV ------------------------------------------------------------------------


def _nested(value: Any) -> Any:
    """A field's value as :func:`dataclasses.asdict` would give it (nested rows and containers copied)."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, list | tuple | dict):
        return deepcopy(value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def records(items: Iterable[Any]) -> list[dict[str, Any]]:
    """Dataclass rows (or mappings) as JSON-safe dicts, for tables, charts and CSV."""
    out: list[dict[str, Any]] = []
    names: tuple[str, ...] | None = None
    for item in items:
        if is_dataclass(item) and not isinstance(item, type):
            # field by field (asdict's deep copy costs ~50 us a row: seconds for a long series); only a
            # nested value (a dataclass, a list or a mapping) is copied deeply, as asdict would
            names = names or tuple(f.name for f in fields(item))
            out.append({k: _plain(_nested(getattr(item, k))) for k in names})
        else:
            out.append({k: _plain(v) for k, v in dict(item).items()})
    return out


def to_csv(items: Iterable[Any], columns: Sequence[str] | None = None) -> bytes:
    """What a table shows, as UTF-8 CSV (with a BOM, so spreadsheet programs read non-ASCII text); text that
    starts like a formula is written as text (:mod:`core.csvsafe`)."""
    rows = records(items)
    if columns is None:
        columns = list(rows[0]) if rows else []
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: cell(v) for k, v in r.items()} for r in rows)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def columns_of(cls: type[Any]) -> list[str]:
    return [f.name for f in fields(cls)]


# --- presenting: figures as people read them -----------------------------------------------------------


def pct(value: float | None, digits: int = 1) -> str:
    """A share as ``63.2 %`` (``n/a`` when there is nothing to divide)."""
    return "n/a" if value is None else f"{value * 100:.{digits}f} %"


def money(amount: Decimal | float | None, currency: str) -> str:
    """An amount with its currency, ``CNY 1,707,992.41`` (``n/a`` when unknown). A stand-in until a shared
    money formatter lands in core (issue 15); the site currency is ``anomaly.currency``."""
    if amount is None:
        return "n/a"
    return f"{currency} {Decimal(str(amount)).quantize(Decimal('0.01')):,.2f}"


def duration_ms(value_ms: float | None) -> str:
    if value_ms is None:
        return "n/a"
    return f"{value_ms / 1000:,.2f} s" if value_ms >= 10_000 else f"{value_ms:,.0f} ms"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A figure judged against its target: a colour and the same verdict in words (colour-blind users read
    the words), e.g. ``▲ over target (<= 3)``."""

    ok: bool | None
    text: str

    @property
    def colour(self) -> Literal["green", "red", "gray"]:
        return "green" if self.ok else ("gray" if self.ok is None else "red")

    @property
    def mark(self) -> str:
        """The verdict as Streamlit markdown, colour and words together."""
        return f":{self.colour}[{self.text}]"


def at_most(value: float | None, limit: float, shown: str, _: Gettext = as_written) -> Verdict:
    """Good when ``value <= limit`` (open tickets, error rates, ages); in the reader's words (``_``)."""
    if value is None:
        return Verdict(None, _("no data"))
    if value <= limit:
        return Verdict(True, _("✓ within target (≤ %(target)s)") % {"target": shown})
    return Verdict(False, _("▲ over target (≤ %(target)s)") % {"target": shown})


def at_least(value: float | None, limit: float, shown: str, _: Gettext = as_written) -> Verdict:
    """Good when ``value >= limit`` (SLA attainment, pass rates); in the reader's words (``_``)."""
    if value is None:
        return Verdict(None, _("no data"))
    if value >= limit:
        return Verdict(True, _("✓ on target (≥ %(target)s)") % {"target": shown})
    return Verdict(False, _("▼ under target (≥ %(target)s)") % {"target": shown})


def status_word(ok: bool | None, _: Gettext = as_written) -> Verdict:
    """An exit criterion or gate: GREEN / RED / NO DATA, each with a shape so colour is not the only cue."""
    return {
        True: Verdict(True, _("● GREEN")),
        False: Verdict(False, _("▲ RED")),
        None: Verdict(None, _("○ NO DATA")),
    }[ok]


# --- table columns ------------------------------------------------------------------------------------

LABELS: dict[str, str] = {
    "id": N_("Ticket"),
    "ticket_id": N_("Ticket"),
    "check_id": N_("Check"),
    "mtta_mean_h": N_("MTTA mean (h)"),
    "mtta_median_h": N_("MTTA median (h)"),
    "mtta_p90_h": N_("MTTA p90 (h)"),
    "mttr_mean_h": N_("MTTR mean (h)"),
    "mttr_median_h": N_("MTTR median (h)"),
    "mttr_p90_h": N_("MTTR p90 (h)"),
    "age_h": N_("Age (h)"),
    "age_d": N_("Age (days)"),
    "late_h": N_("Late by (h)"),
    "sla_state": N_("SLA"),
    "oldest_age_min": N_("Oldest message (min)"),
    "oldest_age_s": N_("Oldest message (s)"),
    "p95_ms": N_("p95 (ms)"),
    "mean_ms": N_("Mean (ms)"),
    "max_ms": N_("Max (ms)"),
    "open_p1_p2": N_("Open P1/P2"),
    "last_status": N_("Latest result"),
    "last_violations": N_("Latest violations"),
    "last_run_at": N_("Latest run"),
    "review_on": N_("Review on"),
    "in_place": N_("Still in place"),
    "what": N_("Workaround"),
    "value": N_("Value"),
    "at": N_("When"),
    "due_at": N_("Due"),
    "last_seen": N_("Last seen"),
    "over_limit": N_("Over the limit"),
    "failed_messages": N_("Failed messages"),
}
HEADERS: tuple[str, ...] = (
    N_("Amount"),
    N_("Amount at risk"),
    N_("Backlog"),
    N_("Bucket"),
    N_("By score"),
    N_("Checks"),
    N_("Clock"),
    N_("Comparison"),
    N_("Criteria"),
    N_("Cumulative"),
    N_("Daily burn"),
    N_("Data days"),
    N_("Day"),
    N_("Decided"),
    N_("Decided at"),
    N_("Denominator"),
    N_("Detail"),
    N_("Differences"),
    N_("Done"),
    N_("Due"),
    N_("Durations"),
    N_("End"),
    N_("Entities"),
    N_("Entity"),
    N_("Executed"),
    N_("Failed"),
    N_("Failing checks"),
    N_("First data"),
    N_("Go"),
    N_("History"),
    N_("Hours"),
    N_("Inflow"),
    N_("Integration"),
    N_("Interface"),
    N_("Kind"),
    N_("Labels"),
    N_("Last amount at risk"),
    N_("Match rate"),
    N_("Max"),
    N_("Mean"),
    N_("Mean h"),
    N_("Measure"),
    N_("Median h"),
    N_("Met"),
    N_("Module"),
    N_("Money affected"),
    N_("Name"),
    N_("Net"),
    N_("Numerator"),
    N_("Ok"),
    N_("Open"),
    N_("Open tickets"),
    N_("Outflow"),
    N_("Overdue"),
    N_("Owner"),
    N_("P90 h"),
    N_("Pack"),
    N_("Pass ratio"),
    N_("Passed"),
    N_("Period"),
    N_("Points"),
    N_("Priority"),
    N_("Probe"),
    N_("Projected exit"),
    N_("Queue"),
    N_("Queues"),
    N_("Ran"),
    N_("Ratings"),
    N_("Reasons"),
    N_("Resolution due"),
    N_("Resolution met"),
    N_("Resolved"),
    N_("Response due"),
    N_("Response met"),
    N_("Rows"),
    N_("Run id"),
    N_("Runs"),
    N_("Samples"),
    N_("Series"),
    N_("Severity"),
    N_("Share"),
    N_("Source"),
    N_("Sources"),
    N_("Start"),
    N_("Status"),
    N_("Summary"),
    N_("Target"),
    N_("Ticket status"),
    N_("Tickets"),
    N_("Title"),
    N_("Trend"),
    N_("Unexplained"),
)
"""The headers :func:`label` makes of the other field names of the dashboards' rows, marked so that
``pybabel extract`` hands them to translators (a new field's header stays English until it is added here)."""
PERCENT_FIELDS = frozenset({"share", "cumulative", "pass_ratio", "match_rate", "error_rate"})
MONEY_FIELDS = frozenset({"amount", "amount_at_risk", "last_amount_at_risk", "money_affected"})
TICKET_FIELDS = frozenset({"id", "ticket_id"})
TIME_FIELDS = frozenset({"at", "due_at", "last_run_at", "last_seen", "since", "created_at"})
DAY_FIELDS = frozenset({"day", "review_on"})
ZONED_FIELDS = frozenset({"at", "due_at", "last_run_at", "last_seen"})
"""Times whose header names the zone they are shown in: ``When (UTC)``, ``Due (CST (Asia/Shanghai))``."""


def label(field: str, currency: str = "", _: Gettext = as_written, zone: str = "UTC") -> str:
    """The column header people read for a field name (``mtta_mean_h`` -> ``MTTA mean (h)``), in the
    reader's words (``_``: a header with no translation stays English); a time names ``zone``."""
    if field in MONEY_FIELDS:
        base = _(LABELS.get(field, field.replace("_", " ").capitalize()))
        return f"{base} ({currency})" if currency else base
    if field in LABELS:
        text = _(LABELS[field])
        return f"{text} ({zone})" if field in ZONED_FIELDS else text
    words = field.replace("_", " ")
    return _(words[:1].upper() + words[1:])


def ticket_url(base_url: str, ticket_id: int) -> str:
    return f"{base_url.rstrip('/')}/tickets/{ticket_id}"


def check_url(base_url: str, check_id: str) -> str:
    """The queue's tickets of a check (every status): the page a check's row links to."""
    return f"{base_url.rstrip('/')}/tickets?{urlencode({'q': check_id, 'status': 'all'})}"
