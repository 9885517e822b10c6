"""Leases on scheduled work, kept in the store's ``work_lease`` table (one row per unit, one per source).

PostgreSQL: due rows are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` and stamped with the worker's
id and an expiry, in one short transaction; several `hypercare collect` processes share the work without
ever running one unit twice at once. A running unit's lease is renewed every tick; a worker that dies
stops renewing, and its unit is taken over once the lease expires.

SQLite (the embedded default) has no row locks: the same statements run without ``FOR UPDATE``, and
the scheduler must run as ONE process there; its threads never race, because only the scheduler's loop
thread claims. Run several `hypercare collect` processes only against PostgreSQL.

Times are the workers' clocks (UTC); keep them NTP-synchronised and ``lease_s`` well above any skew.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from monitor.models import WorkLease

log = logging.getLogger(__name__)
SourceState = Literal["down", "up"]


@dataclass(frozen=True)
class UnitRow:
    """What the scheduler seeds: a unit's key, kind and source, and when it is first due."""

    key: str
    kind: str
    source: str
    first_due_at: datetime | None


@dataclass(frozen=True)
class SourceChange:
    """A source went down (first failure) or came back (first success after being down)."""

    source: str
    state: SourceState
    reason: str | None
    at: datetime
    failures: int = 0
    retry_at: datetime | None = None


def source_key(source: str) -> str:
    return f"source:{source}"


def seed(session: Session, rows: Iterable[UnitRow]) -> None:
    """Insert the rows that do not exist yet; existing rows keep their schedule and state."""
    values = [{"key": r.key, "kind": r.kind, "source": r.source, "next_due_at": r.first_due_at} for r in rows]
    if not values:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(
            postgresql.insert(WorkLease).values(values).on_conflict_do_nothing(index_elements=["key"])
        )
    elif dialect == "sqlite":
        session.execute(
            sqlite.insert(WorkLease).values(values).on_conflict_do_nothing(index_elements=["key"])
        )
    else:
        known = set(
            session.scalars(select(WorkLease.key).where(WorkLease.key.in_([v["key"] for v in values])))
        )
        session.add_all(WorkLease(**v) for v in values if v["key"] not in known)


def down_sources(session: Session) -> set[str]:
    return set(
        session.scalars(
            select(WorkLease.source).where(WorkLease.kind == "source", WorkLease.consecutive_failures > 0)
        )
    )


def claim(
    session: Session,
    keys: Collection[str],
    worker: str,
    now: datetime,
    *,
    lease_s: float,
    limit: int,
    ignore_due: bool = False,
    exclude: Collection[str] = (),
) -> list[WorkLease]:
    """Candidates due now and not leased (or whose lease expired), oldest due first, locked for this
    transaction; the caller picks among them with :func:`take`, then commits."""
    if limit <= 0 or not keys:
        return []
    down = down_sources(session)
    query = (
        select(WorkLease)
        .where(
            WorkLease.key.in_(list(keys)),
            WorkLease.next_due_at.is_not(None),
            or_(WorkLease.leased_by.is_(None), WorkLease.lease_expires_at < now),
        )
        .order_by(WorkLease.next_due_at, WorkLease.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if ignore_due:  # a one-off pass runs every unit now, but a source keeps its back-off
        query = query.where(or_(WorkLease.kind != "source", WorkLease.next_due_at <= now))
    else:
        query = query.where(WorkLease.next_due_at <= now)
    if exclude:
        query = query.where(WorkLease.key.not_in(list(exclude)))
    if down:
        query = query.where(or_(WorkLease.kind == "source", WorkLease.source.not_in(sorted(down))))
    return list(session.scalars(query))


def take(row: WorkLease, worker: str, now: datetime, lease_s: float) -> None:
    if row.leased_by is not None and row.leased_by != worker:
        log.warning(
            "lease taken over",
            extra={"unit": row.key, "worker": worker, "previous_holder": row.leased_by},
        )
    row.leased_by = worker
    row.lease_expires_at = now + timedelta(seconds=lease_s)
    row.last_started_at = now


def renew(session: Session, keys: Collection[str], worker: str, now: datetime, lease_s: float) -> set[str]:
    """Extend this worker's leases; the keys it no longer holds (taken over: it was too slow)."""
    if not keys:
        return set()
    session.execute(
        update(WorkLease)
        .where(WorkLease.key.in_(list(keys)), WorkLease.leased_by == worker)
        .values(lease_expires_at=now + timedelta(seconds=lease_s))
    )
    held = set(
        session.scalars(
            select(WorkLease.key).where(WorkLease.key.in_(list(keys)), WorkLease.leased_by == worker)
        )
    )
    return set(keys) - held


def finish(
    session: Session,
    key: str,
    worker: str,
    now: datetime,
    *,
    next_due_at: datetime | None,
    status: str,
    error: str | None = None,
    keep_due: bool = False,
) -> bool:
    """Release the lease and schedule the next run (``keep_due``: leave it as :func:`mark_source` set it);
    False when this worker no longer held the lease."""
    row = session.scalars(select(WorkLease).where(WorkLease.key == key).with_for_update()).one_or_none()
    if row is None or row.leased_by != worker:
        log.warning(
            "lease lost before the unit finished; its results are kept",
            extra={"unit": key, "worker": worker, "holder": row.leased_by if row else None},
        )
        return False
    row.leased_by = None
    row.lease_expires_at = None
    row.last_finished_at = now
    row.last_status = status
    row.last_error = error
    row.run_count = (row.run_count or 0) + 1
    if not keep_due:
        row.next_due_at = next_due_at
    return True


def release_all(session: Session, worker: str) -> int:
    """Give back every lease of this worker (graceful stop): its units become due for the others."""
    result = session.execute(
        update(WorkLease)
        .where(WorkLease.leased_by == worker)
        .values(leased_by=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def mark_source(
    session: Session,
    source: str,
    now: datetime,
    *,
    ok: bool,
    reason: str | None,
    backoff_base_s: float,
    backoff_max_s: float,
    retry: bool = True,
) -> SourceChange | None:
    """Record a source's health; the change when it went down or came back (None otherwise).

    Down: the source's units stop being leased; its row becomes due at ``backoff_until`` (base x 2^n,
    capped), when one worker pings it again (``retry``: this failure is such a ping, so the pause grows).
    Up: the row is no longer due and the units resume.
    """
    row = session.scalars(
        select(WorkLease).where(WorkLease.key == source_key(source)).with_for_update()
    ).one_or_none()
    if row is None:
        row = WorkLease(
            key=source_key(source), kind="source", source=source, consecutive_failures=0, run_count=0
        )
        session.add(row)
    was_down = (row.consecutive_failures or 0) > 0
    if ok:
        if not was_down:
            return None
        failures = row.consecutive_failures
        row.consecutive_failures = 0
        row.backoff_until = None
        row.next_due_at = None
        row.last_error = None
        return SourceChange(source, "up", None, now, failures=failures)
    if was_down and not retry:
        return None  # another unit of a source already known down: the back-off runs its course
    failures = (row.consecutive_failures or 0) + 1
    pause = min(backoff_base_s * 2 ** (failures - 1), backoff_max_s)
    row.consecutive_failures = failures
    row.backoff_until = now + timedelta(seconds=pause)
    row.next_due_at = row.backoff_until
    row.last_error = reason
    if was_down:
        return None
    return SourceChange(source, "down", reason, now, failures=failures, retry_at=row.backoff_until)
