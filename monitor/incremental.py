"""Incremental checks: each pass reads only the rows written since the last one, results as a full scan's.

A check declares ``incremental:`` (:class:`monitor.specs.Incremental`): the high-water mark of each table
it watches (``SELECT MAX(id) FROM journal_line``), a ``changed`` query returning the entities touched by the
rows between the last pass's marks and this pass's (``:<mark>_from`` exclusive, ``:<mark>_to`` inclusive),
and ``sql``, the check's own query restricted to those entities. The store (never the ERP) keeps the rows
the query returned for every entity (``check_entity_state``) and the marks (``check_watermark``); a pass
replaces the rows of the entities it saw touched and judges the whole kept set, so violations, entities and
amounts are those of a full scan.

What a watermark cannot see -- a deleted row, an edit that does not move the mark (a back-dated write, a
table whose mark is an insert id), a row committed after a later one -- is caught by the full pass, due
every ``full_every`` (and whenever the check's definition changed, or there is no state yet). It first
catches the state up to its own marks, in the same snapshot, then runs the full query and compares: each
entity whose rows differ is drift, reported as the ``hypercare_check_incremental_drift`` gauge and a
warning log line, and the state is corrected to the full scan.

Every query of a pass runs in one read-only, time-bounded transaction on the source (REPEATABLE READ on
PostgreSQL, one snapshot), so the marks and the rows read agree.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core.jsonable import jsonable
from core.session import session_scope
from monitor.checks import (
    ROW_CAP,
    CheckDefinitionError,
    CheckSpec,
    Rows,
    _money,
    blank_result,
    bound_parameters,
    judged,
    make_read_only,
    read_rows,
    reason,
)
from monitor.intervals import parse_interval
from monitor.models import CheckEntityState, CheckWatermark
from monitor.results import CheckResult, MetricSample
from monitor.sources import READ_ONLY_DIALECTS, UnsupportedSourceError, unsupported_engine
from monitor.specs import Incremental

log = logging.getLogger(__name__)

DRIFT_METRIC = "hypercare_check_incremental_drift"
ROWS_METRIC = "hypercare_check_rows_fetched"
CHANGED_CAP = 100_000
"""Touched entities one incremental pass takes at most; beyond, the pass is a full one."""
_CHUNK = 500

Mode = Literal["full", "incremental"]


@dataclass
class Outcome:
    """What one pass of an incremental check found: its result, samples, and how it read."""

    result: CheckResult
    samples: list[MetricSample] = field(default_factory=list)
    mode: Mode = "full"
    rows_fetched: int = 0
    drift: int | None = None
    """On a full pass that had a state to compare: the entities whose rows differed (0: none)."""


def fingerprint(spec: CheckSpec, inc: Incremental) -> str:
    """What the kept state depends on: a change of any of it starts over with a full pass."""
    body = {
        "sql": spec.sql,
        "params": {k: jsonable(v) for k, v in sorted(spec.params.items())},
        "incremental": inc.model_dump(mode="json"),
        "by": list(spec.entity_columns),
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _entity(record: Mapping[str, Any], by: Sequence[str]) -> str:
    return json.dumps([str(record[c]) for c in by])


def _natural(entity: str) -> tuple[tuple[int, float, str], ...]:
    out = []
    for value in json.loads(entity):
        try:
            out.append((0, float(value), value))
        except ValueError:
            out.append((1, 0.0, value))
    return tuple(out)


def _mark(value: Any) -> Any:
    """A watermark as the store keeps it (JSON): ``[type, text]``."""
    if isinstance(value, datetime):
        return ["datetime", value.isoformat()]
    if isinstance(value, date):
        return ["date", value.isoformat()]
    if isinstance(value, Decimal):
        return ["decimal", str(value)]
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return ["int", value]
    return ["text", str(value)]


def _unmark(stored: Any) -> Any:
    kind, value = stored
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "decimal":
        return Decimal(value)
    return value


def _group(rows: Rows, by: Sequence[str]) -> dict[str, list[list[Any]]]:
    out: dict[str, list[list[Any]]] = {}
    for row in rows.rows:
        values = [jsonable(v, float_digits=9) for v in row]
        out.setdefault(_entity(dict(zip(rows.columns, values, strict=True)), by), []).append(values)
    return out


@dataclass
class _Read:
    """What the source answered in one snapshot."""

    marks: dict[str, Any]
    columns: list[str]
    full: dict[str, list[list[Any]]] | None = None
    """Every entity's rows (a full pass)."""
    touched: set[str] = field(default_factory=set)
    changed: dict[str, list[list[Any]]] = field(default_factory=dict)
    """The touched entities' rows (an incremental pass, or a full pass's catch-up)."""
    fetched: int = 0
    truncated: bool = False
    caught_up: bool = False
    """The touched entities were read (a full pass can then measure the drift of the kept state)."""


class _Fallback(Exception):
    """The incremental read cannot be trusted this time: read in full."""


def run_incremental_check(
    spec: CheckSpec,
    engine: Engine,
    factory: sessionmaker[Session],
    *,
    now: datetime | None = None,
    timeout_s: float = 30.0,
    full: bool = False,
) -> Outcome:
    """One pass of an incremental check: incremental, or full when due (``full`` forces it).

    Any failure to run is an ``error`` result naming the reason, never a raise (a store error included:
    the state is then left as it was and the next pass reads from the same marks)."""
    inc = spec.incremental
    if inc is None:
        raise ValueError(f"check {spec.id} has no incremental: block")
    now = now or datetime.now(UTC)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    base = blank_result(spec, started)

    def finished() -> datetime:
        return started + timedelta(seconds=time.perf_counter() - t0)

    try:
        outcome = _pass(spec, inc, engine, factory, now=now, timeout_s=timeout_s, force_full=full)
    except (SQLAlchemyError, CheckDefinitionError, UnsupportedSourceError) as exc:
        return Outcome(replace(base, finished_at=finished(), error=reason(exc)))
    outcome.result = replace(outcome.result, started_at=started, finished_at=finished())
    labels = {"check_id": spec.id, "source": spec.source, "mode": outcome.mode}
    outcome.samples.append(MetricSample(ROWS_METRIC, float(outcome.rows_fetched), labels, now))
    if outcome.drift is not None:
        drift_labels = {"check_id": spec.id, "source": spec.source}
        outcome.samples.append(MetricSample(DRIFT_METRIC, float(outcome.drift), drift_labels, now))
    return outcome


def _pass(
    spec: CheckSpec,
    inc: Incremental,
    engine: Engine,
    factory: sessionmaker[Session],
    *,
    now: datetime,
    timeout_s: float,
    force_full: bool,
) -> Outcome:
    print_ = fingerprint(spec, inc)
    with session_scope(factory) as session:
        state = session.scalar(
            select(CheckWatermark).where(
                CheckWatermark.unit_id == spec.id, CheckWatermark.source == spec.source
            )
        )
        kept = None
        if state is not None and state.fingerprint == print_:
            kept = (
                {k: _unmark(v) for k, v in state.marks.items()} if None not in state.marks.values() else None,
                list(state.columns),
                state.last_full_at,
            )
    marks = kept[0] if kept else None
    due = kept is None or marks is None or force_full or kept[2] + parse_interval(inc.full_every) <= now
    read = _read(spec, inc, engine, timeout_s, marks, full=due)
    if read.full is None and not read.columns and kept:
        read.columns = kept[1]  # nothing touched: the kept rows stand
    if read.full is None and read.columns != (kept[1] if kept else []):
        raise CheckDefinitionError(
            f"check {spec.id}: incremental.sql returns columns {read.columns}, the check's sql "
            f"returned {kept[1] if kept else []}"
        )
    missing = [c for c in (*spec.key_columns, *spec.entity_columns, spec.amount_column) if c]
    missing += [spec.expect.value_column] if spec.expect and spec.expect.value_column else []
    absent = sorted({c for c in missing if c not in read.columns})
    if absent:
        raise CheckDefinitionError(f"query returned no column(s) {absent}; it returned {read.columns}")
    with session_scope(factory) as session:
        records, drift = _store(session, spec, print_, read, now)
    if read.truncated:
        log.warning(
            "incremental check %s on %s: more than %d rows; the state is not kept, the next pass is full",
            spec.id,
            spec.source,
            ROW_CAP,
            extra={"check_id": spec.id, "source": spec.source},
        )
    if drift:
        log.warning(
            "incremental check %s on %s: the full pass found %d entities the incremental passes had wrong",
            spec.id,
            spec.source,
            drift,
            extra={"check_id": spec.id, "source": spec.source, "drift": drift},
        )
    amounts = [_money(r[spec.amount_column]) for r in records] if spec.amount_column else None
    result = judged(blank_result(spec, now), spec, records, amounts)
    mode: Mode = "full" if read.full is not None else "incremental"
    return Outcome(result, mode=mode, rows_fetched=read.fetched, drift=drift)


def _read(
    spec: CheckSpec,
    inc: Incremental,
    engine: Engine,
    timeout_s: float,
    marks: dict[str, Any] | None,
    *,
    full: bool,
) -> _Read:
    """Read the marks, then the touched entities (and everything, on a full pass), in one snapshot."""
    if engine.dialect.name not in READ_ONLY_DIALECTS:
        raise unsupported_engine(engine.dialect.name)
    values = bound_parameters(spec, datetime.now(UTC))
    with engine.connect() as conn:
        try:
            make_read_only(conn, timeout_s)
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            now_marks = {name: _scalar(conn, spec.id, name, sql) for name, sql in inc.watermarks.items()}
            read = _Read(now_marks, [])
            try:
                if marks is not None:
                    _changed(conn, spec, inc, values, marks=marks, read=read)
            except _Fallback:
                read = _Read(now_marks, [])
                full = True
            if full:
                rows = read_rows(conn, spec.id, spec.sql, values, cap=ROW_CAP)
                read.columns, read.full, read.truncated = (
                    rows.columns,
                    _group(rows, spec.entity_columns),
                    rows.truncated,
                )
                read.fetched += len(rows.rows)
        finally:
            conn.rollback()  # nothing to keep: a check never writes
    return read


def _scalar(conn: Connection, check_id: str, name: str, sql: str) -> Any:
    rows = read_rows(conn, f"{check_id} watermark {name}", sql, {}, cap=1)
    if len(rows.columns) != 1:
        raise CheckDefinitionError(f"check {check_id}: watermark {name} must return one column")
    return rows.rows[0][0] if rows.rows else None


def _changed(
    conn: Connection,
    spec: CheckSpec,
    inc: Incremental,
    values: dict[str, Any],
    *,
    marks: dict[str, Any],
    read: _Read,
) -> None:
    """The entities touched between ``marks`` and ``read.marks``, and their rows."""
    bound = dict(values)
    for name, to in read.marks.items():
        since = marks.get(name)
        if to is None or since is None:
            raise _Fallback  # a table emptied, or a mark added: start over
        try:
            if to < since:
                raise _Fallback  # the mark went back (a restored or rebuilt table)
        except TypeError:
            raise _Fallback from None
        bound[f"{name}_from"], bound[f"{name}_to"] = since, to
    touched = read_rows(conn, spec.id, inc.changed, bound, cap=CHANGED_CAP)
    if touched.truncated:
        raise _Fallback
    by = spec.entity_columns
    absent = [c for c in by if c not in touched.columns]
    if absent:
        raise CheckDefinitionError(f"check {spec.id}: incremental.changed returned no column(s) {absent}")
    read.touched = set(_group(touched, by))
    read.fetched += len(touched.rows)
    read.caught_up = True
    if not read.touched:
        return
    rows = read_rows(conn, spec.id, inc.sql, bound, cap=ROW_CAP)
    if rows.truncated:
        raise _Fallback
    read.columns = rows.columns
    read.changed = _group(rows, by)
    read.fetched += len(rows.rows)


def _store(
    session: Session, spec: CheckSpec, print_: str, read: _Read, now: datetime
) -> tuple[list[dict[str, Any]], int | None]:
    """Apply a pass to the kept state; every kept record (entity order) and the drift of a full pass."""
    where = (CheckEntityState.unit_id == spec.id, CheckEntityState.source == spec.source)
    state = session.scalar(
        select(CheckWatermark).where(CheckWatermark.unit_id == spec.id, CheckWatermark.source == spec.source)
    )
    if read.truncated:  # more rows than the cap: judge what was read, keep nothing
        session.execute(delete(CheckEntityState).where(*where))
        if state is not None:
            session.delete(state)
        full = read.full or {}
        records = [dict(zip(read.columns, r, strict=True)) for rows in full.values() for r in rows]
        return records, None
    comparable = state is not None and state.fingerprint == print_
    kept: dict[str, list[list[Any]]] = (
        {
            e: list(r)
            for e, r in session.execute(
                select(CheckEntityState.entity, CheckEntityState.rows).where(*where)
            ).all()
        }
        if comparable
        else {}
    )
    if not comparable:
        session.execute(delete(CheckEntityState).where(*where))
    drift: int | None = None
    if read.full is not None:
        if comparable and read.caught_up:
            caught_up = {e: r for e, r in kept.items() if e not in read.touched} | read.changed
            drift = len(_differing(caught_up, read.full))
        gone = _differing(kept, read.full)
        new = {e: read.full[e] for e in gone if e in read.full}
        after = read.full
    else:
        gone = (read.touched | set(read.changed)) & set(kept)
        new = read.changed
        after = {e: r for e, r in kept.items() if e not in read.touched} | read.changed
    for chunk in _chunks(sorted(gone)):
        session.execute(delete(CheckEntityState).where(*where, CheckEntityState.entity.in_(chunk)))
    session.add_all(
        CheckEntityState(unit_id=spec.id, source=spec.source, entity=e, rows=r) for e, r in new.items()
    )
    if state is None:
        state = CheckWatermark(unit_id=spec.id, source=spec.source)
        session.add(state)
    state.fingerprint = print_
    state.marks = {name: _mark(v) for name, v in read.marks.items()}
    if read.columns:
        state.columns = read.columns
    state.last_pass_at = now
    if read.full is not None:
        state.last_full_at = now
        state.last_drift = drift or 0
    columns = read.columns or list(state.columns)
    records = [dict(zip(columns, r, strict=True)) for e in sorted(after, key=_natural) for r in after[e]]
    return records, drift


def _differing(a: Mapping[str, list[list[Any]]], b: Mapping[str, list[list[Any]]]) -> set[str]:
    return {e for e in set(a) | set(b) if _canon(a.get(e)) != _canon(b.get(e))}


def _canon(rows: list[list[Any]] | None) -> str | None:
    return None if rows is None else json.dumps(sorted(json.dumps(r, default=str) for r in rows))


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
