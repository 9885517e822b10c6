"""Read side of the ticket queue: the queue listing with its filters, facet counts and sort orders, one
ticket with its history, a ticket's occurrences / comments / audit trail page by page, open counts.

Everything is filtered, sorted and counted in SQL, and each function issues a fixed number of queries
whatever the number of rows (no N+1); the tests count them.
"""
# size: the one read side of the queue (listing, its page and counts, a ticket's history) the UI and API share

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, get_args

from sqlalchemy import ColumnElement, case, false, func, select, text
from sqlalchemy.orm import Session, defer

from core.vocabulary import CLOSED_STATUSES, OPEN_STATUSES
from tickets.cache import facet_version, store_version, text_version
from tickets.errors import TicketNotFound
from tickets.facets import TicketFacetCount
from tickets.models import (
    Occurrence,
    Ticket,
    TicketAudit,
    User,
    sla_due_expr,
)
from tickets.text_search import one_of, text_clause, text_matches

StatusFilter = Literal[
    "open", "closed", "new", "acknowledged", "in_progress", "waiting", "reopened", "resolved"
]
"""A :class:`~core.vocabulary.TicketStatus`, or ``open`` / ``closed`` for every status of that group (a
``Literal``, not the enum, so the API documents the two groups too; tests/core/test_vocabulary.py keeps it
in step with the enum)."""
STATUS_FILTERS: tuple[str, ...] = get_args(StatusFilter)
SortKey = Literal["priority", "sla_due", "oldest", "newest", "last_seen"]
"""``priority``: open first, P1 first, most recently seen first. ``sla_due``: the SLA deadline nearest
first (tickets without one last). ``oldest`` / ``newest``: by opening time.
``last_seen``: the most recent sighting first."""
SORT_KEYS: tuple[str, ...] = get_args(SortKey)
UNASSIGNED = "none"
"""The assignee filter's value for tickets nobody is assigned to."""
MAX_PAGE = 500
MAX_TEXT = 200
FACET_CACHE_SIZE = 256
"""Facet counts kept per process, each filed under the store's tickets version (``tickets.cache``): a
count is reused only while no ticket changed, so paging or re-sorting a large queue does not count the
table again, and a change is counted at once."""
_facet_cache: OrderedDict[tuple[Any, ...], list[tuple[str, str, int]]] = OrderedDict()
_facet_lock = threading.Lock()
_kept_stores: dict[str, bool] = {}
T = TypeVar("T")
LEAN_DEFERRED = (Ticket.description, Ticket.entity, Ticket.labels)


@dataclass(frozen=True, slots=True)
class TicketFilter:
    """What the queue shows. ``None`` (or an empty string) means "any"."""

    status: str | None = None
    priority: str | None = None
    queue: str | None = None
    assignee: str | None = None
    """A username, or :data:`UNASSIGNED`."""
    category: str | None = None
    source: str | None = None
    text: str | None = None
    """Words in the title, the check id or the fingerprint (case-insensitive); ``#123`` finds a ticket."""

    def __post_init__(self) -> None:
        if self.status and self.status not in STATUS_FILTERS:
            raise ValueError(
                f"unknown status filter {self.status!r}; expected one of {', '.join(STATUS_FILTERS)}"
            )
        if self.text and len(self.text) > MAX_TEXT:
            raise ValueError(f"the search text is longer than {MAX_TEXT} characters")


@dataclass(frozen=True, slots=True)
class Facets:
    """Counts of the tickets matching every filter but the facet's own (what a click on it would show)."""

    by_status: Mapping[str, int] = field(default_factory=dict)
    by_priority: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TicketPage:
    items: Sequence[Ticket]
    total: int
    limit: int
    offset: int
    facets: Facets = field(default_factory=Facets)
    assignees: Mapping[int, str] = field(default_factory=dict)
    """Ticket id -> the assignee's username, for the tickets on this page that have one."""


@dataclass(frozen=True, slots=True)
class TicketDetail:
    ticket: Ticket
    occurrences: Sequence[Occurrence]
    """The most recent occurrences, newest first (``ticket.occurrence_count`` has the total)."""
    audit: Sequence[TicketAudit]
    """The audit trail, oldest first."""
    assignee: str | None = None

    @property
    def latest(self) -> Occurrence | None:
        return self.occurrences[0] if self.occurrences else None


@dataclass(frozen=True, slots=True)
class Slice(Generic[T]):
    """One page of a ticket's rows (occurrences, comments, audit entries)."""

    items: Sequence[T]
    total: int
    limit: int
    offset: int


def sla_due() -> ColumnElement[Any]:
    """The ticket's next SLA deadline: the response's until acknowledged, then the resolution's (the
    expression migration 0006 indexes for the open tickets)."""
    return sla_due_expr()


def _status_clause(status: str) -> ColumnElement[bool]:
    if status == "open":
        return Ticket.status.in_(OPEN_STATUSES)
    if status == "closed":
        return Ticket.status.in_(CLOSED_STATUSES)
    return Ticket.status == status


def _facet_clauses(
    flt: TicketFilter, matches: frozenset[int] | None = None, dialect: str = ""
) -> list[ColumnElement[bool]]:
    """Every filter but status and priority; the text filter as ``matches`` (the ids it matches) when
    given."""
    clauses: list[ColumnElement[bool]] = []
    if flt.queue:
        clauses.append(Ticket.queue == flt.queue)
    if flt.category:
        clauses.append(Ticket.category == flt.category)
    if flt.source:
        clauses.append(Ticket.source == flt.source)
    if flt.assignee == UNASSIGNED:
        clauses.append(Ticket.assignee_id.is_(None))
    elif flt.assignee:
        user_id = select(User.id).where(User.username == flt.assignee).scalar_subquery()
        clauses.append(Ticket.assignee_id == user_id)
    if matches is not None:
        clauses.append(one_of(matches, dialect) if matches else false())
    elif flt.text and flt.text.strip():
        clauses.extend(text_clause(word) for word in flt.text.split())
    return clauses


def _order(sort: str, status: str | None, dialect: str) -> list[Any]:
    """The ORDER BY of a sort. "Open first" is left out when the status filter already decides it, so
    the order is the one the partial indexes on the open tickets hold (migration 0006)."""
    open_first = [] if status else [case((Ticket.status.in_(OPEN_STATUSES), 0), else_=1)]
    if sort == "sla_due":
        due = sla_due()
        # "NULLS LAST" is an ascending index's own order on PostgreSQL (and valid on SQLite)
        nulls_last = [due.asc().nulls_last()] if dialect in ("postgresql", "sqlite") else [due.is_(None), due]
        return [*open_first, *nulls_last, Ticket.priority, Ticket.id]
    if sort == "oldest":
        return [Ticket.created_at, Ticket.id]
    if sort == "newest":
        return [Ticket.created_at.desc(), Ticket.id.desc()]
    if sort == "last_seen":
        return [Ticket.last_seen_at.desc(), Ticket.id.desc()]
    return [*open_first, Ticket.priority, Ticket.last_seen_at.desc(), Ticket.id.desc()]


def _status_matches(flt_status: str | None, status: str) -> bool:
    if not flt_status:
        return True
    if flt_status == "open":
        return status in OPEN_STATUSES
    if flt_status == "closed":
        return status in CLOSED_STATUSES
    return status == flt_status


def list_tickets(
    session: Session,
    flt: TicketFilter | None = None,
    *,
    status: StatusFilter | None = None,
    priority: str | None = None,
    sort: SortKey = "priority",
    limit: int = 50,
    offset: int = 0,
    lean: bool = False,
    version: int | None = None,
) -> TicketPage:
    """One page of the queue with facet counts. Two queries: the page, and one GROUP BY for the counts.

    ``version``: the store's tickets version read before this call (``tickets.cache.store_version``); the
    counts of the same filters at the same version are then reused instead of counted again.

    ``lean``: the tickets come without their description, entity and labels (the queue page shows none of
    them; reading one raises instead of costing a query per row)."""
    if flt is None:
        flt = TicketFilter(status=status, priority=priority)
    if sort not in SORT_KEYS:
        raise ValueError(f"unknown sort {sort!r}; expected one of {', '.join(SORT_KEYS)}")
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    if offset < 0:
        raise ValueError("offset must not be negative")
    dialect = session.get_bind().dialect.name
    common = _facet_clauses(flt, text_matches(session, flt.text), dialect)
    clauses = list(common)
    if flt.status:
        clauses.append(_status_clause(flt.status))
    if flt.priority:
        clauses.append(Ticket.priority == flt.priority)

    rows = _facet_rows(session, flt, common, version)
    by_status: dict[str, int] = {}
    by_priority: dict[str, int] = {}
    total = 0
    for row_status, row_priority, count in rows:
        status_ok = _status_matches(flt.status, row_status)
        priority_ok = not flt.priority or row_priority == flt.priority
        if priority_ok:
            by_status[row_status] = by_status.get(row_status, 0) + count
        if status_ok:
            by_priority[row_priority] = by_priority.get(row_priority, 0) + count
        if status_ok and priority_ok:
            total += count

    result = _page(session, clauses, flt.status, sort, by_status, limit, offset, lean=lean)
    items = [ticket for ticket, _ in result]
    assignees = {ticket.id: name for ticket, name in result if name is not None}
    facets = Facets(by_status=by_status, by_priority=by_priority)
    return TicketPage(items, total, limit, offset, facets, assignees)


def _page(  # noqa: PLR0917  (one page of list_tickets)
    session: Session,
    clauses: list[ColumnElement[bool]],
    status: str | None,
    sort: str,
    by_status: dict[str, int],
    limit: int,
    offset: int,
    *,
    lean: bool,
) -> list[Any]:
    """The page's (ticket, assignee name) rows. Sorted "open first" (no status filter; by priority or SLA
    due), the open tickets are read in their partial index's order, then the others, apart: one ORDER BY
    over both is a sort of every ticket the filters leave (at 100,000 tickets, a search matching 16,000:
    41 ms against 1 ms). ``by_status`` (the facet counts under the same filters) says where the open ones
    end and whether others follow: three queries at most, two when the page holds one kind."""
    dialect = session.get_bind().dialect.name

    def rows(where: list[ColumnElement[bool]], ordered_as: str | None, count: int, skip: int) -> list[Any]:
        query = (
            select(Ticket, User.username)
            .outerjoin(User, User.id == Ticket.assignee_id)
            .where(*where)
            .order_by(*_order(sort, ordered_as, dialect))
            .limit(count)
            .offset(skip)
        )
        if lean:
            query = query.options(*(defer(column, raiseload=True) for column in LEAN_DEFERRED))
        return list(session.execute(query).all())

    if status or sort not in ("priority", "sla_due"):
        return rows(clauses, status, limit, offset)
    open_total = sum(by_status.get(name, 0) for name in OPEN_STATUSES)
    result = rows([*clauses, _status_clause("open")], "open", limit, offset) if offset < open_total else []
    others_total = sum(count for name, count in by_status.items() if name not in OPEN_STATUSES)
    if len(result) < limit and max(0, offset - open_total) < others_total:
        others = [*clauses, Ticket.status.not_in(OPEN_STATUSES)]
        result += rows(others, "closed", limit - len(result), max(0, offset - open_total))
    return result


def _facet_rows(
    session: Session, flt: TicketFilter, common: list[ColumnElement[bool]], version: int | None
) -> list[tuple[str, str, int]]:
    """Tickets per (status, priority) under every filter but those two: one GROUP BY, or its result at the
    same facet version (tickets/cache.py: moved by what can change a count, not by every sighting), text
    version for a search, and tickets version for an assignee named (a user renamed). Only when
    ``version`` (the tickets version the caller read first) is given; never an older count."""
    if version is not None:
        version = facet_version(session)
    named = flt.assignee not in (None, "", UNASSIGNED)
    key = (
        str(session.get_bind().engine.url),
        version,
        text_version(session) if flt.text and version is not None else None,
        store_version(session) if named and version is not None else None,
        flt.queue,
        flt.category,
        flt.source,
        flt.assignee,
        " ".join(flt.text.split()) if flt.text else None,
    )
    if version is not None:
        with _facet_lock:
            cached = _facet_cache.get(key)
        if cached is not None:
            return cached
    kept = _kept_facet_rows(session, flt)
    rows = (
        kept
        if kept is not None
        else [
            (str(row_status), str(row_priority), int(count))
            for row_status, row_priority, count in session.execute(
                select(Ticket.status, Ticket.priority, func.count(Ticket.id))
                .where(*common)
                .group_by(Ticket.status, Ticket.priority)
            )
        ]
    )
    if version is not None:
        with _facet_lock:
            _facet_cache[key] = rows
            _facet_cache.move_to_end(key)
            while len(_facet_cache) > FACET_CACHE_SIZE:
                _facet_cache.popitem(last=False)
    return rows


def _kept_facet_rows(session: Session, flt: TicketFilter) -> list[tuple[str, str, int]] | None:
    """The same counts from the facet rows the store keeps (``TicketFacetCount``): a sum over a few
    hundred rows rather than a count of every ticket. None when a text filter is set (the rows know no
    titles) or this store has no triggers keeping them (tables made from the models, not migrated)."""
    if flt.text and flt.text.strip():
        return None
    if not _facets_kept(session):
        return None
    f = TicketFacetCount
    where: list[ColumnElement[bool]] = []
    if flt.queue:
        where.append(f.queue == flt.queue)
    if flt.category:
        where.append(f.category == flt.category)
    if flt.source:
        where.append(f.source == flt.source)
    if flt.assignee == UNASSIGNED:
        where.append(f.assignee_id.is_(None))
    elif flt.assignee:
        where.append(f.assignee_id == select(User.id).where(User.username == flt.assignee).scalar_subquery())
    total = func.sum(f.n)
    query = (
        select(f.status, f.priority, total).where(*where).group_by(f.status, f.priority).having(total != 0)
    )
    return [(str(a), str(b), int(n)) for a, b, n in session.execute(query)]


def _facets_kept(session: Session) -> bool:
    """Whether this store's triggers keep ``ticket_facet_count`` (migration 0015); remembered per store."""
    url = str(session.get_bind().engine.url)
    if url in _kept_stores:
        return _kept_stores[url]
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        sql = "SELECT count(*) FROM pg_trigger WHERE tgname = 'ticket_facet_update' AND NOT tgisinternal"
    else:
        sql = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = 'ticket_facet_update'"
    cursor = conn.connection.cursor()  # once per store, on the side: not one of the page's statements
    try:
        cursor.execute(sql)
        row = cursor.fetchone()
    finally:
        cursor.close()
    found = bool(row and row[0])
    _kept_stores[url] = found
    return found


QUEUES_IN_USE = text(
    "WITH RECURSIVE q(queue) AS ("
    " SELECT MIN(queue) FROM ticket"
    " UNION ALL SELECT (SELECT MIN(t.queue) FROM ticket t WHERE t.queue > q.queue)"
    " FROM q WHERE q.queue IS NOT NULL"
    ") SELECT queue FROM q WHERE queue IS NOT NULL"
)
"""The distinct queues as a skip scan: one probe of the ``(queue, category, priority)`` index per queue
(a plain DISTINCT reads every ticket: 40 ms at 100,000 tickets, on every ticket page)."""


def queues_in_use(session: Session) -> list[str]:
    """The queues that hold at least one ticket, in order. One query, a few index probes."""
    return [str(queue) for queue in session.scalars(QUEUES_IN_USE)]


def _ticket(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise TicketNotFound(ticket_id)
    return ticket


def get_detail(
    session: Session, ticket_id: int, *, occurrence_limit: int = 100, audit_limit: int = 1000
) -> TicketDetail:
    """A ticket with its latest occurrences, its audit trail and its assignee's name. Four queries."""
    ticket = _ticket(session, ticket_id)
    occurrences = session.scalars(
        select(Occurrence)
        .where(Occurrence.ticket_id == ticket_id)
        .order_by(Occurrence.id.desc())
        .limit(occurrence_limit)
    ).all()
    audit = session.scalars(
        select(TicketAudit)
        .where(TicketAudit.ticket_id == ticket_id)
        .order_by(TicketAudit.id)
        .limit(audit_limit)
    ).all()
    assignee = None
    if ticket.assignee_id is not None:
        assignee = session.scalar(select(User.username).where(User.id == ticket.assignee_id))
    return TicketDetail(ticket=ticket, occurrences=occurrences, audit=audit, assignee=assignee)


def occurrences(session: Session, ticket_id: int, *, limit: int = 50, offset: int = 0) -> Slice[Occurrence]:
    """A ticket's occurrences, newest first. Three queries; :class:`TicketNotFound` for no such ticket."""
    _ticket(session, ticket_id)
    where = Occurrence.ticket_id == ticket_id
    total = session.scalar(select(func.count(Occurrence.id)).where(where)) or 0
    items = session.scalars(
        select(Occurrence).where(where).order_by(Occurrence.id.desc()).limit(limit).offset(offset)
    ).all()
    return Slice(items, total, limit, offset)


def audit_trail(
    session: Session, ticket_id: int, *, action: str | None = None, limit: int = 100, offset: int = 0
) -> Slice[TicketAudit]:
    """A ticket's audit entries (only one ``action`` when given, ``commented`` for the comments), oldest
    first. Three queries; :class:`TicketNotFound` for no such ticket."""
    _ticket(session, ticket_id)
    where = [TicketAudit.ticket_id == ticket_id]
    if action is not None:
        where.append(TicketAudit.action == action)
    total = session.scalar(select(func.count(TicketAudit.id)).where(*where)) or 0
    items = session.scalars(
        select(TicketAudit).where(*where).order_by(TicketAudit.id).limit(limit).offset(offset)
    ).all()
    return Slice(items, total, limit, offset)


def open_counts(session: Session) -> dict[str, int]:
    """Open tickets per priority (only priorities that have some). One indexed GROUP BY."""
    rows = session.execute(
        select(Ticket.priority, func.count(Ticket.id))
        .where(Ticket.status.in_(OPEN_STATUSES))
        .group_by(Ticket.priority)
    ).all()
    return {str(priority): int(count) for priority, count in rows}
