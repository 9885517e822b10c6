"""The queue's read path at scale: its orders are the partial indexes' own (no sort of every open ticket),
facet counts are reused only at the same tickets version, the queue page reads no unused columns."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session

from tests.tickets.factories import make_event, make_settings
from tickets import queries
from tickets.models import Ticket, User
from tickets.queries import TicketFilter
from tickets.service import TicketService


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    queries._facet_cache.clear()
    yield
    queries._facet_cache.clear()


def _open(session: Session, n: int, start: int = 0) -> None:
    service = TicketService(session, make_settings())
    for k in range(start, start + n):
        service.ingest(make_event(fingerprint=f"fp-{k}", severity=("P1", "P2", "P3")[k % 3]))
    session.flush()


@pytest.mark.usefixtures("fresh_caches")
def test_facet_counts_are_exact_on_a_small_store(session: Session) -> None:
    _open(session, 3)
    assert queries.list_tickets(session, TicketFilter(status="open")).total == 3
    _open(session, 1, start=3)
    assert queries.list_tickets(session, TicketFilter(status="open")).total == 4


@pytest.mark.usefixtures("fresh_caches")
def test_facet_counts_are_reused_at_the_same_version_only(session: Session) -> None:
    _open(session, 3)
    first = queries.list_tickets(session, TicketFilter(status="open"), version=7)
    assert first.total == 3 and first.facets.by_priority == {"P1": 1, "P2": 1, "P3": 1}
    _open(session, 1, start=3)  # not committed yet: the facet version has not moved
    again = queries.list_tickets(session, TicketFilter(status="open"), version=7)
    assert again.total == 3, "the counts filed under the facet version"
    assert len(again.items) == 4, "the page itself is always read fresh"
    session.commit()  # the commit moves the facet version (a new ticket)
    assert queries.list_tickets(session, TicketFilter(status="open"), version=8).total == 4
    assert queries.list_tickets(session, TicketFilter(status="open")).total == 4, "no version: counted"


def test_the_queue_page_reads_tickets_without_their_unused_columns(session: Session) -> None:
    _open(session, 2)
    session.expunge_all()
    page = queries.list_tickets(session, TicketFilter(status="open"), lean=True)
    ticket = page.items[0]
    assert ticket.title and ticket.priority and ticket.last_seen_at is not None
    with pytest.raises(InvalidRequestError):
        _ = ticket.entity


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.parametrize(
    ("sort", "index"), [("priority", "ix_ticket_open_by_priority"), ("sla_due", "ix_ticket_open_by_sla_due")]
)
def test_the_open_queue_is_read_in_index_order(session: Session, sort: str, index: str) -> None:
    _open(session, 6)
    clauses = [queries._status_clause("open")]
    stmt = (
        select(Ticket.id)
        .outerjoin(User, User.id == Ticket.assignee_id)
        .where(*clauses)
        .order_by(*queries._order(sort, "open", "postgresql"))
        .limit(50)
    )
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy's dialect classes
    sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):  # a tiny table: force the choice
        session.execute(text(f"SET LOCAL {setting} = off"))
    plan = "\n".join(row[0] for row in session.execute(text("EXPLAIN " + sql)))
    assert index in plan and "Sort" not in plan, plan


@pytest.mark.parametrize("sort", ["priority", "sla_due"])
def test_all_statuses_page_through_the_open_tickets_then_the_others(session: Session, sort: str) -> None:
    """Sorted "open first", the page reads the open tickets and the others apart: every page, across the
    boundary too, is the page one ORDER BY over all of them gives."""
    _open(session, 9)
    closed = session.scalars(select(Ticket).order_by(Ticket.id).limit(4)).all()
    for n, ticket in enumerate(closed):
        ticket.status = ("resolved", "closed")[n % 2]
        ticket.open_fingerprint = None
    session.flush()
    dialect = session.get_bind().dialect.name
    everything = session.scalars(select(Ticket.id).order_by(*queries._order(sort, None, dialect))).all()
    assert len(everything) == 9
    for limit in (1, 2, 4, 5, 9):
        for offset in range(10):
            page = queries.list_tickets(session, TicketFilter(), sort=sort, limit=limit, offset=offset)
            assert [t.id for t in page.items] == everything[offset : offset + limit], (limit, offset)
            assert page.total == 9
