"""The queue page and the list API are cached under the store's tickets version and never stale: every
write to a ticket moves the version in its own transaction, and the very next request shows the change,
in the same app and in another app sharing the store (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import re
import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, bindparam, event, insert, text, update
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from core.db import utcnow
from core.session import session_factory, session_scope
from tests.queries import record_statements
from tests.tickets.factories import TicketApp, make_event, make_settings, open_ticket
from tests.tickets.web import csrf_of, login
from tickets.cache import bump_version, store_version
from tickets.models import ApiToken, Ticket
from tickets.response_cache import VersionedCache
from tickets.service import TicketService
from tickets.ui import routes
from tickets.ui.views import ClockFacts, LiveClocks, clock_html, sla_clock


def version_of(engine: Engine) -> int | None:
    with session_factory(engine)() as session:
        return store_version(session)


def test_every_committed_ticket_change_moves_the_version_and_nothing_else_does(
    ticket_app: TicketApp,
) -> None:
    engine = ticket_app.engine
    start = version_of(engine)
    assert start is not None
    ticket_id = open_ticket(ticket_app)
    after_open = version_of(engine)
    assert after_open == start + 1, "one transaction, one step"

    with session_factory(engine)() as session:  # read-only: no step
        session.scalar(text("SELECT count(*) FROM ticket"))
        session.commit()
    assert version_of(engine) == after_open

    with session_factory(engine)() as session:  # rolled back: no step
        session.execute(update(Ticket).where(Ticket.id == ticket_id).values(title="never"))
        session.rollback()
    assert version_of(engine) == after_open

    with engine.begin() as conn:  # Core on a bare connection, outside any session: a step with its bump
        conn.execute(update(Ticket).where(Ticket.id == ticket_id).values(title="Core wrote this"))
        bump_version(conn)
    assert version_of(engine) == after_open + 1

    with session_scope(ticket_app.factory) as session:
        TicketService(session, ticket_app.settings).acknowledge(ticket_id, "agent")
    assert version_of(engine) == after_open + 2


def test_a_core_bulk_write_through_a_session_moves_the_version_once(ticket_app: TicketApp) -> None:
    engine = ticket_app.engine
    ticket_id = open_ticket(ticket_app)
    before = version_of(engine)
    assert before is not None
    table = Ticket.metadata.tables["ticket"]
    with session_scope(ticket_app.factory) as session:  # Core statements on the table, executemany
        session.execute(
            update(table).where(table.c.id == bindparam("tid")).values(title=bindparam("title")),
            [{"tid": ticket_id, "title": "one"}, {"tid": ticket_id, "title": "two"}],
        )
        session.execute(insert(table), [_bulk_row()])
    assert version_of(engine) == before + 1, "one transaction, one step, however many statements"


def test_text_sql_moves_the_version_only_when_its_writer_bumps_it(ticket_app: TicketApp) -> None:
    engine = ticket_app.engine
    ticket_id = open_ticket(ticket_app)
    before = version_of(engine)
    assert before is not None
    write = text("UPDATE ticket SET title = :title WHERE id = :id")
    with session_scope(ticket_app.factory) as session:  # nothing parses SQL: unseen, unbumped
        session.execute(write, {"title": "unseen", "id": ticket_id})
    assert version_of(engine) == before
    with session_scope(ticket_app.factory) as session:
        session.execute(write, {"title": "seen", "id": ticket_id})
        bump_version(session)
        bump_version(session)  # marks; the bump itself is made once, at commit
    assert version_of(engine) == before + 1


def test_an_orm_change_left_unflushed_at_commit_moves_the_version(ticket_app: TicketApp) -> None:
    engine = ticket_app.engine
    ticket_id = open_ticket(ticket_app)
    before = version_of(engine)
    assert before is not None
    with ticket_app.factory() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        ticket.title = "flushed by the commit itself"
        session.commit()
    assert version_of(engine) == before + 1


def test_writes_to_other_tables_and_unchanged_loads_do_not_move_the_version(ticket_app: TicketApp) -> None:
    engine = ticket_app.engine
    ticket_id = open_ticket(ticket_app)
    before = version_of(engine)
    with session_scope(ticket_app.factory) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        ticket.title = ticket.title  # set to what it was: no net change, no UPDATE
        session.execute(update(ApiToken).values(last_used_at=utcnow()))
    assert version_of(engine) == before


def test_a_rolled_back_transaction_leaves_no_mark_for_the_next_one(ticket_app: TicketApp) -> None:
    engine = ticket_app.engine
    ticket_id = open_ticket(ticket_app)
    before = version_of(engine)
    assert before is not None
    with ticket_app.factory() as session:
        session.execute(update(Ticket).where(Ticket.id == ticket_id).values(title="never"))
        session.rollback()
        session.execute(text("SELECT 1"))
        session.commit()
    assert version_of(engine) == before


def test_the_version_moves_in_the_test_sessions_savepoint_mode_too(session: Session) -> None:
    """The per-test session (tests/conftest.py) joins an outer transaction with SAVEPOINTs: its commits
    bump as a served process's do."""
    before = store_version(session)
    assert before is not None
    TicketService(session, make_settings()).ingest(make_event(fingerprint="savepoint-mode"))
    session.commit()
    assert store_version(session) == before + 1


def test_a_change_shows_on_the_very_next_request_in_both_apps(
    client: TestClient, other_app: TestClient, ticket_app: TicketApp
) -> None:
    ticket_id = open_ticket(ticket_app, summary="Bank file rejected")
    agent = ticket_app.auth("agent")
    login(client, "agent")
    login(other_app, "agent")

    def api_status(c: TestClient) -> str:
        items = c.get("/api/v1/tickets", headers=agent).json()["items"]
        return str(next(t["status"] for t in items if t["id"] == ticket_id))

    def page_status(c: TestClient) -> str:
        html = c.get("/tickets?status=all").text
        found = re.search(rf'data-id="{ticket_id}">.*?<span class="status (\w+)"', html, re.S)
        assert found is not None
        return found.group(1)

    caches = ticket_app.app.state.hypercare.caches
    api_cache, page_cache = caches.get("api-list"), caches.get("queue-page")
    for c in (client, other_app):
        assert (api_status(c), page_status(c)) == ("new", "new")
    hits = (api_cache.hits, page_cache.hits)
    assert (api_status(client), page_status(client)) == ("new", "new")
    assert (api_cache.hits, page_cache.hits) == (hits[0] + 1, hits[1] + 1), "the second read is cached"

    # the other app acknowledges; this app's very next requests show it (and the other way round)
    assert other_app.post(f"/api/v1/tickets/{ticket_id}/acknowledge", headers=agent).status_code == 200
    assert (api_status(client), page_status(client)) == ("acknowledged", "acknowledged")
    resolved = client.post(f"/api/v1/tickets/{ticket_id}/resolve", json={"reason": "fixed"}, headers=agent)
    assert resolved.status_code == 200
    assert (api_status(other_app), page_status(other_app)) == ("resolved", "resolved")

    # a write outside any app (a script on the store that bumps the version) too
    with ticket_app.engine.begin() as conn:
        conn.execute(update(Ticket).where(Ticket.id == ticket_id).values(title="Renamed by a script"))
        bump_version(conn)
    for c in (client, other_app):
        assert "Renamed by a script" in c.get("/tickets?status=all").text
        assert "Renamed by a script" in c.get("/api/v1/tickets", headers=agent).text


def test_a_new_ticket_counts_at_once(client: TestClient, ticket_app: TicketApp) -> None:
    open_ticket(ticket_app, fingerprint="one")
    viewer = ticket_app.auth("viewer")
    assert client.get("/api/v1/tickets", headers=viewer).json()["total"] == 1
    with session_scope(ticket_app.factory) as session:  # a bulk insert, as the Alertmanager intake does
        session.execute(insert(Ticket), [_bulk_row()])
    listing = client.get("/api/v1/tickets", headers=viewer).json()
    assert listing["total"] == 2 and listing["facets"]["by_status"] == {"new": 2}


def _bulk_row() -> dict[str, object]:
    now = utcnow()
    return {
        "fingerprint": "bulk",
        "open_fingerprint": "bulk",
        "title": "Bulk inserted",
        "description": "",
        "status": "new",
        "priority": "P3",
        "impact": "medium",
        "urgency": "medium",
        "category": "data",
        "source": "erp",
        "queue": "hypercare",
        "entity": {},
        "labels": {},
        "first_seen_at": now,
        "last_seen_at": now,
        "created_at": now,
        "updated_at": now,
    }


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_cached_page_keeps_its_clock_and_csrf_token_live(
    client: TestClient, ticket_app: TicketApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_ticket(ticket_app, severity="P3")
    login(client, "agent")
    first = client.get("/tickets")
    clock = re.search(r'<span class="clock [\w-]+"[^>]*>([^<]+)</span>', first.text)
    assert clock is not None and "due in" in clock.group(1)
    later = utcnow() + timedelta(days=30)
    monkeypatch.setattr(routes, "utcnow", lambda: later)
    second = client.get("/tickets").text
    moved = re.search(r'<span class="clock [\w-]+"[^>]*>([^<]+)</span>', second)
    assert moved is not None and "overdue" in moved.group(1), "the clock is not frozen in the cache"
    assert csrf_of(second) == csrf_of(first.text)

    with TestClient(client.app, base_url="http://testserver") as another:  # another session, same user
        login(another, "agent")
        assert csrf_of(another.get("/tickets").text) != csrf_of(second), "each session its own token"
        logout = another.post("/logout", data={"csrf": csrf_of(another.get("/tickets").text)})
        assert logout.status_code in {200, 303}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_read_with_a_token_just_used_commits_nothing(client: TestClient, ticket_app: TicketApp) -> None:
    viewer = ticket_app.auth("viewer")
    assert client.get("/api/v1/tickets", headers=viewer).status_code == 200  # records the use
    statements = record_statements(ticket_app.engine)
    commits: list[object] = []
    event.listen(ticket_app.engine, "commit", commits.append)
    assert client.get("/api/v1/tickets", headers=viewer).status_code == 200
    assert not commits and not any(s.lstrip().upper().startswith("UPDATE") for s in statements)


def test_a_versioned_cache_never_answers_for_another_version() -> None:
    cache: VersionedCache[str] = VersionedCache(size=2)
    cache.put("a", 1, "one")
    assert cache.get("a", 1) == "one" and cache.get("a", 2) is None and cache.get("a", None) is None
    cache.put("a", 3, "three")
    cache.put("a", 2, "two")  # a slower request read an older version: the newer answer stays
    assert cache.get("a", 3) == "three" and cache.get("a", 2) is None
    cache.put("b", 3, "b")
    cache.put("c", 3, "c")
    assert cache.get("a", 3) is None, "least recently used dropped"


def test_requests_arriving_during_a_build_wait_for_it_instead_of_building_again() -> None:
    cache: VersionedCache[int] = VersionedCache()
    builds: list[int] = []
    started, release = threading.Event(), threading.Event()

    def build() -> int:
        builds.append(1)
        started.set()
        release.wait(5)
        return len(builds)

    results: list[int] = []
    first = threading.Thread(target=lambda: results.append(cache.get_or_build("page", 4, build)))
    first.start()
    started.wait(5)
    others = [
        threading.Thread(target=lambda: results.append(cache.get_or_build("page", 4, build)))
        for _ in range(5)
    ]
    for thread in others:
        thread.start()
    release.set()
    for thread in [first, *others]:
        thread.join(5)
    assert results == [1] * 6 and len(builds) == 1
    assert cache.get_or_build("page", 5, build) == 2, "another version is built anew"


def test_reused_clocks_always_read_as_freshly_computed_ones() -> None:
    rng = random.Random(5)  # noqa: S311  (reproducible test data)
    start = utcnow().replace(microsecond=0)

    def at(seconds: float) -> datetime:
        return start + timedelta(seconds=seconds)

    facts = [
        ClockFacts(
            is_open=rng.random() < 0.9,
            sla_state=rng.choice(("ok", "at_risk", "paused", "breached")),
            acknowledged_at=None if rng.random() < 0.5 else start,
            sla_response_due_at=at(rng.uniform(-300, 300)) if rng.random() < 0.9 else None,
            sla_resolution_due_at=at(rng.choice((0, 60, 120)) + rng.uniform(-300, 300)),
        )
        for _ in range(40)
    ]
    live = LiveClocks(facts)
    moment, recomputed = 0.0, 0
    for _ in range(3000):
        moment += rng.choice((0.0, 0.001, 0.05, 0.4, 1.0, 7.0))
        before = live._cells
        assert live.cells(at(moment)) == [clock_html(sla_clock(f, at(moment))) for f in facts]
        recomputed += live._cells is not before
    assert 0 < recomputed < 3000, "reused between changes, recomputed at them"


def test_alertmanager_sightings_applied_set_wise_show_at_once(
    client: TestClient, ticket_app: TicketApp
) -> None:
    from tests.tickets.factories import alert, webhook
    from tickets.alertmanager import ingest_webhook

    def deliver(start: int) -> None:
        with session_scope(ticket_app.factory) as session:
            service = TicketService(session, ticket_app.settings)
            ingest_webhook(service, webhook(alert(1, start)), ticket_app.settings.alertmanager)

    viewer = ticket_app.auth("viewer")

    def counts() -> list[int]:
        items = client.get("/api/v1/tickets", headers=viewer).json()["items"]
        return [t["occurrence_count"] for t in items]

    deliver(0)
    assert counts() == [1]
    assert counts() == [1]
    deliver(10)  # a new episode of an open ticket: on PostgreSQL one data-modifying CTE (WITH ... INSERT)
    assert counts() == [2]


def test_savepoints_do_not_bump_early_and_one_left_open_at_commit_still_bumps(ticket_app: TicketApp) -> None:
    engine = ticket_app.engine
    ticket_id = open_ticket(ticket_app)
    before = version_of(engine)
    assert before is not None
    with ticket_app.factory() as session:
        with session.begin_nested():  # released: the transaction goes on, nothing bumped yet
            session.execute(update(Ticket).where(Ticket.id == ticket_id).values(title="inside"))
        assert version_of(engine) == before
        session.commit()
    assert version_of(engine) == before + 1
    with ticket_app.factory() as session:
        session.begin_nested()  # left open: the commit releases it after the hook ran
        session.execute(update(Ticket).where(Ticket.id == ticket_id).values(title="left open"))
        session.commit()
    assert version_of(engine) == before + 2
