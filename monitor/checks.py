"""Declarative data-consistency checks: YAML definitions, validation, and read-only execution.

A check is a SELECT that returns one row per offending entity, plus what to make of it (category,
severity, the entity's key columns, money at risk). The engine runs it read-only and bounded: a read-only
transaction where the database supports one, a statement timeout, and a cap on the rows it fetches. A
check that cannot run (bad SQL, timeout, lost connection) is an ``error`` result with the reason: never a
pass, never a crash.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Connection, Date, DateTime, Engine, Numeric, bindparam, text
from sqlalchemy.exc import SQLAlchemyError

from monitor.results import CheckResult

ROW_CAP = 10_000
"""Offending rows fetched at most per check: enough to count and fingerprint, bounded in memory."""

_RELATIVE = re.compile(r"^(now|today)(?:\s*([+-])\s*(\d+)\s*([smhd]))?$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_WRITE_WORDS = re.compile(
    r"\b(insert|update|delete|merge|drop|alter|create|truncate|grant|revoke|call|copy|vacuum|attach|pragma)\b",
    re.IGNORECASE,
)


class CheckDefinitionError(ValueError):
    """A check file holds a wrong field; the message names the file, the check and the field."""


class CheckSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=128)
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    source: str = Field(min_length=1)
    sql: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    category: Literal["data", "process", "technical", "user"]
    severity: Literal["P1", "P2", "P3", "P4"]
    amount_column: str | None = None
    key_columns: tuple[str, ...] = ()
    sample_limit: int = Field(20, ge=0, le=1000)
    schedule: str | None = None
    runbook: str | None = None
    owner: str | None = None
    tags: tuple[str, ...] = ()
    pack: str = ""

    @field_validator("sql")
    @classmethod
    def _read_only(cls, sql: str) -> str:
        stripped = _strip_sql_comments(sql).strip().rstrip(";").strip()
        if not re.match(r"^(select|with)\b", stripped, re.IGNORECASE):
            raise ValueError("must be a single SELECT (or WITH ... SELECT) statement")
        if ";" in stripped:
            raise ValueError("must be one statement (found ';')")
        word = _WRITE_WORDS.search(stripped)
        if word:
            raise ValueError(f"must be read-only; found '{word.group(0)}'")
        return sql

    @field_validator("params")
    @classmethod
    def _params_resolve(cls, params: dict[str, Any]) -> dict[str, Any]:
        reserved = {"now", "today", "as_of"} & set(params)
        if reserved:
            raise ValueError(f"{sorted(reserved)} are built-in parameters and cannot be redefined")
        probe = datetime(2000, 1, 1, tzinfo=UTC)
        for name, value in params.items():
            _resolve_param(name, value, probe)
        return params


def _strip_sql_comments(sql: str) -> str:
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.DOTALL)
    sql = re.sub(r"'(?:[^']|'')*'", "''", sql)  # string literals may say 'update' harmlessly
    return re.sub(r"--[^\n]*", " ", sql)


def _resolve_param(name: str, value: Any, now: datetime) -> Any:
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


def bound_parameters(spec: CheckSpec, now: datetime, as_of: date | None = None) -> dict[str, Any]:
    """The values bound to the check's SQL: built-ins ``now`` (naive UTC), ``today``, ``as_of``."""
    now = now.astimezone(UTC)
    values: dict[str, Any] = {
        "now": now.replace(tzinfo=None),
        "today": now.date(),
        "as_of": as_of or now.date(),
    }
    for name, value in spec.params.items():
        values[name] = _resolve_param(name, value, now)
    return values


def _statement(spec: CheckSpec, values: Mapping[str, Any]) -> Any:
    stmt = text(spec.sql)
    present = set(stmt.compile().params)
    missing = present - set(values)
    if missing:
        raise CheckDefinitionError(f"check {spec.id}: SQL uses undefined parameter(s) {sorted(missing)}")
    binds = []
    for name in present:
        value = values[name]
        kind: Any = None  # typed binds render the same literal form on every engine
        if isinstance(value, datetime):
            kind = DateTime()
        elif isinstance(value, date):
            kind = Date()
        elif isinstance(value, Decimal):
            kind = Numeric()
        binds.append(bindparam(name, value, type_=kind))
    return stmt.bindparams(*binds)


# --- loading -------------------------------------------------------------------------------------------


def _load_documents(text_: str, origin: str) -> list[dict[str, Any]]:
    try:
        data = yaml.safe_load(text_)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise CheckDefinitionError(f"{origin}:{where}: {getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        return []
    if isinstance(data, dict) and "checks" in data:
        data = data["checks"]
    elif isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise CheckDefinitionError(f"{origin}: expected a list of checks under 'checks:'")
    return data


def parse_checks(text_: str, origin: str, pack: str = "") -> list[CheckSpec]:
    specs = []
    for index, raw in enumerate(_load_documents(text_, origin)):
        label = raw.get("id") or f"#{index + 1}"
        try:
            specs.append(CheckSpec(**{"pack": pack, **raw}))
        except ValidationError as exc:
            problems = "; ".join(
                f"field '{'.'.join(str(p) for p in err['loc']) or '?'}': "
                + ("unknown field" if err["type"] == "extra_forbidden" else err["msg"])
                for err in exc.errors()
            )
            raise CheckDefinitionError(f"{origin}: check {label}: {problems}") from None
    return specs


def shipped_packs() -> list[str]:
    folder = resources.files("monitor") / "packs"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_pack(name: str) -> list[CheckSpec]:
    if name not in shipped_packs():
        raise CheckDefinitionError(
            f"unknown check pack '{name}'; shipped packs: {', '.join(shipped_packs())}"
        )
    resource = resources.files("monitor") / "packs" / f"{name}.yaml"
    return parse_checks(resource.read_text(encoding="utf-8"), f"monitor/packs/{name}.yaml", pack=name)


def load_path(path: Path) -> list[CheckSpec]:
    files = sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]
    specs: list[CheckSpec] = []
    for file in files:
        try:
            content = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise CheckDefinitionError(f"{file}: cannot read ({exc.strerror})") from None
        specs.extend(parse_checks(content, str(file), pack=file.stem))
    return specs


def load_checks(packs: Iterable[str], paths: Iterable[Path] = ()) -> list[CheckSpec]:
    """Every check of the named packs and files; ids must be unique across them."""
    specs = [spec for name in packs for spec in load_pack(name)]
    specs += [spec for path in paths for spec in load_path(path)]
    seen: dict[str, str] = {}
    for spec in specs:
        if spec.id in seen:
            raise CheckDefinitionError(
                f"check id '{spec.id}' is defined twice (packs {seen[spec.id]}, {spec.pack})"
            )
        seen[spec.id] = spec.pack
    return specs


# --- execution -----------------------------------------------------------------------------------------


def _read_only(conn: Connection, timeout_s: float) -> None:
    """Make this connection's transaction read-only and time-bounded, by the means the engine has."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
    elif dialect in {"mysql", "mariadb"}:
        conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
        if getattr(conn.dialect, "is_mariadb", False):
            conn.exec_driver_sql(f"SET SESSION max_statement_time = {float(timeout_s)}")
        else:
            conn.exec_driver_sql(f"SET SESSION max_execution_time = {int(timeout_s * 1000)}")
    elif dialect == "sqlite":
        conn.exec_driver_sql("PRAGMA query_only = ON")  # on top of mode=ro (monitor.sources)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 9)  # SQLite hands back NUMERIC sums as binary floats: 502.5300000000002
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def _money(value: Any) -> Decimal:
    try:
        return abs(Decimal(str(value))).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return Decimal(0)


@dataclass(frozen=True)
class _Rows:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def _fetch(engine: Engine, spec: CheckSpec, values: Mapping[str, Any], timeout_s: float) -> _Rows:
    stmt = _statement(spec, values)
    with engine.connect() as conn:
        try:
            _read_only(conn, timeout_s)
            result = conn.execute(stmt)
            columns = list(result.keys())
            rows = [tuple(row) for row in result.fetchmany(ROW_CAP)]
        finally:
            conn.rollback()  # nothing to keep: a check never writes
    return _Rows(columns, rows)


def run_check(
    spec: CheckSpec,
    engine: Engine,
    *,
    now: datetime | None = None,
    as_of: date | None = None,
    timeout_s: float = 30.0,
) -> CheckResult:
    """Run one check read-only; any failure to run becomes an ``error`` result naming the reason."""
    now = now or datetime.now(UTC)
    started = datetime.now(UTC)
    t0 = time.perf_counter()

    def finished() -> datetime:
        return started + timedelta(seconds=time.perf_counter() - t0)

    base = CheckResult(
        check_id=spec.id,
        source=spec.source,
        status="error",
        title=spec.title,
        category=spec.category,
        severity=spec.severity,
        runbook=spec.runbook,
        owner=spec.owner,
        tags=spec.tags,
        started_at=started,
        finished_at=started,
    )
    try:
        fetched = _fetch(engine, spec, bound_parameters(spec, now, as_of), timeout_s)
    except (SQLAlchemyError, CheckDefinitionError) as exc:
        return replace(base, finished_at=finished(), error=_reason(exc))

    missing = [c for c in (*spec.key_columns, spec.amount_column) if c and c not in fetched.columns]
    if missing:
        return replace(
            base,
            finished_at=finished(),
            error=f"query returned no column(s) {missing}; it returned {fetched.columns}",
        )
    records = [dict(zip(fetched.columns, row, strict=True)) for row in fetched.rows]
    amounts = [_money(r[spec.amount_column]) for r in records] if spec.amount_column else []
    amount = sum(amounts, Decimal("0.00")) if spec.amount_column else None
    return replace(
        base,
        status="fail" if records else "pass",
        finished_at=finished(),
        violations=len(records),
        measured_value=float(len(records)),
        amount_at_risk=amount if records else None,
        sample=[{k: _jsonable(v) for k, v in r.items()} for r in records[: spec.sample_limit]],
        entities=[{k: str(_jsonable(r[k])) for k in spec.key_columns} for r in records],
        amounts=list[Decimal | None](amounts),
    )


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text_ = str(orig if orig is not None else exc).strip()
    return (text_.splitlines()[0] if text_ else type(exc).__name__)[:500]
