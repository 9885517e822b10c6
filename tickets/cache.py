"""Never-stale response caching for the ticket queue: a store-wide "tickets version" and a cache keyed by it.

The version is a counter in the store, bumped in the same transaction as any write to the tables the queue
shows (:data:`TRACKED_TABLES`: tickets, occurrences, audit entries, users). Who bumps it is explicit:

* a :class:`~sqlalchemy.orm.Session` marks itself when it flushes a new, changed or deleted object of a
  tracked mapped class, or executes an INSERT / UPDATE / DELETE statement whose target table is a tracked
  one (``update(Ticket)``, ``insert(ticket_table)``); just before it commits, after its last flush, it bumps
  the counter (:func:`install`, on every session, like the audit chain's hook);
* what a session cannot see the target of (``text()`` SQL, a bare :class:`~sqlalchemy.engine.Connection`)
  calls :func:`bump_version` itself: on a session it marks it the same way; on a connection it bumps at
  once, so it is the transaction's last statement.

Nothing parses SQL; a raw ``UPDATE ticket ...`` typed into ``psql`` does not move the version (end such a
fix with ``UPDATE ticket_version SET version = version + 1 WHERE shard = 0``, or restart the servers).

The counter is split over :data:`SHARDS` rows and the version is their sum: each commit adds one to one row
picked at random, so concurrent writers rarely wait on the same row lock (the bump is the transaction's last
statement, so the lock is held only for the commit itself and always taken last: no deadlock).

A request reads the version first (one tiny query), then looks up ``(key, version)``; on a miss it reads the
data after the version, so whatever it caches is at least as new as the version it is filed under. A change
committed before a request starts has moved the version that request reads: the very next request after
a change never sees the old page, in this process or any other sharing the store.

Not covered: restoring an older backup of the store under a running server (restart the server after a
restore).
"""

from __future__ import annotations

import logging
import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from sqlalchemy import BigInteger, Integer, String, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, SessionTransaction, UOWTransaction, mapped_column

from core.db import Base

SHARDS = 16
"""Rows of the counter (migration 0009 creates them)."""
TRACKED_TABLES = frozenset({"ticket", "occurrence", "ticket_audit", "app_user"})
"""Writes to these move the version: everything the queue page and the list API show."""
CACHE_SIZE = 512
"""Responses kept per cache (least recently used dropped first)."""
FLIGHT_WAIT_S = 10.0
"""How long a request waits for another building the same response before building it itself."""
_CHANGED = "hypercare_tickets_changed"
"""``Session.info`` key: this transaction wrote a tracked table (bump before commit)."""
_WROTE = "hypercare_wrote"
"""``Session.info`` key: this transaction flushed a change of any kind (see :func:`wrote`)."""
_HAS_TABLE = "hypercare_tables_seen"
V = TypeVar("V")
log = logging.getLogger(__name__)


class TicketVersion(Base):
    """One shard of the store-wide tickets version (their sum is the version)."""

    __tablename__ = "ticket_version"

    shard: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class TicketFacetCount(Base):
    """Tickets per facet (status, priority, queue, category, source, assignee), kept by the store itself.

    Triggers on ``ticket`` (migration 0015) append a row of ``n`` = +count / -count for what each
    statement added, removed or moved between facets, in the writing transaction, whatever wrote it (the
    ORM, text SQL, ``psql``); the count of a facet is the sum of its rows. Appending never waits on
    another writer; :func:`compact_facets` folds the rows now and then. The queue's facet counts are then a
    sum over a few hundred rows instead of a GROUP BY over every ticket (tickets/facets.py)."""

    __tablename__ = "ticket_facet_count"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(2))
    queue: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(64))
    assignee_id: Mapped[int | None] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer)


FACET_COLUMNS = ("status", "priority", "queue", "category", "source", "assignee_id")
COMPACT_EVERY = 64
"""On average one tracked commit in this many folds the facet rows (:func:`compact_facets`)."""


def compact_facets(conn: Connection) -> None:
    """Fold the facet rows into one per facet, in the connection's transaction. On PostgreSQL one
    statement sums exactly the rows it deletes (rows appended meanwhile stay as they are); SQLite has one
    writer at a time."""
    cols = ", ".join(FACET_COLUMNS)
    cursor = conn.connection.cursor()
    try:
        if conn.dialect.name == "postgresql":
            cursor.execute(
                f"WITH gone AS (DELETE FROM ticket_facet_count RETURNING {cols}, n) "
                f"INSERT INTO ticket_facet_count ({cols}, n) "
                f"SELECT {cols}, SUM(n) FROM gone GROUP BY {cols} HAVING SUM(n) <> 0"
            )
        else:
            cursor.execute("SELECT MAX(id) FROM ticket_facet_count")
            row = cursor.fetchone()
            if row is None or row[0] is None:
                return
            top = int(row[0])
            cursor.execute(
                f"INSERT INTO ticket_facet_count ({cols}, n) SELECT {cols}, SUM(n) FROM ticket_facet_count "
                f"WHERE id <= {top} GROUP BY {cols} HAVING SUM(n) <> 0"
            )
            cursor.execute(f"DELETE FROM ticket_facet_count WHERE id <= {top}")
    finally:
        cursor.close()


# --- who bumps ----------------------------------------------------------------------------------------


def bump_version(target: Session | Connection) -> None:
    """Move the tickets version for a write the session hook cannot see (``text()`` SQL, a bare connection).

    On a session: marks it; the bump is made just before it commits (last, after its final flush), once
    however often this is called. On a connection: bumps now, in its transaction: call it last."""
    if isinstance(target, Session):
        target.info[_CHANGED] = True
    else:
        _bump(target)


def _tracked(obj: object) -> bool:
    return getattr(obj, "__tablename__", None) in TRACKED_TABLES


def _after_flush(session: Session, _ctx: UOWTransaction) -> None:
    """Mark the session when the flush wrote an object of a tracked class (its lists still hold what was
    flushed)."""
    if session.new or session.deleted or session.dirty:
        session.info[_WROTE] = True
    if session.info.get(_CHANGED):
        return
    added_or_gone = any(_tracked(obj) for obj in (*session.new, *session.deleted))
    if added_or_gone or any(_tracked(obj) and session.is_modified(obj) for obj in session.dirty):
        session.info[_CHANGED] = True


def _on_execute(state: ORMExecuteState) -> None:
    """Mark the session for an INSERT / UPDATE / DELETE statement on a tracked table (its target, as the
    statement object names it: ORM entity or Core table)."""
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    state.session.info[_WROTE] = True
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in TRACKED_TABLES:
        state.session.info[_CHANGED] = True


def _before_commit(session: Session) -> None:
    """Bump once per transaction that wrote a tracked table, as its last statement (root commits only)."""
    if session.in_nested_transaction():
        return  # a SAVEPOINT released: the transaction goes on
    session.flush()  # what commit would flush after this hook: marks the session if it is a tracked write
    if session.info.pop(_CHANGED, False):
        _bump(session.connection())


def _after_commit(session: Session) -> None:
    """Still marked after the commit: it was made with a SAVEPOINT open (``session.begin_nested()`` left
    open, then ``session.commit()``), whose release came after the hook. Bump at once in a transaction of
    its own: a moment late, never missed."""
    if session.in_nested_transaction() or not session.info.pop(_CHANGED, False):
        return  # a SAVEPOINT released (the transaction goes on), or bumped before the commit
    bind = session.get_bind()
    log.warning("tickets version bumped after the commit (a SAVEPOINT was still open at commit)")
    if isinstance(bind, Connection):  # a session joined to a caller's transaction: the caller commits
        _bump(bind)
        return
    with bind.begin() as conn:
        _bump(conn)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # committed or rolled back: the next transaction starts unmarked
        session.info.pop(_CHANGED, None)
        session.info.pop(_WROTE, None)


def install() -> None:
    """Track tracked-table writes on every session (idempotent)."""
    for name, listener in (
        ("after_flush", _after_flush),
        ("do_orm_execute", _on_execute),
        ("before_commit", _before_commit),
        ("after_commit", _after_commit),
        ("after_transaction_end", _after_transaction_end),
    ):
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)


def wrote(session: Session) -> bool:
    """Whether the session's transaction has written anything yet (so that a commit is not a wasted round
    trip)."""
    return bool(session.info.get(_WROTE))


def _version_table_exists(conn: Connection) -> bool:
    """Whether this store has the counter (a store migrated to 0009); remembered once seen."""
    return _table_exists(conn, "ticket_version")


def _table_exists(conn: Connection, name: str) -> bool:
    """Whether this store has the table; remembered on the connection once seen."""
    seen = conn.info.setdefault(_HAS_TABLE, set())
    if name in seen:
        return True
    cursor = conn.connection.cursor()
    try:  # ``name`` is one of this module's table names, never input
        if conn.dialect.name == "postgresql":
            cursor.execute(f"SELECT to_regclass('{name}') IS NOT NULL")
        elif conn.dialect.name == "sqlite":
            cursor.execute(f"SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '{name}'")
        else:
            cursor.execute(
                "SELECT count(*) > 0 FROM information_schema.tables "
                f"WHERE table_name = '{name}' AND table_schema = database()"
            )
        row = cursor.fetchone()
        found = bool(row and row[0])
    finally:
        cursor.close()
    if found:
        seen.add(name)
    return found


def _bump(conn: Connection) -> None:
    """One more on one shard of the counter, in the connection's transaction (and, about once in
    :data:`COMPACT_EVERY`, the facet rows folded first)."""
    if not _version_table_exists(conn):
        return
    if random.randrange(COMPACT_EVERY) == 0 and _table_exists(conn, "ticket_facet_count"):  # noqa: S311
        compact_facets(conn)
    cursor = conn.connection.cursor()
    shard = random.randrange(SHARDS)  # noqa: S311  (spreads writers over rows; nothing secret)
    try:  # the DBAPI cursor: no statement events, no parameters (the shard is a literal int)
        cursor.execute(f"UPDATE ticket_version SET version = version + 1 WHERE shard = {shard}")
    finally:
        cursor.close()


def store_version(session: Session) -> int | None:
    """The tickets version: one query, to be made before the data is read. None when the counter has no
    rows (tables made from the models rather than by the migrations): nothing may then be cached.

    The app serves only a store at the head revision (``require_current_schema``), which has the table."""
    value = session.connection().exec_driver_sql("SELECT sum(version) FROM ticket_version").scalar()
    return None if value is None else int(value)


# --- the cache ------------------------------------------------------------------------------------------
class VersionedCache(Generic[V]):
    """A small LRU of values each filed under the tickets version it was read at."""

    def __init__(self, size: int = CACHE_SIZE, *, enabled: bool = True) -> None:
        self.size = size
        self.enabled = enabled
        self._items: OrderedDict[Hashable, tuple[int, V]] = OrderedDict()
        self._flights: dict[tuple[Hashable, int], threading.Event] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, version: int | None) -> V | None:
        if version is None or not self.enabled:
            return None
        with self._lock:
            found = self._items.get(key)
            if found is None or found[0] != version:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found[1]

    def put(self, key: Hashable, version: int | None, value: V) -> None:
        if version is None or not self.enabled:
            return
        with self._lock:
            current = self._items.get(key)
            if current is not None and current[0] > version:
                return  # a newer response is already filed
            self._items[key] = (version, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get_or_build(self, key: Hashable, version: int | None, build: Callable[[], V]) -> V:
        """The value filed under ``(key, version)``, else ``build()``'s, filed. One build per key and
        version at a time: requests arriving while it runs wait for it rather than all building the same
        page after a change (each would cost the CPU of a full render)."""
        if version is None or not self.enabled:
            return build()
        while True:
            with self._lock:
                found = self._items.get(key)
                if found is not None and found[0] == version:
                    self._items.move_to_end(key)
                    self.hits += 1
                    return found[1]
                flight = self._flights.get((key, version))
                mine = flight is None
                if flight is None:
                    flight = self._flights[(key, version)] = threading.Event()
                    self.misses += 1
            if not mine:
                flight.wait(FLIGHT_WAIT_S)
                continue  # filed by now; else (the build failed, or a newer one won) build it here
            try:
                value = build()
                self.put(key, version, value)
                return value
            finally:
                with self._lock:
                    self._flights.pop((key, version), None)
                flight.set()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class ResponseCaches:
    """One app's response caches by name, made on first use; all off when ``enabled`` is false (the
    ``server.response_cache`` setting: to measure without them, bench/queue_load.py ``--uncached``)."""

    def __init__(self, *, enabled: bool = True, size: int = CACHE_SIZE) -> None:
        self.enabled = enabled
        self.size = size
        self._caches: dict[str, VersionedCache[Any]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> VersionedCache[Any]:
        with self._lock:
            cache = self._caches.get(name)
            if cache is None:
                cache = self._caches[name] = VersionedCache(self.size, enabled=self.enabled)
            return cache


install()
