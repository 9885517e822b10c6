"""Declarative data-consistency checks: YAML definitions, validation, and read-only execution.

A check is a SELECT that returns one row per offending entity, plus what to make of it (category,
severity, the entity's key columns, money at risk). The engine runs it read-only and bounded: a read-only
transaction where the database supports one, a statement timeout, and a cap on the rows it fetches. A
check that cannot run (bad SQL, timeout, lost connection) is an ``error`` result with the reason: never a
pass, never a crash.

No ``expect`` means ``violations == 0``; an ``expect`` sets warn/fail thresholds on the number of rows or on a
column of each row (:class:`monitor.specs.Expectation`, judged by :func:`judged`). The definitions live in
:mod:`monitor.specs`; ``kind: reconcile`` checks read two sources and run in :mod:`monitor.reconcile`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import Connection, Date, DateTime, Engine, Numeric, bindparam, text
from sqlalchemy.exc import SQLAlchemyError

from core.jsonable import jsonable
from monitor.readonly import query_refusal
from monitor.results import CheckResult
from monitor.settings import MonitorConfig
from monitor.sources import READ_ONLY_DIALECTS, UnsupportedSourceError, unsupported_engine
from monitor.specs import (
    CheckDefinitionError,
    CheckSpec,
    CompareColumn,
    Discrepancy,
    Expectation,
    QuerySide,
    Verdict,
    resolve_param,
)

__all__ = [
    "ROW_CAP",
    "CheckDefinitionError",
    "CheckResult",
    "CheckSpec",
    "CompareColumn",
    "Discrepancy",
    "Expectation",
    "QuerySide",
    "Rows",
    "blank_result",
    "bound_parameters",
    "fetch_rows",
    "judged",
    "load_checks",
    "load_pack",
    "load_path",
    "parse_checks",
    "read_rows",
    "reason",
    "run_check",
    "shipped_packs",
]

ROW_CAP = 10_000
"""Offending rows fetched at most per check: enough to count and fingerprint, bounded in memory."""


def bound_parameters(spec: CheckSpec, now: datetime, as_of: date | None = None) -> dict[str, Any]:
    """The values bound to the check's SQL: built-ins ``now`` (naive UTC), ``today``, ``as_of``."""
    now = now.astimezone(UTC)
    values: dict[str, Any] = {
        "now": now.replace(tzinfo=None),
        "today": now.date(),
        "as_of": as_of or now.date(),
    }
    for name, value in spec.params.items():
        values[name] = resolve_param(name, value, now)
    return values


def _statement(check_id: str, sql: str, values: Mapping[str, Any]) -> Any:
    stmt = text(sql)
    present = set(stmt.compile().params)
    missing = present - set(values)
    if missing:
        raise CheckDefinitionError(f"check {check_id}: SQL uses undefined parameter(s) {sorted(missing)}")
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
    if isinstance(data, dict) and ("checks" in data or "volumes" in data):
        data = data.get("checks") or []  # volume watches are read by monitor.volumes.parse_volumes
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
            specs.append(CheckSpec.model_validate({"pack": pack, **raw}))
        except ValidationError as exc:
            problems = "; ".join(_problem(err) for err in exc.errors())
            raise CheckDefinitionError(f"{origin}: check {label}: {problems}") from None
    return specs


def _problem(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"])
    message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
    message = message.removeprefix("Value error, ")
    if not where:  # a check-level rule: its message starts with the field it is about
        field_, _, rest = message.partition(": ")
        return f"field '{field_}': {rest}" if rest else message
    return f"field '{where}': {message}"


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
        except UnicodeDecodeError:
            raise CheckDefinitionError(f"{file}: not UTF-8 text") from None
        specs.extend(parse_checks(content, str(file), pack=file.stem))
    return specs


def load_checks(
    packs: Iterable[str], paths: Iterable[Path] = (), *, sample_limit: int | None = None
) -> list[CheckSpec]:
    """Every check of the named packs and files; ids must be unique across them. ``sample_limit`` (the
    ``checks.sample_limit`` setting) is the evidence rows kept by checks that do not set their own."""
    specs = [spec for name in packs for spec in load_pack(name)]
    specs += [spec for path in paths for spec in load_path(path)]
    seen: dict[str, str] = {}
    for spec in specs:
        if spec.id in seen:
            raise CheckDefinitionError(
                f"check id '{spec.id}' is defined twice (packs {seen[spec.id]}, {spec.pack})"
            )
        seen[spec.id] = spec.pack
    if sample_limit is not None:
        specs = [
            s if "sample_limit" in s.model_fields_set else s.model_copy(update={"sample_limit": sample_limit})
            for s in specs
        ]
    return specs


def configured_checks(settings: MonitorConfig) -> list[CheckSpec]:
    """The checks the settings name (``checks.packs`` and ``checks.paths``, ``checks.sample_limit``)."""
    conf = settings.checks
    return load_checks(conf.packs, conf.paths, sample_limit=conf.sample_limit)


# --- execution -----------------------------------------------------------------------------------------


def make_read_only(conn: Connection, timeout_s: float) -> None:
    """Make this connection's transaction read-only and time-bounded, by the means the engine has.

    Every query Hypercare sends a monitored source (checks, collectors, dual-run sides) passes here first,
    so an engine without a branch below is refused (:class:`~monitor.sources.UnsupportedSourceError`) rather
    than queried unguarded. :func:`monitor.sources.source_engine` refuses it earlier, when the engine is
    made; this also holds for engines made any other way.
    """
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
    else:  # the engines of monitor.sources.READ_ONLY_DIALECTS, and no other
        raise unsupported_engine(dialect)


def _money(value: Any) -> Decimal:
    try:
        return abs(Decimal(str(value))).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return Decimal(0)


@dataclass(frozen=True)
class Rows:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool = False
    """True when the query had more rows than the cap."""

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def fetch_rows(
    engine: Engine,
    check_id: str,
    sql: str,
    values: Mapping[str, Any],
    timeout_s: float,
    *,
    cap: int = ROW_CAP,
) -> Rows:
    """Run one check query read-only and time-bounded; at most ``cap`` rows are fetched.

    The query is judged again by the read-only allow-list in the engine's own dialect before it is sent
    (it was judged in every reading when its file loaded): refused, it raises :class:`CheckDefinitionError`.
    """
    if engine.dialect.name not in READ_ONLY_DIALECTS:
        raise unsupported_engine(engine.dialect.name)
    problem = query_refusal(sql, engine.dialect.name)
    if problem is not None:
        raise CheckDefinitionError(f"{check_id}: refused: {problem}")
    with engine.connect() as conn:
        try:
            make_read_only(conn, timeout_s)
            return read_rows(conn, check_id, sql, values, cap=cap)
        finally:
            conn.rollback()  # nothing to keep: a check never writes


def read_rows(
    conn: Connection, check_id: str, sql: str, values: Mapping[str, Any], *, cap: int = ROW_CAP
) -> Rows:
    """One query on a connection already made read-only (:func:`make_read_only`); at most ``cap`` rows.

    The query is judged by the read-only allow-list in the connection's dialect first."""
    problem = query_refusal(sql, conn.dialect.name)
    if problem is not None:
        raise CheckDefinitionError(f"{check_id}: refused: {problem}")
    result = conn.execute(_statement(check_id, sql, values))
    columns = list(result.keys())
    rows = [tuple(row) for row in result.fetchmany(cap + 1)]
    return Rows(columns, rows[:cap], truncated=len(rows) > cap)


def blank_result(spec: CheckSpec, started: datetime) -> CheckResult:
    """The ``error`` result a check starts from; the runner fills in what it found."""
    return CheckResult(
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


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


def judged(
    base: CheckResult,
    spec: CheckSpec,
    records: list[dict[str, Any]],
    amounts: list[Decimal] | None,
) -> CheckResult:
    """The outcome of a check whose query returned ``records``, judged by its expectation.

    ``amounts`` is the money at risk of each record (None when the check has no amount).
    """
    expect = spec.expect
    status: Verdict = "fail" if records else "pass"
    measured: float | None = float(len(records))
    offending = list(range(len(records)))
    if expect is not None and expect.value_column is None:
        status = expect.judge(len(records))
    elif expect is not None and expect.value_column is not None:
        column = expect.value_column
        values = [_number(r[column]) for r in records]
        bad = next((n for n, v in enumerate(values) if v is None), None)
        if bad is not None:
            return replace(
                base, error=f"column '{column}' is not a number in row {bad + 1}: {records[bad][column]!r}"
            )
        numbers = [v for v in values if v is not None]
        verdicts = [expect.judge(v) for v in numbers]
        rank = {"pass": 0, "warn": 1, "fail": 2}
        status = max(verdicts, key=rank.__getitem__, default="pass")
        offending = [n for n, verdict in enumerate(verdicts) if verdict != "pass"]
        worst = [v for v, verdict in zip(numbers, verdicts, strict=True) if verdict == status]
        measured = (max(worst) if expect.looks_up else min(worst)) if worst else None
    rows = [records[n] for n in offending]
    money = [amounts[n] for n in offending] if amounts is not None else []
    return replace(
        base,
        status=status,
        violations=len(rows),
        measured_value=measured,
        amount_at_risk=sum(money, Decimal("0.00")) if amounts is not None and rows else None,
        sample=[{k: jsonable(v, float_digits=9) for k, v in r.items()} for r in rows[: spec.sample_limit]],
        entities=[{k: str(jsonable(r[k], float_digits=9)) for k in spec.key_columns} for r in rows],
        amounts=list[Decimal | None](money),
    )


def run_check(
    spec: CheckSpec,
    engine: Engine,
    *,
    now: datetime | None = None,
    as_of: date | None = None,
    timeout_s: float = 30.0,
) -> CheckResult:
    """Run one check read-only; any failure to run becomes an ``error`` result naming the reason.

    A reconciliation reads two sources: run it with :func:`monitor.reconcile.run_reconcile`.
    """
    now = now or datetime.now(UTC)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    base = blank_result(spec, started)

    def finished() -> datetime:
        return started + timedelta(seconds=time.perf_counter() - t0)

    if spec.kind != "query":
        return replace(base, error=f"check {spec.id} is a {spec.kind} check: run it with run_reconcile")
    try:
        fetched = fetch_rows(engine, spec.id, spec.sql, bound_parameters(spec, now, as_of), timeout_s)
    except (SQLAlchemyError, CheckDefinitionError, UnsupportedSourceError) as exc:
        return replace(base, finished_at=finished(), error=reason(exc))

    value_column = spec.expect.value_column if spec.expect else None
    wanted = (*spec.key_columns, spec.amount_column, value_column)
    missing = [c for c in wanted if c and c not in fetched.columns]
    if missing:
        return replace(
            base,
            finished_at=finished(),
            error=f"query returned no column(s) {missing}; it returned {fetched.columns}",
        )
    records = fetched.records()
    amounts = [_money(r[spec.amount_column]) for r in records] if spec.amount_column else None
    return replace(judged(base, spec, records, amounts), finished_at=finished())


def reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text_ = str(orig if orig is not None else exc).strip()
    return (text_.splitlines()[0] if text_ else type(exc).__name__)[:500]
