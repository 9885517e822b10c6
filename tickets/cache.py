"""Never-stale response caching for the ticket queue: a store-wide "tickets version" and a cache keyed by it.

The version is a counter in the store, bumped in the same transaction as any write to the tables the queue
shows (tickets, occurrences, audit entries, users): :func:`track_changes` (installed on every engine by
``hypercare.store.make_engine``) marks a connection that ran an INSERT / UPDATE / DELETE (or REPLACE,
MERGE, UPSERT, TRUNCATE; the table's name bare, quoted or schema-qualified) on one of them and bumps the
counter just before that transaction commits. Whatever writes (the service layer, Core bulk inserts, the
CLI, another Hypercare process on the same store) moves the version, atomically with its data.

The counter is split over :data:`SHARDS` rows and the version is their sum: each commit adds one to one row
picked at random, so concurrent writers rarely wait on the same row lock (the bump is the transaction's last
statement, so the lock is held only for the commit itself and always taken last: no deadlock).

A request reads the version first (one tiny query), then looks up ``(key, version)``; on a miss it reads the
data after the version, so whatever it caches is at least as new as the version it is filed under. A change
committed before a request starts has moved the version that request reads: the very next request after
a change never sees the old page, in this process or any other sharing the store.

Not covered: writes on a connection in AUTOCOMMIT mode (no transaction to bump in) and restoring an older
backup of the store under a running server (restart the server after a restore).
"""

from __future__ import annotations

import os
import random
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from sqlalchemy import BigInteger, Engine, Integer, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import Base

SHARDS = 16
"""Rows of the counter (migration 0009 creates them)."""
TRACKED_TABLES = ("ticket", "occurrence", "ticket_audit", "app_user")
"""Writes to these move the version: everything the queue page and the list API show."""
CACHE_SIZE = 512
"""Responses kept per engine (least recently used dropped first)."""
ENABLED = os.environ.get("HYPERCARE_RESPONSE_CACHE", "1") != "0"
"""``HYPERCARE_RESPONSE_CACHE=0`` turns the response caches off (to measure without them: bench/queue_load.py
``--uncached``); the version is still read and the facet counts still reused per version."""
FLIGHT_WAIT_S = 10.0
"""How long a request waits for another building the same response before building it itself."""
_FLAG = "hypercare_tickets_changed"
_WROTE = "hypercare_wrote"
_WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "WITH", "REPLACE", "MERGE", "TRUNCATE", "UPSERT")
"""First words of the statements that may write (the cheap test run on every statement; ``WITH`` for
data-modifying CTEs, ``REPLACE`` SQLite's and MySQL's, ``MERGE`` PostgreSQL 15's)."""
_HAS_TABLE = "hypercare_version_table"
_NAME = r'(?:"(?:[^"]|"")+"|`[^`]+`|\[[^\]]+\]|[\w$]+)'
"""An identifier, bare or quoted: a schema (``public``, ``"public"``, SQLite's ``main``) or a table."""
_TRACKED = "|".join(sorted(TRACKED_TABLES, key=len, reverse=True))
_TABLE = (  # schema-qualified or not, quoted or not; exactly the name: not ticket_watcher, not ticket_version
    rf"(?:{_NAME}\s*\.\s*){{0,2}}"
    rf'(?:"(?:{_TRACKED})"|`(?:{_TRACKED})`|\[(?:{_TRACKED})\]|(?:{_TRACKED})(?![\w$]))'
    r"(?!\s*\.)"  # followed by a dot it is a schema's name, not the table's
)
_WRITE = re.compile(  # anywhere in the statement: data-modifying CTEs (WITH ... INSERT INTO occurrence)
    r"\b(?:"
    r"(?:INSERT|REPLACE)\s+(?:(?:OR\s+\w+|IGNORE|LOW_PRIORITY|DELAYED|HIGH_PRIORITY)\s+)*(?:INTO\s+)?"
    r"|UPSERT\s+(?:INTO\s+)?"
    r"|MERGE\s+(?:INTO\s+)?(?:ONLY\s+)?"
    r"|UPDATE\s+(?:(?:OR\s+\w+|ONLY|LOW_PRIORITY|IGNORE)\s+)*"  # never FOR UPDATE [OF ticket]: no OF
    r"|DELETE\s+(?:(?:LOW_PRIORITY|QUICK|IGNORE)\s+)*FROM\s+(?:ONLY\s+)?"
    rf"|TRUNCATE\s+(?:TABLE\s+)?(?:(?:ONLY\s+)?{_NAME}(?:\s*\.\s*{_NAME}){{0,2}}\s*\*?\s*,\s*)*(?:ONLY\s+)?"
    rf"){_TABLE}",
    re.IGNORECASE,
)
V = TypeVar("V")


class TicketVersion(Base):
    """One shard of the store-wide tickets version (their sum is the version)."""

    __tablename__ = "ticket_version"

    shard: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


def _may_write(statement: str) -> bool:
    """Whether the statement starts with a verb that writes (cheap: it runs before every statement)."""
    return statement.lstrip()[:8].upper().startswith(_WRITE_VERBS)


def writes_tracked_table(statement: str) -> bool:
    """True for an INSERT / UPDATE / DELETE / REPLACE / MERGE / UPSERT / TRUNCATE on one of
    :data:`TRACKED_TABLES`, however its name is written (``public.ticket``, ``"main"."ticket"``)."""
    return _may_write(statement) and _WRITE.search(statement) is not None


def _mark(  # noqa: PLR0917  (the event's signature)
    conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    if _may_write(statement):
        conn.info[_WROTE] = True
        if _WRITE.search(statement) is not None:
            conn.info[_FLAG] = True


def wrote(session: Session) -> bool:
    """Whether the session's transaction has written anything yet (so that a commit is not a wasted round
    trip)."""
    return bool(session.connection().info.get(_WROTE))


def _version_table_exists(conn: Connection) -> bool:
    """Whether this store has the counter (a store migrated to 0009); remembered once seen."""
    if conn.info.get(_HAS_TABLE):
        return True
    cursor = conn.connection.cursor()
    try:
        if conn.dialect.name == "postgresql":
            cursor.execute("SELECT to_regclass('ticket_version') IS NOT NULL")
        elif conn.dialect.name == "sqlite":
            cursor.execute(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'ticket_version'"
            )
        else:
            cursor.execute(
                "SELECT count(*) > 0 FROM information_schema.tables "
                "WHERE table_name = 'ticket_version' AND table_schema = database()"
            )
        row = cursor.fetchone()
        found = bool(row and row[0])
    finally:
        cursor.close()
    if found:
        conn.info[_HAS_TABLE] = True
    return found


def _bump(conn: Connection) -> None:
    """Before a transaction that wrote a tracked table commits: one more on one shard of the counter."""
    conn.info.pop(_WROTE, None)
    if not conn.info.pop(_FLAG, False) or not _version_table_exists(conn):
        return
    cursor = conn.connection.cursor()
    shard = random.randrange(SHARDS)  # noqa: S311  (spreads writers over rows; nothing secret)
    try:  # the DBAPI cursor: no statement events, no parameters (the shard is a literal int)
        cursor.execute(f"UPDATE ticket_version SET version = version + 1 WHERE shard = {shard}")
    finally:
        cursor.close()


def _forget(conn: Connection) -> None:
    conn.info.pop(_FLAG, None)
    conn.info.pop(_WROTE, None)


def track_changes(engine: Engine) -> None:
    """Bump the tickets version in every transaction of ``engine`` that writes a tracked table."""
    if event.contains(engine, "commit", _bump):
        return
    event.listen(engine, "before_cursor_execute", _mark)
    event.listen(engine, "commit", _bump)
    event.listen(engine, "rollback", _forget)


def store_version(session: Session) -> int | None:
    """The tickets version: one query, to be made before the data is read. None when the counter has no
    rows (tables made from the models rather than by the migrations): nothing may then be cached.

    The app serves only a store at the head revision (``require_current_schema``), which has the table."""
    value = session.connection().exec_driver_sql("SELECT sum(version) FROM ticket_version").scalar()
    return None if value is None else int(value)


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


_caches: weakref.WeakKeyDictionary[Engine, dict[str, VersionedCache[Any]]] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def cache_for(session: Session, name: str) -> VersionedCache[Any]:
    """The process's cache ``name`` for the session's store (one per engine, so a new store starts empty)."""
    bind = session.get_bind()
    return engine_cache(bind.engine if isinstance(bind, Connection) else bind, name)


def engine_cache(engine: Engine, name: str) -> VersionedCache[Any]:
    """The process's cache ``name`` for the store behind ``engine``."""
    with _caches_lock:
        per_engine = _caches.setdefault(engine, {})
        cache = per_engine.get(name)
        if cache is None:
            cache = per_engine[name] = VersionedCache(enabled=ENABLED)
        return cache
