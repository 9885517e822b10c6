"""The dual-run contract: what a comparison file says (pydantic) and what a run finds (frozen dataclasses).

No I/O here. Configuration models validate the YAML (see :mod:`monitor.dualrun.config` for loading);
result dataclasses are plain data with a JSON form (:meth:`ComparisonResult.to_dict` /
:meth:`ComparisonResult.from_dict`) that the store, the API, the CLI and the tickets share.

A comparison file::

    name: gl-cutover
    legacy: legacy_erp            # a source named under ``sources:`` in hypercare.yaml
    new: erp
    materiality: "100.00"
    entities:
      - name: gl_lines
        legacy: {table: gl_line, filter: "company = 'A'"}
        new: {table: journal_line}
        key: [entry_no, line_no]              # compound keys; a name or a column spec
        columns:
          - {name: account, legacy: acct, map: {"1122": "112201"}}
          - {name: amount, type: decimal, scale: 2, money: true}
          - {name: posted_at, type: timestamp, legacy_timezone: Asia/Shanghai}
          - {name: posting_date, type: date, tolerance: {days: 1}}
          - {name: memo, trim: true}            # normalisations are explicit: values compare as stored
        period: {column: posting_date, grain: month}
      - name: trial_balance                   # an aggregate reconciliation
        legacy: {table: gl_line}
        new: {table: journal_line}
        group_by: [account, {name: period, legacy: "substr(posting_date, 1, 7)"}]
        measures:
          - {name: balance, legacy: "sum(debit - credit)", new: "sum(amount)", money: true}
      - name: invoices                        # a header + lines business object
        legacy: {table: inv_head}
        new: {table: invoice}
        key: [number]
        columns: [{name: total, type: decimal, scale: 2, money: true}]
        lines:
          - name: lines
            legacy: {table: inv_line}
            new: {table: invoice_line}
            parent: [number]                  # the line columns holding the header key
            key: [line_no]                    # omit to match lines by content
            columns: [{name: amount, type: decimal, scale: 2, money: true}]
"""
# size: the whole comparison-file schema users write, validated and documented in one place

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.readonly import check_expression, check_query

__all__ = [
    "CLASSIFICATIONS",
    "AggregateResult",
    "Classification",
    "ColumnDiff",
    "ColumnSpec",
    "ComparisonConfig",
    "ComparisonResult",
    "DiffKind",
    "EntityConfig",
    "EntityKind",
    "EntityResult",
    "KnownDifference",
    "LineConfig",
    "MeasureSpec",
    "PeriodSpec",
    "RowDifference",
    "SideConfig",
    "Tolerance",
    "ValueType",
]

ValueType = Literal["text", "integer", "decimal", "date", "timestamp", "boolean"]
DiffKind = Literal["changed", "missing_in_new", "extra_in_new"]
Classification = Literal["timing", "mapping", "data", "defect"]
CLASSIFICATIONS: tuple[Classification, ...] = ("timing", "mapping", "data", "defect")
EntityKind = Literal["rows", "object", "aggregate"]

_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- configuration -------------------------------------------------------------------------------------


class Tolerance(_Strict):
    """How far two values may be apart and still match. Money: ``abs`` or ``rel`` x the larger value."""

    abs: Decimal = Field(Decimal(0), ge=0)
    rel: Decimal = Field(Decimal(0), ge=0, le=1)
    days: int = Field(0, ge=0, le=366)
    """Dates and timestamps this many days apart are a *timing* difference, not a match."""

    def allows(self, legacy: Decimal, new: Decimal) -> bool:
        limit = max(self.abs, self.rel * max(abs(legacy), abs(new)))
        return abs(legacy - new) <= limit


class ColumnSpec(_Strict):
    """One compared (or key, or group-by) column: its canonical name, where it is on each side, and how
    both sides are brought to the same canonical text before hashing and comparing."""

    name: str = Field(pattern=_NAME)
    legacy: str | None = None
    """Column name or SQL expression on the legacy side (default: ``name``)."""
    new: str | None = None
    """Column name or SQL expression on the new side (default: ``name``)."""
    type: ValueType = "text"
    scale: int | None = Field(None, ge=0, le=12)
    """Decimal places a ``decimal`` is compared at (10.5 and 10.50 are equal); default 2."""
    trim: bool = False
    """Text: strip leading/trailing spaces on both sides (off by default: text is compared as stored)."""
    case: Literal["preserve", "upper", "lower"] = "preserve"
    legacy_timezone: str = "UTC"
    """Zone of the legacy side's naive timestamps; compared in UTC."""
    new_timezone: str = "UTC"
    precision: Literal["second", "millisecond", "microsecond"] = "microsecond"
    """Timestamps are compared to this precision (truncated); the default is the full stored precision."""
    map: dict[str, str] = {}
    """Legacy code -> new code (e.g. account 1122 -> 112201), applied to the legacy side's canonical text."""
    money: bool = False
    """Counts toward money affected, and the entity's money tolerance applies."""
    tolerance: Tolerance | None = None
    """Overrides the entity's tolerance for this column."""

    @field_validator("legacy", "new")
    @classmethod
    def _expression(cls, value: str | None) -> str | None:
        """A name is quoted into the generated SQL; an expression is rendered from its syntax tree
        (:func:`monitor.readonly.render_expression`) and must be on the read-only allow-list."""
        if value is None or cls.is_identifier(value):
            return value
        return check_expression(value)

    @field_validator("legacy_timezone", "new_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _scale_for_decimals(self) -> ColumnSpec:
        if self.scale is not None and self.type != "decimal":
            raise ValueError(f"scale: only a decimal column has a scale (column {self.name} is {self.type})")
        if self.precision != "microsecond" and self.type != "timestamp":
            raise ValueError(
                f"precision: only a timestamp column has a precision (column {self.name} is {self.type})"
            )
        if (self.trim or self.case != "preserve") and self.type != "text":
            raise ValueError(
                f"trim/case: only a text column is trimmed or case-folded (column {self.name} is {self.type})"
            )
        if self.money and self.type not in {"decimal", "integer"}:
            raise ValueError(f"money: column {self.name} is {self.type}; money columns are decimal")
        return self

    @property
    def decimal_scale(self) -> int:
        return 2 if self.scale is None else self.scale

    def side(self, which: Literal["legacy", "new"]) -> str:
        """The column name or expression on one side."""
        chosen = self.legacy if which == "legacy" else self.new
        return chosen if chosen is not None else self.name

    def timezone(self, which: Literal["legacy", "new"]) -> str:
        return self.legacy_timezone if which == "legacy" else self.new_timezone

    @staticmethod
    def is_identifier(expression: str) -> bool:
        return bool(_IDENTIFIER.match(expression))


def _column_list(value: Any) -> Any:
    """``[a, b]`` is shorthand for ``[{name: a}, {name: b}]``."""
    if isinstance(value, list):
        return [{"name": item} if isinstance(item, str) else item for item in value]
    return value


class SideConfig(_Strict):
    """Where an entity's rows are on one side: a table (or view) or a SELECT, and an optional filter."""

    table: str | None = None
    query: str | None = None
    filter: str | None = None
    """An SQL condition on the table's or query's columns (company, period...); ``:as_of`` is bound."""

    @field_validator("query")
    @classmethod
    def _read_only(cls, query: str | None) -> str | None:
        """The gate of a check's SQL (:func:`monitor.readonly.check_query`): one SELECT that only reads."""
        return None if query is None else check_query(query)

    @field_validator("filter")
    @classmethod
    def _filter(cls, condition: str | None) -> str | None:
        """Rendered from its syntax tree into the WHERE of every query on this side: one expression that only
        reads (:func:`monitor.readonly.check_expression`)."""
        return None if condition is None else check_expression(condition)

    @model_validator(mode="after")
    def _one_of(self) -> SideConfig:
        if (self.table is None) == (self.query is None):
            raise ValueError("table/query: give exactly one of 'table' or 'query'")
        return self


class PeriodSpec(_Strict):
    """With ``--as-of D``, only rows whose ``column`` falls in D's day or month are compared."""

    column: str = Field(pattern=_NAME)
    """A canonical column name (a key or compared column of type date or timestamp)."""
    grain: Literal["day", "month"] = "month"


class MeasureSpec(_Strict):
    """One total of an aggregate reconciliation: an SQL aggregate per side (``sum(amount)``, ``count(*)``)."""

    name: str = Field(pattern=_NAME)
    legacy: str
    new: str | None = None
    """Default: the legacy expression."""
    money: bool = True
    tolerance: Tolerance | None = None

    @field_validator("legacy", "new")
    @classmethod
    def _expression(cls, value: str | None) -> str | None:
        """Rendered from its syntax tree into the SELECT list of the aggregate query: one expression that
        only reads."""
        return None if value is None else check_expression(value)

    def side(self, which: Literal["legacy", "new"]) -> str:
        return self.legacy if which == "legacy" or self.new is None else self.new


class LineConfig(_Strict):
    """The lines of a business object (invoice lines, journal entry lines)."""

    name: str = Field(pattern=_NAME)
    legacy: SideConfig
    new: SideConfig
    parent: tuple[ColumnSpec, ...] = Field(min_length=1)
    """The line columns holding the header key, in the order of the header's ``key``."""
    key: tuple[ColumnSpec, ...] = ()
    """Line key within the object; empty: lines are matched by content (order does not matter)."""
    columns: tuple[ColumnSpec, ...] = ()

    _lists = field_validator("parent", "key", "columns", mode="before")(_column_list)


class KnownDifference(_Strict):
    """A difference signed off once and classified automatically from then on."""

    column: str | None = None
    legacy: str | None = None
    new: str | None = None
    classification: Classification = "mapping"
    note: str = ""


class EntityConfig(_Strict):
    """One thing compared: rows keyed by ``key`` (optionally with ``lines``), or totals by ``group_by``."""

    name: str = Field(pattern=_NAME)
    legacy: SideConfig
    new: SideConfig
    key: tuple[ColumnSpec, ...] = ()
    columns: tuple[ColumnSpec, ...] = ()
    tolerance: Tolerance = Tolerance()
    period: PeriodSpec | None = None
    lines: tuple[LineConfig, ...] = ()
    group_by: tuple[ColumnSpec, ...] = ()
    measures: tuple[MeasureSpec, ...] = ()
    known_differences: tuple[KnownDifference, ...] = ()
    sample_limit: int = Field(1000, ge=0, le=100_000)
    """Differences kept with their rows in the result (``--json``/``--output``); all are counted. The store
    keeps the first 20 of them per entity (:data:`monitor.dualrun.store.SAMPLE_LIMIT`)."""
    segment_rows: int = Field(128, ge=8, le=1_000_000)
    """Checksum segments are bisected until they hold at most about this many keys, then rows are fetched."""
    enabled: bool = True

    _lists = field_validator("key", "columns", "group_by", mode="before")(_column_list)

    @model_validator(mode="after")
    def _shape(self) -> EntityConfig:
        if self.group_by or self.measures:
            if self.key or self.columns or self.lines:
                raise ValueError(
                    "group_by: an aggregate entity has group_by and measures, not key/columns/lines"
                )
            if not self.measures:
                raise ValueError("measures: an aggregate entity needs at least one measure")
        elif not self.key:
            raise ValueError("key: a row entity needs key columns (or group_by + measures for totals)")
        names = [c.name for c in (*self.key, *self.columns, *self.group_by)] + [m.name for m in self.measures]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"columns: name(s) {', '.join(dupes)} appear twice")
        if self.period is not None:
            by_name = {c.name: c for c in (*self.key, *self.columns, *self.group_by)}
            column = by_name.get(self.period.column)
            if column is None or column.type not in {"date", "timestamp"}:
                raise ValueError(f"period: '{self.period.column}' must be a date or timestamp column")
        for line in self.lines:
            if len(line.parent) != len(self.key):
                raise ValueError(
                    f"lines: {line.name}.parent has {len(line.parent)} column(s), the key has {len(self.key)}"
                )
        return self

    @property
    def kind(self) -> EntityKind:
        if self.measures:
            return "aggregate"
        return "object" if self.lines else "rows"


class ComparisonConfig(_Strict):
    """A dual-run comparison: two named sources and the entities compared between them."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str = ""
    legacy: str = Field(min_length=1)
    """Name of the legacy system's source under ``sources:`` in the settings."""
    new: str = Field(min_length=1)
    """Name of the new system's source."""
    materiality: Decimal = Field(Decimal(0), ge=0)
    """Differences whose money affected is at or below this are immaterial (readiness ignores them)."""
    timeout_s: float | None = Field(None, gt=0, le=86_400)
    """Statement timeout per query; default: each source's ``statement_timeout_s``."""
    entities: tuple[EntityConfig, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> ComparisonConfig:
        names = [e.name for e in self.entities]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"entities: name(s) {', '.join(dupes)} appear twice")
        return self

    def entity(self, name: str) -> EntityConfig:
        for entity in self.entities:
            if entity.name == name:
                return entity
        raise KeyError(name)


# --- results -------------------------------------------------------------------------------------------


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@dataclass(frozen=True, slots=True)
class ColumnDiff:
    """One column of a changed row: both sides' canonical text (None = NULL) and the numeric delta."""

    column: str
    legacy: str | None
    new: str | None
    delta: Decimal | None = None
    """``new - legacy`` for numbers; days for dates; None for text."""


@dataclass(frozen=True, slots=True)
class RowDifference:
    """A row (or business object) that differs, is missing in the new system, or is extra in it."""

    entity: str
    key: dict[str, str]
    kind: DiffKind
    columns: tuple[ColumnDiff, ...] = ()
    classification: Classification = "defect"
    money_affected: Decimal = Decimal("0.00")
    rule: str = ""
    """The classification rule that decided (``timing.days``, ``mapping.unmapped_code``, ...)."""
    lines: tuple[RowDifference, ...] = ()
    """For a business object: its differing lines (``entity`` = ``<object>.<lines name>``)."""
    legacy_row: dict[str, str | None] | None = None
    new_row: dict[str, str | None] | None = None

    def to_dict(self) -> dict[str, Any]:
        return _plain_dict(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RowDifference:
        return cls(
            entity=data["entity"],
            key=dict(data["key"]),
            kind=data["kind"],
            columns=tuple(
                ColumnDiff(c["column"], c["legacy"], c["new"], _dec(c.get("delta")))
                for c in data.get("columns", ())
            ),
            classification=data.get("classification", "defect"),
            money_affected=Decimal(str(data.get("money_affected", "0.00"))),
            rule=data.get("rule", ""),
            lines=tuple(cls.from_dict(line) for line in data.get("lines", ())),
            legacy_row=data.get("legacy_row"),
            new_row=data.get("new_row"),
        )


@dataclass(frozen=True, slots=True)
class AggregateResult:
    """One group x measure of an aggregate reconciliation."""

    group: dict[str, str]
    measure: str
    legacy: Decimal | None
    new: Decimal | None
    delta: Decimal
    """``new - legacy`` (a missing side counts as 0)."""
    within_tolerance: bool

    def to_dict(self) -> dict[str, Any]:
        return _plain_dict(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AggregateResult:
        return cls(
            group=dict(data["group"]),
            measure=data["measure"],
            legacy=_dec(data.get("legacy")),
            new=_dec(data.get("new")),
            delta=Decimal(str(data["delta"])),
            within_tolerance=bool(data["within_tolerance"]),
        )


@dataclass(frozen=True, slots=True)
class EntityResult:
    """What one entity's comparison found. Counts are complete; ``samples`` is bounded.

    Rows entities count rows, object entities count business objects, aggregate entities count groups
    (a group is ``changed`` when any measure is beyond tolerance).
    """

    entity: str
    kind: EntityKind = "rows"
    period: str | None = None
    """``2026-11`` / ``2026-11-30`` when restricted by ``--as-of``; None for everything."""
    matched: int = 0
    changed: int = 0
    missing_in_new: int = 0
    extra_in_new: int = 0
    money_affected: Decimal = Decimal("0.00")
    by_classification: dict[str, int] = field(default_factory=dict)
    """Differences per classification (all of them, not only the samples)."""
    money_by_classification: dict[str, Decimal] = field(default_factory=dict)
    samples: tuple[RowDifference, ...] = ()
    aggregates: tuple[AggregateResult, ...] = ()
    """Aggregate entities: the groups beyond tolerance (bounded), then the rest up to the sample limit."""
    duration_s: float = 0.0
    rows_legacy: int = 0
    rows_new: int = 0
    queries: int = 0
    """Queries issued on both sides (checksum passes, row fetches)."""
    normalised: dict[str, dict[str, int]] = field(default_factory=dict)
    """Normalisation rule (``memo.trim``, ``posted_at.timezone``, ``account.map``...) -> side -> matched rows
    whose value the rule changed on that side: the rows that matched only after it (unless both sides stored
    the same un-normalised value). Every configured rule is listed, with 0 when it changed nothing."""
    plan: str = ""
    """How the rows were segmented (``key ranges on id``, or ``key-hash buckets: <why>``)."""
    error: str | None = None
    """Set when the entity could not be compared; the counts are then meaningless."""

    @property
    def differences(self) -> int:
        return self.changed + self.missing_in_new + self.extra_in_new

    @property
    def match_rate(self) -> float:
        """Matched / (matched + differences); 1.0 for two empty sides."""
        total = self.matched + self.differences
        return 1.0 if total == 0 else self.matched / total

    @property
    def ok(self) -> bool:
        return self.error is None and self.differences == 0

    def to_dict(self) -> dict[str, Any]:
        data = _plain_dict(asdict(self))
        data["samples"] = [s.to_dict() for s in self.samples]
        data["aggregates"] = [a.to_dict() for a in self.aggregates]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EntityResult:
        return cls(
            entity=data["entity"],
            kind=data.get("kind", "rows"),
            period=data.get("period"),
            matched=int(data.get("matched", 0)),
            changed=int(data.get("changed", 0)),
            missing_in_new=int(data.get("missing_in_new", 0)),
            extra_in_new=int(data.get("extra_in_new", 0)),
            money_affected=Decimal(str(data.get("money_affected", "0.00"))),
            by_classification={k: int(v) for k, v in data.get("by_classification", {}).items()},
            money_by_classification={
                k: Decimal(str(v)) for k, v in data.get("money_by_classification", {}).items()
            },
            samples=tuple(RowDifference.from_dict(s) for s in data.get("samples", ())),
            aggregates=tuple(AggregateResult.from_dict(a) for a in data.get("aggregates", ())),
            duration_s=float(data.get("duration_s", 0.0)),
            rows_legacy=int(data.get("rows_legacy", 0)),
            rows_new=int(data.get("rows_new", 0)),
            queries=int(data.get("queries", 0)),
            normalised={
                str(rule): {str(side): int(n) for side, n in sides.items()}
                for rule, sides in data.get("normalised", {}).items()
            },
            plan=str(data.get("plan", "")),
            error=data.get("error"),
        )


@dataclass(frozen=True, slots=True)
class ComparisonResult:
    """One run of a comparison."""

    comparison: str
    as_of: date | None
    started_at: datetime
    finished_at: datetime
    entities: tuple[EntityResult, ...] = ()
    legacy_source: str = ""
    new_source: str = ""
    materiality: Decimal = Decimal(0)

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.entities)

    @property
    def money_affected(self) -> Decimal:
        return sum((e.money_affected for e in self.entities), Decimal("0.00"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "comparison": self.comparison,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "legacy_source": self.legacy_source,
            "new_source": self.new_source,
            "materiality": str(self.materiality),
            "entities": [e.to_dict() for e in self.entities],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ComparisonResult:
        return cls(
            comparison=data["comparison"],
            as_of=date.fromisoformat(data["as_of"]) if data.get("as_of") else None,
            started_at=datetime.fromisoformat(data["started_at"]),
            finished_at=datetime.fromisoformat(data["finished_at"]),
            entities=tuple(EntityResult.from_dict(e) for e in data.get("entities", ())),
            legacy_source=data.get("legacy_source", ""),
            new_source=data.get("new_source", ""),
            materiality=Decimal(str(data.get("materiality", "0"))),
        )


def _plain(value: Any) -> Any:
    """JSON-safe: Decimals as strings, dates ISO, tuples as lists."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _plain_dict(value: dict[str, Any]) -> dict[str, Any]:
    return {str(k): _plain(v) for k, v in value.items()}
