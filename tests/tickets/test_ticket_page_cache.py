"""The ticket page is cached per ticket under its page version and never stale: a write moves the pages it
can change (its tickets', or every page's when it may touch them all) in its own transaction, and the very
next request shows it, in this app and in another sharing the store (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text, update
from starlette.testclient import TestClient

from core.db import utcnow
from core.session import session_factory, session_scope
from tests.tickets.factories import TicketApp, make_event, open_ticket, ticket_app_on
from tests.tickets.web import csrf_of, login
from tickets import conversation, silences
from tickets.auth import get_user
from tickets.cache import bump_version, page_version
from tickets.lifecycle import Lifecycle
from tickets.models import ApiToken, Ticket, User
from tickets.service import TicketService
from tickets.silences import SilenceMatchers
from tickets.ui import ticket_page
from tickets.ui.ticket_page import TICKET_CACHE


def versions(ticket_app: TicketApp, *ids: int) -> tuple[int | None, ...]:
    with session_factory(ticket_app.engine)() as session:
        return tuple(page_version(session, ticket_id) for ticket_id in ids)


def moved(before: tuple[int | None, ...], after: tuple[int | None, ...]) -> tuple[bool, ...]:
    return tuple(a != b for a, b in zip(before, after, strict=True))


def test_a_write_moves_the_pages_it_can_change_and_no_other(ticket_app: TicketApp) -> None:
    a = open_ticket(ticket_app, fingerprint="page-a", summary="Bank file rejected")
    b = open_ticket(ticket_app, fingerprint="page-b", summary="Invoice replayed")
    start = versions(ticket_app, a, b)
    assert None not in start, "a migrated store caches ticket pages"

    def step(change: object) -> tuple[bool, ...]:
        nonlocal start
        before, start = start, versions(ticket_app, a, b)
        return moved(before, start)

    with session_scope(ticket_app.factory) as session:
        TicketService(session, ticket_app.settings).acknowledge(a, "agent")
    assert step("acknowledge a") == (True, False)

    with session_scope(ticket_app.factory) as session:
        conversation.add_comment(TicketService(session, ticket_app.settings), b, "agent", "looking at it")
    assert step("comment on b") == (False, True)

    with session_scope(ticket_app.factory) as session:
        Lifecycle(TicketService(session, ticket_app.settings)).link(a, "agent", b, "related")
    assert step("link a to b: both pages list it") == (True, True)

    with session_scope(ticket_app.factory) as session:  # no ticket page shows tokens or login sessions
        session.execute(update(ApiToken).values(last_used_at=utcnow()))
    assert step("a token's last use") == (False, False)

    with session_scope(ticket_app.factory) as session:  # every page lists the people
        user = get_user(session, "viewer")
        assert isinstance(user, User)
        user.display_name = "Vera Viewer"
    assert step("a user renamed") == (True, True)

    with session_scope(ticket_app.factory) as session:  # a statement whose rows the hook cannot see
        session.execute(update(Ticket).where(Ticket.id == a).values(title="Renamed in bulk"))
    assert step("Core UPDATE through the session") == (True, True)

    write = text("UPDATE ticket SET title = :title WHERE id = :id")
    with session_scope(ticket_app.factory) as session:  # text SQL whose writer names its ticket
        session.execute(write, {"title": "named", "id": b})
        bump_version(session, tickets=[b])
    assert step("text SQL naming b") == (False, True)
    with session_scope(ticket_app.factory) as session:  # ... or does not: every page
        session.execute(write, {"title": "unnamed", "id": b})
        bump_version(session)
    assert step("text SQL naming nothing") == (True, True)

    open_ticket(ticket_app, fingerprint="page-c")
    assert step("a new ticket: the queues in use may have changed") == (True, True)


def _no_general_path(*_args: object) -> None:
    raise AssertionError("a cache hit took the general path")


def test_the_page_is_served_from_the_cache_until_its_ticket_changes(
    client: TestClient, other_app: TestClient, ticket_app: TicketApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = open_ticket(ticket_app, fingerprint="cache-a", summary="Bank file rejected")
    b = open_ticket(ticket_app, fingerprint="cache-b", summary="Invoice replayed")
    agent = ticket_app.auth("agent")
    login(client, "agent")
    login(other_app, "agent")
    cache = ticket_app.app.state.hypercare.caches.get(TICKET_CACHE)

    first = client.get(f"/tickets/{a}")
    assert first.status_code == 200 and "Bank file rejected" in first.text
    hits = cache.hits
    with monkeypatch.context() as patched:  # a hit is answered on the event loop, never a worker thread
        patched.setattr(ticket_page, "general_path", _no_general_path)
        second = client.get(f"/tickets/{a}")
    assert cache.hits == hits + 1, "the second read is cached"
    assert csrf_of(second.text) == csrf_of(first.text)
    assert second.headers["content-language"] == first.headers["content-language"]

    # another ticket changes (through the other app): this page is still a hit
    comment = {"text": "only on b", "visibility": "internal"}
    assert other_app.post(f"/api/v1/tickets/{b}/conversation", json=comment, headers=agent).status_code in {
        200,
        201,
    }
    hits = cache.hits
    assert "only on b" not in client.get(f"/tickets/{a}").text
    assert cache.hits == hits + 1, "a change to another ticket leaves this page cached"

    # this ticket changes in the other app: the very next request here shows it
    comment = {"text": "the bank resent the file", "visibility": "internal"}
    assert other_app.post(f"/api/v1/tickets/{a}/conversation", json=comment, headers=agent).status_code in {
        200,
        201,
    }
    assert "the bank resent the file" in client.get(f"/tickets/{a}").text
    assert other_app.post(f"/api/v1/tickets/{a}/acknowledge", headers=agent).status_code == 200
    page = client.get(f"/tickets/{a}").text
    assert re.search(r'<span class="status acknowledged"', page) or "acknowledged" in page

    # and a script on the store that names the ticket
    with ticket_app.engine.begin() as conn:
        conn.execute(update(Ticket).where(Ticket.id == a).values(title="Renamed by a script"))
        bump_version(conn, tickets=[a])
    assert "Renamed by a script" in client.get(f"/tickets/{a}").text


@pytest.mark.parametrize("backend", ["sqlite"])  # a second client of the app: its own event loop
def test_a_cached_page_keeps_its_clock_and_token_live_and_flashes_are_never_cached(
    client: TestClient, ticket_app: TicketApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket_id = open_ticket(ticket_app, severity="P3")
    login(client, "agent")
    first = client.get(f"/tickets/{ticket_id}").text
    clock = re.search(r'id="sla-clock">([^<]+)</span>', first)
    assert clock is not None and "due in" in clock.group(1)

    later = utcnow() + timedelta(days=30)
    monkeypatch.setattr(ticket_page, "utcnow", lambda: later)  # past the entry's life: rebuilt, clock moved
    cache = ticket_app.app.state.hypercare.caches.get(TICKET_CACHE)
    page = client.get(f"/tickets/{ticket_id}").text
    moved_clock = re.search(r'id="sla-clock">([^<]+)</span>', page)
    assert moved_clock is not None and "overdue" in moved_clock.group(1), "the clock is not frozen"
    monkeypatch.undo()

    with TestClient(client.app, base_url="http://testserver") as another:  # another session, same user
        login(another, "agent")
        assert csrf_of(another.get(f"/tickets/{ticket_id}").text) != csrf_of(first), "each its own token"

    # an action answers with a flash message on the page it redirects to: shown, never filed or served
    token = csrf_of(client.get(f"/tickets/{ticket_id}").text)
    done = client.post(f"/tickets/{ticket_id}/acknowledge", data={"csrf": token})
    assert done.status_code == 200 and "flash" in done.text
    hits = cache.hits
    again = client.get(f"/tickets/{ticket_id}").text
    assert 'class="flash' not in again, "the flash was shown once"
    assert cache.hits == hits, "the page after the change is built, not the one cached before it"


def test_a_silence_shown_on_the_page_is_gone_from_it_once_it_ends(
    client: TestClient, ticket_app: TicketApp
) -> None:
    ticket_id = open_ticket(ticket_app, fingerprint="silenced", check_id="bank.file_rejected")
    login(client, "agent")
    now = utcnow()
    with session_scope(ticket_app.factory) as session:
        silences.create(
            session,
            matchers=SilenceMatchers(check="bank.file_rejected"),
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(seconds=2),
            created_by="agent",
            role="admin",
            limits=ticket_app.settings.security.silence_max_hours,
            comment="bank maintenance window",
            now=now,
        )
    assert "bank maintenance window" in client.get(f"/tickets/{ticket_id}").text
    assert "bank maintenance window" in client.get(f"/tickets/{ticket_id}").text  # cached
    time.sleep(max(0.0, (now + timedelta(seconds=2.2) - utcnow()).total_seconds()))
    assert "bank maintenance window" not in client.get(f"/tickets/{ticket_id}").text


@pytest.mark.parametrize("backend", ["sqlite"])  # a second client of the app: its own event loop
def test_a_reporter_never_gets_a_cached_ticket_page(client: TestClient, ticket_app: TicketApp) -> None:
    ticket_id = open_ticket(ticket_app)
    login(client, "agent")
    assert client.get(f"/tickets/{ticket_id}").status_code == 200  # filed
    with TestClient(client.app, base_url="http://testserver") as reporter:
        login(reporter, "reporter")
        answer = reporter.get(f"/tickets/{ticket_id}", follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/report"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_unreadable_runbook_directory_shows_its_error_on_the_page_and_nothing_is_kept(
    store_url: str, tmp_path: Path
) -> None:
    with ticket_app_on(store_url, tmp_path, runbooks_dir=tmp_path / "no-such-dir") as app:
        with session_scope(app.factory) as session:
            ticket = TicketService(session, app.settings).ingest(make_event(fingerprint="rb")).ticket
            assert ticket is not None
            ticket.runbook_id = "gl.unbalanced_entries"
            ticket_id = ticket.id
        with TestClient(app.app, base_url="http://testserver") as client:
            login(client, "agent")
            for _ in range(2):  # built, then built again: a page without its runbook is never kept
                page = client.get(f"/tickets/{ticket_id}")
                assert page.status_code == 200 and "runbook directory not found" in page.text
