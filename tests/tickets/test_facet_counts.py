"""Facet counts kept by the store (triggers on ``ticket``, migration 0018): after every kind of write, the
queue's counts from the kept rows equal a count of the tickets themselves, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from core.session import session_scope
from core.vocabulary import OPEN_STATUSES
from tests.tickets.factories import TicketApp, make_event, make_settings, open_ticket
from tickets import queries
from tickets.cache import bump_version, facet_version, store_version
from tickets.facets import TicketFacetCount, compact_facets
from tickets.models import Ticket, User
from tickets.queries import UNASSIGNED, TicketFilter
from tickets.service import TicketService

FILTERS = (
    TicketFilter(),
    TicketFilter(queue="finance"),
    TicketFilter(category="data"),
    TicketFilter(source="erp"),
    TicketFilter(assignee=UNASSIGNED),
    TicketFilter(assignee="facet-agent"),
    TicketFilter(queue="hypercare", category="data", assignee=UNASSIGNED),
)


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    queries._facet_cache.clear()
    yield
    queries._facet_cache.clear()


def counted(session: Session, flt: TicketFilter) -> list[tuple[str, str, int]]:
    """The counts of the tickets themselves (the GROUP BY the kept rows replace)."""
    rows = session.execute(
        select(Ticket.status, Ticket.priority, func.count(Ticket.id))
        .where(*queries._facet_clauses(flt))
        .group_by(Ticket.status, Ticket.priority)
    )
    return sorted((str(s), str(p), int(n)) for s, p, n in rows)


def assert_kept_equal_counted(session: Session) -> None:
    session.flush()
    for flt in FILTERS:
        kept = queries._kept_facet_rows(session, flt)
        assert kept is not None, "a migrated store keeps its facet counts"
        assert sorted(kept) == counted(session, flt), flt


@pytest.mark.usefixtures("fresh_caches")
def test_kept_facet_counts_follow_every_kind_of_write(session: Session) -> None:
    service = TicketService(session, make_settings())
    ids = [
        service.ingest(make_event(fingerprint=f"facet-{k}", severity=("P1", "P2", "P3")[k % 3])).ticket.id
        for k in range(9)
    ]
    agent = User(username="facet-agent", display_name="Agent", role="agent", password_hash="x")
    session.add(agent)
    assert_kept_equal_counted(session)

    service.acknowledge(ids[0], "tester")  # the ORM: status
    service.resolve(ids[1], "tester", "fixed")
    ticket = session.get(Ticket, ids[2])
    assert ticket is not None
    ticket.priority, ticket.assignee_id = "P4", agent.id  # the ORM: priority and assignee at once
    assert_kept_equal_counted(session)

    session.execute(update(Ticket).where(Ticket.id.in_(ids[3:6])).values(queue="finance"))  # a Core statement
    session.execute(text("UPDATE ticket SET category = 'process' WHERE id = :id"), {"id": ids[6]})  # text SQL
    session.execute(
        update(Ticket).where(Ticket.id == ids[7]).values(last_seen_at=func.now())
    )  # no facet moves
    assert_kept_equal_counted(session)

    service.ingest(make_event(fingerprint="facet-0"))  # a repeat: an occurrence, no new ticket
    assert_kept_equal_counted(session)

    compact_facets(session.connection())
    rows = session.scalars(select(TicketFacetCount)).all()
    facets = {(r.status, r.priority, r.queue, r.category, r.source, r.assignee_id) for r in rows}
    assert len(rows) == len(facets), "folded: one row per facet"
    assert all(r.n > 0 for r in rows)
    assert_kept_equal_counted(session)


@pytest.mark.usefixtures("fresh_caches")
def test_the_queue_page_counts_from_the_kept_rows_and_text_search_counts_tickets(session: Session) -> None:
    service = TicketService(session, make_settings())
    for k in range(4):
        service.ingest(make_event(fingerprint=f"facet-page-{k}"))
    session.flush()
    page = queries.list_tickets(session, TicketFilter(status="open"))
    assert page.total == sum(n for s, _, n in counted(session, TicketFilter()) if s in OPEN_STATUSES)
    assert queries._kept_facet_rows(session, TicketFilter(text="facet-page-1")) is None
    assert queries.list_tickets(session, TicketFilter(status="open", text="facet-page-1")).total == 1


@pytest.mark.usefixtures("fresh_caches")
def test_counts_are_kept_under_the_facet_version_which_sightings_do_not_move(ticket_app: TicketApp) -> None:
    """A sighting (a new last-seen time) keeps the counts; a status change or a new ticket counts again."""
    first = open_ticket(ticket_app, fingerprint="kept-1")
    open_ticket(ticket_app, fingerprint="kept-2")

    def page_counts() -> tuple[int, dict[str, int]]:
        with ticket_app.factory() as session:
            version = store_version(session)
            page = queries.list_tickets(session, TicketFilter(status="open"), version=version)
            return page.total, dict(page.facets.by_status)

    def facet_now() -> int | None:
        with ticket_app.factory() as session:
            return facet_version(session)

    assert page_counts() == (2, {"new": 2})
    before = facet_now()
    with ticket_app.engine.begin() as conn:  # a sighting, as the alert intake writes it
        conn.execute(update(Ticket).where(Ticket.id == first).values(last_seen_at=func.now()))
        bump_version(conn, tickets=[first])
    assert facet_now() == before, "a sighting changes no count"
    assert page_counts() == (2, {"new": 2})
    with session_scope(ticket_app.factory) as session:
        TicketService(session, ticket_app.settings).acknowledge(first, "agent")
    assert page_counts() == (2, {"new": 1, "acknowledged": 1}), "a status change is counted at once"
    open_ticket(ticket_app, fingerprint="kept-3")
    assert page_counts() == (3, {"new": 2, "acknowledged": 1}), "a new ticket too"
    with session_scope(ticket_app.factory) as session:  # a Core statement whose rows are not known
        session.execute(update(Ticket).where(Ticket.id == first).values(status="in_progress"))
    assert page_counts() == (3, {"new": 2, "in_progress": 1})
