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


def at_most(value: float | None, limit: float, shown: str) -> Verdict:
    """Good when ``value <= limit`` (open tickets, error rates, ages)."""
    if value is None:
        return Verdict(None, "no data")
    if value <= limit:
        return Verdict(True, f"✓ within target (≤ {shown})")
    return Verdict(False, f"▲ over target (≤ {shown})")


def at_least(value: float | None, limit: float, shown: str) -> Verdict:
    """Good when ``value >= limit`` (SLA attainment, pass rates)."""
    if value is None:
        return Verdict(None, "no data")
    if value >= limit:
        return Verdict(True, f"✓ on target (≥ {shown})")
    return Verdict(False, f"▼ under target (≥ {shown})")


def status_word(ok: bool | None) -> Verdict:
    """An exit criterion or gate: GREEN / RED / NO DATA, each with a shape so colour is not the only cue."""
    return {
        True: Verdict(True, "● GREEN"),
        False: Verdict(False, "▲ RED"),
        None: Verdict(None, "○ NO DATA"),
    }[ok]


# --- table columns ------------------------------------------------------------------------------------

LABELS: dict[str, str] = {
    "id": "Ticket",
    "ticket_id": "Ticket",
    "check_id": "Check",
    "mtta_mean_h": "MTTA mean (h)",
    "mtta_median_h": "MTTA median (h)",
    "mtta_p90_h": "MTTA p90 (h)",
    "mttr_mean_h": "MTTR mean (h)",
    "mttr_median_h": "MTTR median (h)",
    "mttr_p90_h": "MTTR p90 (h)",
    "age_h": "Age (h)",
    "age_d": "Age (days)",
    "late_h": "Late by (h)",
    "sla_state": "SLA",
    "oldest_age_min": "Oldest message (min)",
    "oldest_age_s": "Oldest message (s)",
    "p95_ms": "p95 (ms)",
    "mean_ms": "Mean (ms)",
    "max_ms": "Max (ms)",
    "open_p1_p2": "Open P1/P2",
    "last_status": "Latest result",
    "last_violations": "Latest violations",
    "last_run_at": "Latest run (UTC)",
    "review_on": "Review on",
    "in_place": "Still in place",
    "what": "Workaround",
    "value": "Value",
    "at": "When (UTC)",
    "due_at": "Due (UTC)",
    "last_seen": "Last seen (UTC)",
    "over_limit": "Over the limit",
    "failed_messages": "Failed messages",
}
PERCENT_FIELDS = frozenset({"share", "cumulative", "pass_ratio", "match_rate", "error_rate"})
MONEY_FIELDS = frozenset({"amount", "amount_at_risk", "last_amount_at_risk", "money_affected"})
TICKET_FIELDS = frozenset({"id", "ticket_id"})
TIME_FIELDS = frozenset({"at", "due_at", "last_run_at", "last_seen", "since", "created_at"})
DAY_FIELDS = frozenset({"day", "review_on"})


def label(field: str, currency: str = "") -> str:
    """The column header people read for a field name (``mtta_mean_h`` -> ``MTTA mean (h)``)."""
    if field in MONEY_FIELDS:
        base = LABELS.get(field, field.replace("_", " ").capitalize())
        return f"{base} ({currency})" if currency else base
    if field in LABELS:
        return LABELS[field]
    words = field.replace("_", " ")
    return words[:1].upper() + words[1:]


def ticket_url(base_url: str, ticket_id: int) -> str:
    return f"{base_url.rstrip('/')}/tickets/{ticket_id}"


def check_url(base_url: str, check_id: str) -> str:
    """The queue's tickets of a check (every status): the page a check's row links to."""
    return f"{base_url.rstrip('/')}/tickets?{urlencode({'q': check_id, 'status': 'all'})}"
