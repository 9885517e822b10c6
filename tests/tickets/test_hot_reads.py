"""Cache hits answered on the event loop (tickets/hot_reads.py) obey the same rules as the general path: a
deactivated user, a revoked token, a token without the scope or a role without the queue never get a cached
page; a token's use is still recorded once a minute; a failing lookup falls back to the general path. On
PostgreSQL the lookup runs on the event loop's own connections (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, update
from starlette.testclient import TestClient

from core.db import utcnow
from core.session import session_scope
from tests.tickets.factories import TicketApp, open_ticket
from tests.tickets.web import login
from tickets.auth import ROLE_SCOPES, create_token, principal_for_token, token_hash
from tickets.hot_reads import HotReads
from tickets.models import ApiToken, User

LIST = "/api/v1/tickets?status=open"


def hot_of(ticket_app: TicketApp) -> HotReads:
    hot: HotReads = ticket_app.app.state.hypercare.hot
    return hot


def set_active(ticket_app: TicketApp, username: str, active: bool) -> None:
    with session_scope(ticket_app.factory) as session:
        session.execute(update(User).where(User.username == username).values(active=active))


def counting_hits(monkeypatch: pytest.MonkeyPatch, hot: HotReads) -> dict[str, int]:
    """How often each lookup answered (a user found), counted around the real lookups."""
    counts = {"session": 0, "token": 0}
    for name in counts:
        real = getattr(hot, f"{name}_user")

        async def counted(arg: Any, real: Any = real, name: str = name) -> Any:
            found = await real(arg)
            counts[name] += found is not None
            return found

        monkeypatch.setattr(hot, f"{name}_user", counted)
    return counts


def test_the_lookup_runs_on_the_event_loop_on_postgresql_and_in_a_thread_elsewhere(
    client: TestClient, ticket_app: TicketApp
) -> None:
    assert hot_of(ticket_app).on_event_loop == (ticket_app.engine.dialect.name == "postgresql")


def test_a_repeated_request_is_a_hit_with_the_same_body(
    client: TestClient, ticket_app: TicketApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_ticket(ticket_app, fingerprint="hot-1", summary="Hot one")
    counts = counting_hits(monkeypatch, hot_of(ticket_app))
    headers = ticket_app.auth("agent")
    assert client.get(LIST, headers=headers).status_code == 200  # the token's first use is recorded
    assert counts["token"] == 0
    first = client.get(LIST, headers=headers)
    second = client.get(LIST, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert [t["title"] for t in second.json()["items"]] == ["Hot one"]
    assert counts["token"] == 2
    login(client, "agent")
    pages = [client.get("/tickets?status=all") for _ in range(2)]
    assert all(p.status_code == 200 and "Hot one" in p.text for p in pages)
    assert counts["session"] == 2


def test_a_deactivated_user_gets_no_cached_page(client: TestClient, ticket_app: TicketApp) -> None:
    open_ticket(ticket_app, fingerprint="hot-2", summary="Secret queue")
    login(client, "viewer")
    assert "Secret queue" in client.get("/tickets").text  # cached now
    assert client.get(LIST, headers=ticket_app.auth("viewer")).status_code == 200
    set_active(ticket_app, "viewer", False)
    page = client.get("/tickets", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert client.get(LIST, headers=ticket_app.auth("viewer")).status_code == 401


def test_a_revoked_token_gets_no_cached_list(client: TestClient, ticket_app: TicketApp) -> None:
    headers = ticket_app.auth("manager")
    assert client.get(LIST, headers=headers).status_code == 200
    with session_scope(ticket_app.factory) as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.token_hash == token_hash(ticket_app.tokens["manager"]))
            .values(revoked_at=utcnow())
        )
    refused = client.get(LIST, headers=headers)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")


def test_a_token_without_the_scope_and_a_role_without_the_queue_are_refused_after_a_hit(
    client: TestClient, ticket_app: TicketApp
) -> None:
    assert client.get(LIST, headers=ticket_app.auth("agent")).status_code == 200  # filed for the role
    with session_scope(ticket_app.factory) as session:
        agent = session.scalars(select(User).where(User.username == "agent")).one()
        narrow = create_token(session, agent, "events only", ["events:write"])
    refused = client.get(LIST, headers={"Authorization": f"Bearer {narrow}"})
    assert refused.status_code == 403
    assert "tickets:read" in refused.json()["error"]["message"]
    assert client.get(LIST, headers=ticket_app.auth("reporter")).status_code == 403
    login(client, "reporter")
    page = client.get("/tickets", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/report"


def test_a_token_use_is_still_recorded_once_a_minute(client: TestClient, ticket_app: TicketApp) -> None:
    headers = ticket_app.auth("oncall")
    digest = token_hash(ticket_app.tokens["oncall"])
    long_ago = utcnow() - timedelta(minutes=5)
    with session_scope(ticket_app.factory) as session:
        session.execute(update(ApiToken).where(ApiToken.token_hash == digest).values(last_used_at=long_ago))
    for _ in range(3):
        assert client.get(LIST, headers=headers).status_code == 200
    with session_scope(ticket_app.factory) as session:
        used = session.scalar(select(ApiToken.last_used_at).where(ApiToken.token_hash == digest))
    assert used is not None and used > long_ago + timedelta(minutes=4)


def test_a_failing_lookup_falls_back_to_the_general_path(
    client: TestClient,
    ticket_app: TicketApp,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    open_ticket(ticket_app, fingerprint="hot-3", summary="Still served")
    hot = hot_of(ticket_app)
    headers = ticket_app.auth("agent")
    assert client.get(LIST, headers=headers).status_code == 200

    def broken(*args: object) -> None:
        raise ConnectionError("the hot lookup's connection went away")

    async def broken_async(*args: object) -> None:
        broken()

    monkeypatch.setattr(hot, "_first_on_loop", broken_async)
    monkeypatch.setattr(hot, "_first_in_thread", broken)
    with caplog.at_level(logging.WARNING, logger="tickets.hot_reads"):
        listed = client.get(LIST, headers=headers)
        login(client, "agent")
        page = client.get("/tickets")
    assert listed.status_code == 200 and [t["title"] for t in listed.json()["items"]] == ["Still served"]
    assert page.status_code == 200 and "Still served" in page.text
    assert any("general path" in r.getMessage() for r in caplog.records)
    assert all("Bearer" not in r.getMessage() and "hc_" not in r.getMessage() for r in caplog.records)


def test_a_change_is_seen_by_the_next_hit(client: TestClient, ticket_app: TicketApp) -> None:
    headers = ticket_app.auth("agent")
    login(client, "agent")
    assert client.get(LIST, headers=headers).json()["total"] == 0
    assert "Fresh one" not in client.get("/tickets").text
    open_ticket(ticket_app, fingerprint="hot-4", summary="Fresh one")
    assert client.get(LIST, headers=headers).json()["total"] == 1
    assert "Fresh one" in client.get("/tickets").text


def test_the_hot_lookup_and_the_general_path_decide_alike(client: TestClient, ticket_app: TicketApp) -> None:
    """One decision (tickets.auth.token_access / session_access) behind both: the hot lookup lets in exactly
    whom the general path lets in, with the same scopes (or defers a use due to be recorded to it)."""
    hot = hot_of(ticket_app)
    token = ticket_app.tokens["agent"]
    digest = token_hash(token)

    def general() -> frozenset[str] | None:
        with session_scope(ticket_app.factory) as session:
            found = principal_for_token(session, token)
            return None if found is None else found.scopes

    def hot_token() -> frozenset[str] | None:
        who = client.portal.call(hot.token_user, token)
        return None if who is None else who.scopes

    def hot_session() -> frozenset[str] | None:
        who = client.portal.call(hot.session_user, agent_id)
        return None if who is None else who.scopes

    def change_token(**values: object) -> None:
        with session_scope(ticket_app.factory) as session:
            session.execute(update(ApiToken).where(ApiToken.token_hash == digest).values(**values))

    with session_scope(ticket_app.factory) as session:
        agent_id = session.scalars(select(User.id).where(User.username == "agent")).one()
    scopes = general()  # records the use: the hot lookup may answer now
    assert scopes == hot_token() == ROLE_SCOPES["agent"] == hot_session()

    change_token(scopes="tickets:read")
    assert hot_token() == general() == frozenset({"tickets:read"})
    set_role(ticket_app, "agent", "viewer")  # the role narrows the token and the session at once
    assert hot_token() == general() == frozenset({"tickets:read"})
    assert hot_session() == ROLE_SCOPES["viewer"]
    set_role(ticket_app, "agent", "agent")
    set_active(ticket_app, "agent", False)
    assert hot_token() is None and general() is None and hot_session() is None
    set_active(ticket_app, "agent", True)
    change_token(revoked_at=utcnow())
    assert hot_token() is None and general() is None
    change_token(revoked_at=None, last_used_at=utcnow() - timedelta(minutes=5))
    assert hot_token() is None, "a use due to be recorded is the general path's (a write)"
    assert general() == frozenset({"tickets:read"})
    assert hot_token() == frozenset({"tickets:read"})


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_hot_lookup_is_one_statement(client: TestClient, ticket_app: TicketApp) -> None:
    hot = hot_of(ticket_app)
    headers = ticket_app.auth("agent")
    assert client.get(LIST, headers=headers).status_code == 200  # records the token's use
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    event.listen(ticket_app.engine, "before_cursor_execute", record)
    try:
        assert client.portal.call(hot.token_user, ticket_app.tokens["agent"]) is not None
        assert client.portal.call(hot.session_user, 1) is not None
    finally:
        event.remove(ticket_app.engine, "before_cursor_execute", record)
    assert len(seen) == 2, seen


def set_role(ticket_app: TicketApp, username: str, role: str) -> None:
    with session_scope(ticket_app.factory) as session:
        session.execute(update(User).where(User.username == username).values(role=role))
