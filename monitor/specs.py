"""Check definitions: the validated shape of a check, its expectation and its reconciliation sides.

Everything here is pure validation (no I/O): a definition that is wrong raises with the field it is about,
and :func:`monitor.checks.parse_checks` turns that into an error naming the file, the check and the field.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.vocabulary import Category, Priority
from monitor.intervals import ScheduleError, parse_interval
from monitor.readonly import check_query

_RELATIVE = re.compile(r"^(now|today)(?:\s*([+-])\s*(\d+)\s*([smhd]))?$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_CLOCK = re.compile(r":(now|today|as_of)\b")


class CheckDefinitionError(ValueError):
    """A check file holds a wrong field; the message names the file, the check and the field."""


Verdict = Literal["pass", "warn", "fail"]


class Expectation(BaseModel):
    """Warn/fail thresholds on a measured value: a column of each returned row, or the number of rows.

    Without ``value_column`` the measured value is the number of rows returned and every row is evidence.
    With it, each row is judged on its own value; the rows beyond a threshold are the offending rows and
    the measured value is the worst one. No ``expect`` at all means ``violations == 0``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    value_column: str | None = None
    warn_above: float | None = None
    fail_above: float | None = None
    warn_below: float | None = None
    fail_below: float | None = None

    @model_validator(mode="after")
    def _coherent(self) -> Expectation:
        if None is self.warn_above is self.fail_above is self.warn_below is self.fail_below:
            raise ValueError("expect: set at least one of warn_above, fail_above, warn_below, fail_below")
        if self.warn_above is not None and self.fail_above is not None and self.warn_above > self.fail_above:
            raise ValueError("expect: warn_above must not exceed fail_above")
        if self.warn_below is not None and self.fail_below is not None and self.warn_below < self.fail_below:
            raise ValueError("expect: warn_below must not be under fail_below")
        return self

    def judge(self, value: float) -> Verdict:
        if (self.fail_above is not None and value > self.fail_above) or (
            self.fail_below is not None and value < self.fail_below
        ):
            return "fail"
        if (self.warn_above is not None and value > self.warn_above) or (
            self.warn_below is not None and value < self.warn_below
        ):
            return "warn"
        return "pass"

    @property
    def looks_up(self) -> bool:
        """True when the thresholds are upper bounds: the worst value is then the largest."""
        return self.warn_above is not None or self.fail_above is not None


class QuerySide(BaseModel):
    """One side of a reconciliation: a read-only query on a named source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1)
    sql: str = Field(min_length=1)

    @field_validator("sql")
    @classmethod
    def _read_only(cls, sql: str) -> str:
        return check_query(sql)


class CompareColumn(BaseModel):
    """A column both sides return, equal within ``max(absolute, relative * larger magnitude)``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str = Field(min_length=1)
    absolute: Decimal = Field(Decimal(0), ge=0)
    relative: Decimal = Field(Decimal(0), ge=0, le=1)


Discrepancy = Literal["missing_left", "missing_right", "different"]

_MARK_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Incremental(BaseModel):
    """How a check or volume watch reads only what changed since its last pass (monitor/incremental.py).

    ``watermarks`` name, per watched table, a SELECT of one value that only grows: the table's high-water
    mark (``SELECT MAX(id) FROM journal_line``, a write timestamp). A pass reads each mark (``to``) and binds
    ``:<name>_from`` (the mark of the last pass) and ``:<name>_to``; ``changed`` returns the ``by`` columns of
    every entity a row in those windows touches, and ``sql`` returns the rows of the full query for exactly
    those entities (all their rows, old and new). The store keeps each entity's rows; what a watermark
    cannot see (a delete, an edit that does not move the mark) is caught by the full pass every
    ``full_every``, which also reports the drift it found.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    watermarks: dict[str, str] = Field(min_length=1)
    changed: str = Field(min_length=1)
    sql: str = Field(min_length=1)
    by: tuple[str, ...] = ()
    """The columns naming an entity; the check's ``key_columns`` (a watch's bucket column) unless given."""
    full_every: str = "24h"

    @field_validator("watermarks")
    @classmethod
    def _marks(cls, marks: dict[str, str]) -> dict[str, str]:
        for name, sql in marks.items():
            if not _MARK_NAME.match(name):
                raise ValueError(f"watermark name {name!r}: lower-case letters, digits and _ only")
            check_query(sql)
        return marks

    @field_validator("changed", "sql")
    @classmethod
    def _read_only(cls, sql: str) -> str:
        return check_query(sql)

    @field_validator("full_every")
    @classmethod
    def _full_every(cls, value: str) -> str:
        try:
            parse_interval(value)
        except ScheduleError as exc:
            raise ValueError(str(exc).replace("schedule", "full_every", 1)) from None
        return value

    def bound_names(self) -> set[str]:
        """The parameters a pass binds: ``<mark>_from`` and ``<mark>_to`` of every watermark."""
        return {f"{name}_{end}" for name in self.watermarks for end in ("from", "to")}


class CheckSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=128)
    title: str = Field(min_length=1, max_length=200)
    title_zh: str | None = Field(None, min_length=1, max_length=200)
    """The title in Simplified Chinese (shown to zh_CN readers, and to zh_TW ones without ``title_zh_tw``)."""
    title_zh_tw: str | None = Field(None, min_length=1, max_length=200)
    """The title in Traditional Chinese (shown to zh_TW readers)."""
    description: str = ""
    kind: Literal["query", "reconcile"] = "query"
    source: str = ""
    """For a reconciliation, the left source unless given (results and metrics are labelled with it)."""
    sql: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    expect: Expectation | None = None
    left: QuerySide | None = None
    right: QuerySide | None = None
    compare: tuple[CompareColumn, ...] = ()
    report: tuple[Discrepancy, ...] = ("missing_left", "missing_right", "different")
    """Which discrepancies of a reconciliation are offending rows."""
    category: Category
    severity: Priority
    amount_column: str | None = None
    key_columns: tuple[str, ...] = ()
    sample_limit: int = Field(20, ge=0, le=1000)
    schedule: str | None = None
    runbook: str | None = None
    owner: str | None = None
    tags: tuple[str, ...] = ()
    pack: str = ""
    incremental: Incremental | None = None
    """Read only the rows changed since the last pass (a query check with ``key_columns``)."""

    @field_validator("sql")
    @classmethod
    def _read_only(cls, sql: str) -> str:
        return check_query(sql) if sql else sql

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_interval(value)
            except ScheduleError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("compare", mode="before")
    @classmethod
    def _compare_names(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [{"column": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _shape(self) -> CheckSpec:
        if self.kind == "query":
            extra = [name for name in ("left", "right") if getattr(self, name) is not None]
            if extra or self.compare:
                raise ValueError(f"{(extra or ['compare'])[0]}: only for kind: reconcile")
            if not self.source or not self.sql:
                raise ValueError(f"{'source' if not self.source else 'sql'}: field required")
            if self.incremental is not None:
                self._incremental_fits(self.incremental)
            return self
        if self.incremental is not None:
            raise ValueError("incremental: only for kind: query")
        if self.left is None or self.right is None:
            raise ValueError(f"{'left' if self.left is None else 'right'}: required for kind: reconcile")
        if self.sql:
            raise ValueError("sql: a reconciliation has left.sql and right.sql instead")
        if not self.key_columns:
            raise ValueError("key_columns: a reconciliation matches rows on key_columns; name them")
        if not self.report:
            raise ValueError("report: name at least one of missing_left, missing_right, different")
        if self.expect is not None and self.expect.value_column is not None:
            raise ValueError("expect.value_column: a reconciliation is judged on its discrepancy count")
        return self

    def _incremental_fits(self, inc: Incremental) -> None:
        if not (inc.by or self.key_columns):
            raise ValueError("incremental: name the entity columns in incremental.by or key_columns")
        clock = [n for n, v in self.params.items() if isinstance(v, str) and _RELATIVE.match(v.strip())]
        if _CLOCK.search(f"{self.sql}\n{inc.sql}\n{inc.changed}") or clock:
            raise ValueError(
                "incremental: the check reads the clock (:now, :today, :as_of or a relative param), so its "
                "result changes without any row changing; such a check cannot read only changed rows"
            )
        taken = inc.bound_names() & set(self.params)
        if taken:
            raise ValueError(f"incremental: params {sorted(taken)} are bound by the watermarks")

    @model_validator(mode="before")
    @classmethod
    def _left_source_by_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kind") == "reconcile" and not data.get("source"):
            left = data.get("left")
            source = left.get("source") if isinstance(left, dict) else getattr(left, "source", None)
            if isinstance(source, str):
                data = {**data, "source": source}
        return data

    @property
    def entity_columns(self) -> tuple[str, ...]:
        """The columns naming an entity of an incremental check (``incremental.by`` or ``key_columns``)."""
        return (self.incremental.by if self.incremental else ()) or self.key_columns

    @property
    def sources(self) -> tuple[str, ...]:
        """Every source the check reads: one, or both sides of a reconciliation."""
        if self.left is not None and self.right is not None:
            return tuple(dict.fromkeys((self.left.source, self.right.source)))
        return (self.source,)

    @field_validator("params")
    @classmethod
    def _params_resolve(cls, params: dict[str, Any]) -> dict[str, Any]:
        reserved = {"now", "today", "as_of"} & set(params)
        if reserved:
            raise ValueError(f"{sorted(reserved)} are built-in parameters and cannot be redefined")
        probe = datetime(2000, 1, 1, tzinfo=UTC)
        for name, value in params.items():
            resolve_param(name, value, probe)
        return params


def resolve_param(name: str, value: Any, now: datetime) -> Any:
    if isinstance(value, str):
        match = _RELATIVE.match(value.strip())
        if match:
            anchor, sign, amount, unit = match.groups()
            base: datetime | date = now.replace(tzinfo=None) if anchor == "now" else now.date()
            if sign:
                delta = timedelta(**{_UNITS[unit]: int(amount)})
                if anchor == "today" and unit != "d":
                    raise ValueError(f"param '{name}': 'today' moves in whole days (use 'd'), got {value!r}")
                base = base + delta if sign == "+" else base - delta
            return base
        if re.match(r"^\s*(now|today)\b", value):
            raise ValueError(f"param '{name}': {value!r} is not now|today with an optional ±N s|m|h|d")
    if isinstance(value, bool | int | float | str | date | None):
        return value
    raise ValueError(f"param '{name}': expected a number, text, date or now/today±N[smhd], got {value!r}")
