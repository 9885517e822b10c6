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

A request reads the version first, then looks up ``(key, version)`` (tickets/response_cache.py); a miss
reads the data after the version, so what is filed is at least as new as its version: the very next
request after a change never sees the old page, in this process or any other sharing the store.

**Ticket page versions.** The ticket page shows one ticket with what hangs off it (occurrences, audit,
conversation, watchers, links, workarounds, files...) and a few things every ticket page shows (users,
queues, silences, problems). Its version is ``ticket_page_version``'s row for that ticket plus the row
``0`` (:data:`PAGE_EPOCH`), so a write moves only the pages it can change:

* an object of a table with a foreign key to ``ticket`` moves the page of each ticket it names (before and
  after the flush: a link names two; a moved row its old ticket too); a changed ticket its own page;
* everything else moves every page (the epoch): a table the pages show that names no ticket (a user, a
  silence, a problem), a new or deleted ticket or one moved to another queue (the queue picker of every
  page lists the queues in use), a statement whose rows the hook cannot see (``update(Ticket).where(...)``,
  ``text()`` SQL: :func:`bump_version` with ``tickets=`` names them when the caller knows);
* but for :data:`PAGE_BLIND_TABLES`, which no ticket page shows (login sessions, tokens, the collector's
  own state...).

Unknown is treated as "everything": a table added later moves every page until it is classified. The
bump is made in the same place and order as the tickets version (last, at commit).

Not covered: restoring an older backup of the store under a running server (restart the server after a
restore).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import BigInteger, Integer, event, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, SessionTransaction, UOWTransaction, mapped_column

from core.db import Base
from tickets.facets import COMPACT_EVERY, FACET_COLUMNS, compact_facets

SHARDS = 16
"""Rows of the counter (migration 0009 creates them)."""
TRACKED_TABLES = frozenset({"ticket", "ticket_search_text", "occurrence", "ticket_audit", "app_user"})
"""Writes to these move the version: everything the queue page and the list API show."""
_CHANGED = "hypercare_tickets_changed"
"""``Session.info`` key: this transaction wrote a tracked table (bump before commit)."""
_WROTE = "hypercare_wrote"
"""``Session.info`` key: this transaction flushed a change of any kind (see :func:`wrote`)."""
_HAS_TABLE = "hypercare_tables_seen"
_PAGES = "hypercare_ticket_pages"
"""``Session.info`` key: the ticket ids whose pages this transaction changed, or :data:`ALL_PAGES`."""
_NAMED = "hypercare_pages_named"
"""``Session.info`` key: inside :func:`pages_named_by_caller` (statements mark no page themselves)."""
PAGE_EPOCH = 0
"""``ticket_page_version`` row moved by a write that may change every ticket page (ticket ids start at 1)."""
ALL_PAGES = frozenset({PAGE_EPOCH})
TEXT_EPOCH = -1
"""``ticket_page_version`` row moved by a write that may change which tickets a text search matches (a
ticket's title, check, fingerprint or search text changed; a ticket added or removed): the queue keeps
the tickets a search matches under it (tickets/queries.py)."""
TEXT_COLUMNS = ("title", "check_id", "fingerprint")
TEXT_TABLES = frozenset({"ticket", "ticket_search_text"})
"""Tables whose rows text searches read (``ticket``: its :data:`TEXT_COLUMNS`; the search text, all of it)."""
FACET_EPOCH = -2
"""``ticket_page_version`` row moved by a write that may change the queue's facet counts (a ticket's
:data:`~tickets.facets.FACET_COLUMNS` changed; a ticket added or removed): tickets/queries.py keeps the
counts under it, not under the tickets version, which every sighting moves."""
UNKNOWN = frozenset({PAGE_EPOCH, TEXT_EPOCH, FACET_EPOCH})
"""What a write to tickets whose rows are not known may have changed: every page, search and count."""
_BLIND = (
    "alembic_version anomaly_series_state api_token audit_chain_head auth_session check_entity_state "
    "check_result check_run check_watermark daily_report dualrun_entity_result dualrun_run "
    "login_throttle metric_sample oncall_override saved_view security_event ticket_audit_seal "
    "ticket_facet_count ticket_page_version ticket_version work_lease "
)
PAGE_BLIND_TABLES = frozenset(_BLIND.split())
"""Tables no ticket page shows: writes to them move no page version."""
V = TypeVar("V")
log = logging.getLogger(__name__)


class TicketVersion(Base):
    """One shard of the store-wide tickets version (their sum is the version)."""

    __tablename__ = "ticket_version"

    shard: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class TicketPageVersion(Base):
    """How often a ticket's page changed (``ticket_id`` 0: every page, :data:`PAGE_EPOCH`); a page's version
    is its row plus row 0."""

    __tablename__ = "ticket_page_version"

    ticket_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


# --- who bumps ----------------------------------------------------------------------------------------


def bump_version(target: Session | Connection, *, tickets: Iterable[int] | None = None) -> None:
    """Move the tickets version for a write the session hook cannot see (``text()`` SQL, a bare connection).

    ``tickets``: the ids of the existing tickets the write changed (not created, not moved to another queue,
    none of their :data:`TEXT_COLUMNS` or facet columns changed), so that only their pages move; None
    (unknown) moves every ticket page, the text searches and the facet counts.

    On a session: marks it; the bump is made just before it commits (last, after its final flush), once
    however often this is called. On a connection: bumps now, in its transaction: call it last."""
    pages = UNKNOWN if tickets is None else frozenset(tickets)
    if isinstance(target, Session):
        target.info[_CHANGED] = True
        _mark_pages(target, pages)
    else:
        _bump(target, pages)


@contextmanager
def pages_named_by_caller(session: Session) -> Iterator[set[int]]:
    """For a block of set-wise statements on ticket rows and the rows hanging off them (the alert intake),
    whose rows the hook cannot see: the caller names the tickets they touch in the set this yields, and
    only those pages move, instead of every page for each statement. Objects flushed meanwhile are
    tracked as always."""
    named: set[int] = set()
    depth = session.info.get(_NAMED, 0)
    session.info[_NAMED] = depth + 1
    try:
        yield named
    finally:
        session.info[_NAMED] = depth
        _mark_pages(session, named)


def _mark_pages(session: Session, pages: Iterable[int]) -> None:
    marked: set[int] = session.info.setdefault(_PAGES, set())
    marked.update(pages)


_ticket_fk_cache: dict[str, tuple[str, ...]] = {}


def _ticket_columns(obj: object) -> tuple[str, ...] | None:
    """The attribute names of ``obj``'s columns with a foreign key to ``ticket.id``; None for a table the
    pages show that names no ticket."""
    table = getattr(obj, "__table__", None)
    if table is None:
        return None
    found = _ticket_fk_cache.get(table.name)
    if found is None:
        names = tuple(
            column.key
            for column in table.columns
            if any(fk.column.table.name == "ticket" and fk.column.name == "id" for fk in column.foreign_keys)
        )
        found = _ticket_fk_cache[table.name] = names
    return found or None


def _pages_of(obj: object, *, new: bool, deleted: bool) -> Iterable[int]:
    """The ticket pages a flushed object changes (:data:`ALL_PAGES` when it may change any)."""
    name = getattr(obj, "__tablename__", None)
    if name in PAGE_BLIND_TABLES:
        return ()
    state = inspect(obj)
    if name == "ticket":
        if new or deleted or state.identity is None:
            return UNKNOWN  # the queues in use (every page's queue picker) and the searches' matches
        found = {int(state.identity[0])}
        if state.attrs.queue.history.has_changes():
            found.add(PAGE_EPOCH)
        if any(state.attrs[column].history.has_changes() for column in TEXT_COLUMNS):
            found.add(TEXT_EPOCH)
        if any(state.attrs[column].history.has_changes() for column in FACET_COLUMNS):
            found.add(FACET_EPOCH)
        return found
    columns = _ticket_columns(obj)
    if columns is None:
        return ALL_PAGES
    ids: set[int] = {TEXT_EPOCH} if name in TEXT_TABLES else set()  # the search text's own table
    for key in columns:
        history = state.attrs[key].history
        for value in (*history.added, *history.unchanged, *history.deleted):
            if isinstance(value, int):
                ids.add(value)
    return ids


def _tracked(obj: object) -> bool:
    return getattr(obj, "__tablename__", None) in TRACKED_TABLES


def _after_flush(session: Session, _ctx: UOWTransaction) -> None:
    """Mark the session when the flush wrote an object of a tracked class (its lists still hold what was
    flushed)."""
    if session.new or session.deleted or session.dirty:
        session.info[_WROTE] = True
    for objects, new, deleted in ((session.new, True, False), (session.deleted, False, True)):
        for obj in objects:
            _mark_pages(session, _pages_of(obj, new=new, deleted=deleted))
    for obj in session.dirty:
        if session.is_modified(obj):
            _mark_pages(session, _pages_of(obj, new=False, deleted=False))
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
    name = getattr(table, "name", None)
    if name in TRACKED_TABLES:
        state.session.info[_CHANGED] = True
    if name not in PAGE_BLIND_TABLES and not state.session.info.get(_NAMED):
        # which rows it wrote is not known here: every page (and, on tickets, every search)
        _mark_pages(state.session, UNKNOWN if name in TEXT_TABLES else ALL_PAGES)


def _before_commit(session: Session) -> None:
    """Bump once per transaction that wrote a tracked table, as its last statement (root commits only)."""
    if session.in_nested_transaction():
        return  # a SAVEPOINT released: the transaction goes on
    session.flush()  # what commit would flush after this hook: marks the session if it is a tracked write
    changed, pages = session.info.pop(_CHANGED, False), session.info.pop(_PAGES, None)
    if changed or pages:
        _bump(session.connection(), pages or (), tickets=changed)


def _after_commit(session: Session) -> None:
    """Still marked after the commit: it was made with a SAVEPOINT open (``session.begin_nested()`` left
    open, then ``session.commit()``), whose release came after the hook. Bump at once in a transaction of
    its own: a moment late, never missed."""
    if session.in_nested_transaction():
        return  # a SAVEPOINT released (the transaction goes on)
    changed, pages = session.info.pop(_CHANGED, False), session.info.pop(_PAGES, None)
    if not (changed or pages):
        return  # bumped before the commit
    bind = session.get_bind()
    log.warning("tickets version bumped after the commit (a SAVEPOINT was still open at commit)")
    if isinstance(bind, Connection):  # a session joined to a caller's transaction: the caller commits
        _bump(bind, pages or (), tickets=changed)
        return
    with bind.begin() as conn:
        _bump(conn, pages or (), tickets=changed)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # committed or rolled back: the next transaction starts unmarked
        session.info.pop(_CHANGED, None)
        session.info.pop(_PAGES, None)
        session.info.pop(_NAMED, None)
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


def _bump(conn: Connection, pages: Iterable[int] = ALL_PAGES, *, tickets: bool = True) -> None:
    """One more on one shard of the counter (``tickets``: the write changed what the queue shows), and on
    the page version of each of ``pages``, in the connection's transaction (and, about once in
    :data:`COMPACT_EVERY`, the facet rows folded first)."""
    if tickets and _version_table_exists(conn):
        if random.randrange(COMPACT_EVERY) == 0 and _table_exists(conn, "ticket_facet_count"):  # noqa: S311
            compact_facets(conn)
        cursor = conn.connection.cursor()
        shard = random.randrange(SHARDS)  # noqa: S311  (spreads writers over rows; nothing secret)
        try:  # the DBAPI cursor: no statement events, no parameters (the shard is a literal int)
            cursor.execute(f"UPDATE ticket_version SET version = version + 1 WHERE shard = {shard}")
        finally:
            cursor.close()
    ids = sorted({n for n in pages if n <= PAGE_EPOCH} if PAGE_EPOCH in pages else {int(n) for n in pages})
    if ids and _table_exists(conn, "ticket_page_version"):
        _bump_pages(conn, ids)


def _bump_pages(conn: Connection, ids: list[int]) -> None:
    """One more on each page row (made at 1 when missing), in id order (writers never wait in a cycle).
    The ids are ints: literals, no parameters."""
    values = ", ".join(f"({n}, 1)" for n in ids)
    if conn.dialect.name in ("mysql", "mariadb"):
        sql = (
            f"INSERT INTO ticket_page_version (ticket_id, version) VALUES {values} "
            "ON DUPLICATE KEY UPDATE version = version + 1"
        )
    else:
        sql = (
            f"INSERT INTO ticket_page_version (ticket_id, version) VALUES {values} "
            "ON CONFLICT (ticket_id) DO UPDATE SET version = ticket_page_version.version + 1"
        )
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def store_version(session: Session) -> int | None:
    """The tickets version: one query, to be made before the data is read. None when the counter has no
    rows (tables made from the models rather than by the migrations): nothing may then be cached.

    The app serves only a store at the head revision (``require_current_schema``), which has the table."""
    value = session.connection().exec_driver_sql("SELECT sum(version) FROM ticket_version").scalar()
    return None if value is None else int(value)


PAGE_VERSION_SQL = (
    "SELECT sum(version), max(CASE WHEN ticket_id = 0 THEN 1 ELSE 0 END) FROM ticket_page_version "
)
"""The page version of a ticket (append ``WHERE ticket_id IN (0, <id>)``): its row plus the epoch's; only
while the epoch row exists (its first write makes it) may a page be cached."""


def text_version(session: Session) -> int | None:
    """The version of what text searches match (:data:`TEXT_EPOCH`), to be read before searching; 0 until
    the first such change; None on a store without page versions."""
    return _epoch(session, TEXT_EPOCH)


def facet_version(session: Session) -> int | None:
    """The version of the facet counts (:data:`FACET_EPOCH`), to be read before counting; as
    :func:`text_version`."""
    return _epoch(session, FACET_EPOCH)


def _epoch(session: Session, row: int) -> int | None:
    conn = session.connection()
    if not _table_exists(conn, "ticket_page_version"):
        return None
    found = conn.exec_driver_sql(f"SELECT version FROM ticket_page_version WHERE ticket_id = {row}").scalar()
    return 0 if found is None else int(found)


def page_version(session: Session, ticket_id: int) -> int | None:
    """The version of ticket ``ticket_id``'s page, to be read before its data; None: do not cache."""
    row = (
        session.connection()
        .exec_driver_sql(PAGE_VERSION_SQL + f"WHERE ticket_id IN (0, {int(ticket_id)})")
        .one_or_none()
    )
    return None if row is None or not row[1] else int(row[0])


install()
