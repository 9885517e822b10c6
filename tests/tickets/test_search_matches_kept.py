"""A text search keeps the ids it matches under the store's text version: changes to what a search reads
(a title, a check, a fingerprint, the search text; a ticket added) move it, other changes do not, and what
the queue shows for a search is the same as searching every ticket again (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import text, update

from core.session import session_factory, session_scope
from tests.tickets.factories import TicketApp, open_ticket
from tickets import conversation
from tickets.cache import bump_version, text_version
from tickets.models import Ticket
from tickets.queries import TicketFilter, list_tickets
from tickets.service import TicketService


def version(ticket_app: TicketApp) -> int:
    with session_factory(ticket_app.engine)() as session:
        found = text_version(session)
    assert found is not None, "a migrated store has the text version"
    return found


def search(ticket_app: TicketApp, words: str, status: str | None = None) -> dict[int, str]:
    with session_factory(ticket_app.engine)() as session:
        page = list_tickets(session, TicketFilter(text=words, status=status), version=None)
        return {t.id: str(t.status) for t in page.items}


def test_only_changes_to_what_searches_read_move_the_text_version(ticket_app: TicketApp) -> None:
    a = open_ticket(ticket_app, fingerprint="fp-a", summary="Bank file rejected")
    before = version(ticket_app)
    with session_scope(ticket_app.factory) as session:
        TicketService(session, ticket_app.settings).acknowledge(a, "agent")
    with ticket_app.engine.begin() as conn:  # a writer that names its tickets: their text is unchanged
        conn.execute(
            update(Ticket).where(Ticket.id == a).values(occurrence_count=Ticket.occurrence_count + 1)
        )
        bump_version(conn, tickets=[a])
    assert version(ticket_app) == before, "status and counters are not what a search reads"

    steps = []
    with session_scope(ticket_app.factory) as session:
        conversation.add_comment(TicketService(session, ticket_app.settings), a, "agent", "应收账款 differs")
    steps.append(version(ticket_app))
    with session_scope(ticket_app.factory) as session:
        ticket = session.get(Ticket, a)
        assert ticket is not None
        ticket.title = "Bank file rejected twice"
    steps.append(version(ticket_app))
    open_ticket(ticket_app, fingerprint="fp-b", summary="Invoice replayed")
    steps.append(version(ticket_app))
    with session_scope(ticket_app.factory) as session:  # text SQL naming nothing: unknown, so it moves
        session.execute(text("UPDATE ticket SET occurrence_count = occurrence_count + 1"))
        bump_version(session)
    steps.append(version(ticket_app))
    assert steps == sorted(set(steps)) and steps[0] > before, f"each moved it: {before} -> {steps}"


def test_a_kept_search_shows_what_searching_again_shows(ticket_app: TicketApp) -> None:
    a = open_ticket(ticket_app, fingerprint="fp-a", summary="Invoice 4711 replayed")
    b = open_ticket(ticket_app, fingerprint="fp-b", summary="Invoice 4712 replayed")
    assert search(ticket_app, "invoice 4711") == {a: "new"}  # now kept
    with session_scope(ticket_app.factory) as session:  # status changes: the kept ids, fresh statuses
        TicketService(session, ticket_app.settings).resolve(a, "agent", reason="fixed")
    assert search(ticket_app, "invoice 4711") == {a: "resolved"}
    assert search(ticket_app, "invoice 4711", status="open") == {}
    with session_scope(ticket_app.factory) as session:  # a title change: searched again
        ticket = session.get(Ticket, b)
        assert ticket is not None
        ticket.title = "Invoice 4711 and 4712 replayed"
    assert search(ticket_app, "invoice 4711") == {a: "resolved", b: "new"}
    c = open_ticket(ticket_app, fingerprint="fp-c", summary="invoice 4711 posted twice")  # a new ticket
    assert set(search(ticket_app, "invoice 4711")) == {a, b, c}
    with session_scope(ticket_app.factory) as session:  # the conversation feeds the search text
        conversation.add_comment(
            TicketService(session, ticket_app.settings), a, "agent", "vendor 88 confirmed"
        )
    assert set(search(ticket_app, "vendor 88")) == {a}
