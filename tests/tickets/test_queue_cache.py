"""The queue page and the list API are cached under the store's tickets version and never stale: every
write to a ticket moves the version in its own transaction, and the very next request shows the change,
in the same app and in another app sharing the store (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, event, insert, text, update
from starlette.testclient import TestClient

from core.db import utcnow
from core.session import session_factory, session_scope
from hypercare.store import make_engine
from tests.queries import record_statements
from tests.tickets.factories import TicketApp, open_ticket
from tests.tickets.web import csrf_of, login
from tickets.api import create_app
from tickets.cache import VersionedCache, cache_for, store_version, writes_tracked_table
from tickets.models import Ticket
from tickets.service import TicketService
from tickets.ui import routes
from tickets.ui.views import ClockFacts, LiveClocks, clock_html, sla_clock


def version_of(engine: Engine) -> int | None:
    with session_factory(engine)() as session:
        return store_version(session)


@pytest.fixture
def other_app(ticket_app: TicketApp) -> Iterator[TestClient]:
    """A second Hypercare on the same store (its own engine, pool and caches)."""
    engine = make_engine(str(ticket_app.engine.url.render_as_string(hide_password=False)))
    app = create_app(ticket_app.settings, engine=engine, registry=CollectorRegistry())
    with TestClient(app, base_url="http://testserver") as other:
        yield other
    engine.dispose()


def test_writes_to_the_queue_tables_are_recognised() -> None:
    assert writes_tracked_table("UPDATE ticket SET status=? WHERE ticket.id = ?")
    assert writes_tracked_table("INSERT INTO ticket_audit (ticket_id) VALUES (%(ticket_id)s)")
    assert writes_tracked_table(' insert into "occurrence" (ticket_id) values (1)')
    assert writes_tracked_table("DELETE FROM app_user WHERE id = 3")
    assert not writes_tracked_table("INSERT INTO ticket_watcher (ticket_id) VALUES (1)")
    assert not writes_tracked_table("UPDATE api_token SET last_used_at = now()")
    assert not writes_tracked_table("SELECT * FROM ticket")
    assert not writes_tracked_table("SELECT id FROM ticket WHERE id = 1 FOR UPDATE")
    cte = "WITH ev AS (INSERT INTO event (a) VALUES (1) RETURNING id)\nINSERT INTO occurrence (event_id) SELECT id FROM ev"
    assert writes_tracked_table(cte), "a data-modifying CTE (the Alertmanager bulk intake)"
    assert writes_tracked_table("WITH x AS (SELECT 1)\nUPDATE ticket AS t SET occurrence_count = 2")
    # however the table is named: schema-qualified, quoted, any case and spacing
    assert writes_tracked_table("UPDATE public.ticket SET title = %(title)s WHERE ticket.id = %(id)s")
    assert writes_tracked_table('INSERT INTO "public"."ticket" (title) VALUES (%(title)s)')
    assert writes_tracked_table("UPDATE main.ticket SET title = ? WHERE id = ?")
    assert writes_tracked_table('update "main" . "occurrence"\n   set x = 1')
    assert writes_tracked_table("  \n\tdelete\n  from\tPUBLIC.app_user where id = 3")
    assert writes_tracked_table("UPDATE ONLY public.ticket SET title = 'x'")
    assert writes_tracked_table("INSERT IGNORE INTO `hypercare`.`ticket_audit` (ticket_id) VALUES (1)")
    # every other verb that writes rows
    assert writes_tracked_table("REPLACE INTO ticket (id, title) VALUES (1, 'x')")
    assert writes_tracked_table("INSERT OR REPLACE INTO ticket (id, title) VALUES (1, 'x')")
    assert writes_tracked_table(
        "INSERT INTO ticket (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET title = 'x'"
    )
    assert writes_tracked_table("UPSERT INTO ticket (id, title) VALUES (1, 'x')")
    merge = (
        "MERGE INTO public.ticket t USING src s ON t.id = s.id WHEN MATCHED THEN UPDATE SET title = s.title"
    )
    assert writes_tracked_table(merge)
    assert writes_tracked_table("TRUNCATE ticket")
    assert writes_tracked_table("truncate table ticket_watcher, public.occurrence restart identity cascade")
    assert writes_tracked_table(
        "WITH gone AS (DELETE FROM public.ticket RETURNING id) SELECT count(*) FROM gone"
    )
    # a name that merely starts like a tracked one, a schema named like one, reads, the counter itself
    assert not writes_tracked_table("UPDATE ticket_version SET version = version + 1 WHERE shard = 3")
    assert not writes_tracked_table('UPDATE "public"."ticket_version" SET version = 1')
    assert not writes_tracked_table("UPDATE public.ticket_watcher SET muted = true")
    assert not writes_tracked_table("REPLACE INTO ticket_watcher (ticket_id) VALUES (1)")
    assert not writes_tracked_table("TRUNCATE ticket_watcher, ticket_version")
    assert not writes_tracked_table(
        "MERGE INTO ticket_watcher w USING ticket t ON w.ticket_id = t.id WHEN MATCHED THEN DELETE"
    )
    assert not writes_tracked_table("UPDATE ticket.other SET x = 1")
    assert not writes_tracked_table("DELETE FROM tickets")
    assert not writes_tracked_table("SELECT * FROM public.ticket WHERE id = 1 FOR UPDATE OF ticket")
    assert not writes_tracked_table("SELECT replace(title, 'a', 'b') FROM main.ticket")
    assert not writes_tracked_table("WITH x AS (SELECT 1) SELECT * FROM ticket FOR UPDATE SKIP LOCKED")


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

    with engine.begin() as conn:  # Core, outside the service layer: a step too
        conn.execute(update(Ticket).where(Ticket.id == ticket_id).values(title="Core wrote this"))
    assert version_of(engine) == after_open + 1

    with session_scope(ticket_app.factory) as session:
        TicketService(session, ticket_app.settings).acknowledge(ticket_id, "agent")
    assert version_of(engine) == after_open + 2


def test_a_schema_qualified_write_moves_the_version(ticket_app: TicketApp) -> None:
    engine = ticket_app.engine
    ticket_id = open_ticket(ticket_app)
    before = version_of(engine)
    assert before is not None
    schema = "public" if engine.dialect.name == "postgresql" else "main"
    with engine.begin() as conn:  # a script naming the table with its schema
        conn.execute(
            text(f"UPDATE {schema}.ticket SET title = :title WHERE id = :id"), {"title": "x", "id": ticket_id}
        )
    assert version_of(engine) == before + 1
    with engine.begin() as conn:
        conn.execute(
            text(f'UPDATE "{schema}"."ticket" SET title = :title WHERE id = :id'),
            {"title": "y", "id": ticket_id},
        )
    assert version_of(engine) == before + 2


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

    with session_factory(ticket_app.engine)() as session:
        api_cache, page_cache = cache_for(session, "api-list"), cache_for(session, "queue-page")
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

    # a write outside any app (a script on the store) too
    with ticket_app.engine.begin() as conn:
        conn.execute(update(Ticket).where(Ticket.id == ticket_id).values(title="Renamed by a script"))
    for c in (client, other_app):
        assert "Renamed by a script" in c.get("/tickets?status=all").text
        assert "Renamed by a script" in c.get("/api/v1/tickets", headers=agent).text


def test_a_new_ticket_counts_at_once(client: TestClient, ticket_app: TicketApp) -> None:
    open_ticket(ticket_app, fingerprint="one")
    viewer = ticket_app.auth("viewer")
    assert client.get("/api/v1/tickets", headers=viewer).json()["total"] == 1
    with ticket_app.engine.begin() as conn:  # a bulk Core insert, as the Alertmanager intake does
        conn.execute(insert(Ticket), [_bulk_row()])
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
