"""Logins are throttled per user name and per client address, in the store (every server process counts
the same), lockouts are audited, an unknown name is answered exactly as a wrong password, and a login
session lives in the store: a cookie replayed after logout, or after the session was revoked, lets nobody
in (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from core.session import session_scope
from tests.tickets.factories import PASSWORD, T0, TicketApp
from tests.tickets.web import csrf_of, login
from tickets import auth, security_log, throttle
from tickets.access_models import AuthSession, LoginThrottle
from tickets.app import create_app
from tickets.auth import set_password, set_role, token_hash
from tickets.models import ApiToken, User
from tickets.throttle import ThrottleRules

RULES = ThrottleRules(
    window=timedelta(minutes=15),
    max_per_user=5,
    max_per_address=20,
    lockout=timedelta(seconds=30),
    lockout_max=timedelta(minutes=15),
)


def test_forty_wrong_passwords_then_the_right_one_is_refused_and_the_lockout_audited(
    client: TestClient, ticket_app: TicketApp
) -> None:
    answers = [login(client, "agent", f"wrong-{n}").status_code for n in range(40)]
    assert answers[:4] == [401] * 4, "a wrong password is a 401 until the name is locked"
    assert set(answers[4:]) == {429}, "the fifth failure locks the name; while locked every try is 429"
    right = login(client, "agent", PASSWORD)
    assert right.status_code == 429, "the right password does not get in while the name is locked"
    assert "Too many failed logins: try again in" in right.text
    assert 1 <= int(right.headers["Retry-After"]) <= 30
    assert client.get("/tickets", follow_redirects=False).status_code == 303  # still nobody logged in
    with session_scope(ticket_app.factory) as session:
        locks = security_log.events(session, "login_locked")
        assert [(e.subject, e.detail["lock_s"]) for e in locks] == [("user:agent", 30)]
        assert locks[0].address == "testclient"


def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password_after_the_same_work(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []
    real = auth.verify_password

    def counting(password: str, stored: str) -> bool:
        verified.append(stored[:9])
        return real(password, stored)

    monkeypatch.setattr(auth, "verify_password", counting)
    wrong = login(client, "agent", "not-the-password")
    unknown = login(client, "nobody-here", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    # the same page but for the name typed back into the form (the page names agent.js, so only the field)
    assert 'value="agent"' in wrong.text and 'value="nobody-here"' in unknown.text
    assert wrong.text.replace('value="agent"', 'value="NAME"') == unknown.text.replace(
        'value="nobody-here"', 'value="NAME"'
    ).replace(csrf_of(unknown.text), csrf_of(wrong.text))
    assert verified == ["$argon2id", "$argon2id"], "an unknown name costs an argon2 verification too"
    for _ in range(5):  # and an unknown name is locked exactly like a known one
        last = login(client, "nobody-here", "x" * 8)
    assert last.status_code == 429


def test_a_lock_doubles_up_to_its_cap_and_a_success_forgets_the_name(session: Session) -> None:
    def fail(times: int, at: object, name: str = "alice", address: str | None = None) -> object:
        lock = None
        for _ in range(times):
            lock = throttle.record_failure(session, name, address, at, RULES)  # type: ignore[arg-type]
        return lock

    assert fail(4, T0) is None
    assert fail(1, T0) == T0 + timedelta(seconds=30)
    assert throttle.locked_until(session, "ALICE", None, T0 + timedelta(seconds=29)) is not None
    later = T0 + timedelta(seconds=31)
    assert throttle.locked_until(session, "alice", None, later) is None
    assert fail(5, later) == later + timedelta(seconds=60), "the next lock in a row doubles"
    at = later + timedelta(seconds=61)
    for _ in range(6):
        lock = fail(5, at)
        assert lock is not None
        at = lock + timedelta(seconds=1)  # type: ignore[operator]
    assert lock == at - timedelta(seconds=1)
    assert throttle.lock_length(10, RULES) == timedelta(minutes=15), "capped"
    throttle.forget_user(session, "alice")
    assert throttle.locked_until(session, "alice", None, at) is None
    # an address is locked after its own (higher) limit, whatever names it tries
    lock = None
    for n in range(20):
        lock = fail(1, at, name=f"user{n}", address="203.0.113.7")
    assert lock == at + timedelta(seconds=30)
    assert throttle.locked_until(session, "someone-else", "203.0.113.7", at) is not None
    assert throttle.locked_until(session, "someone-else", "198.51.100.1", at) is None
    # rows untouched for a day (and not locked) are swept as failures are counted
    much_later = at + timedelta(days=2)
    fail(1, much_later, name="latecomer")
    keys = set(session.scalars(select(LoginThrottle.key)))
    assert keys == {"user:latecomer"}


def logged_in_cookie(client: TestClient) -> str:
    assert login(client, "agent").status_code == 303
    cookie = client.cookies.get("hypercare_session")
    assert cookie
    return cookie


def test_a_cookie_replayed_after_logout_is_refused(client: TestClient) -> None:
    cookie = logged_in_cookie(client)
    assert client.get("/tickets").status_code == 200
    token = csrf_of(client.get("/tickets").text)
    assert client.post("/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
    client.cookies.set("hypercare_session", cookie)  # the copy an attacker kept
    replay = client.get("/tickets", follow_redirects=False)
    assert replay.status_code == 303 and replay.headers["location"].startswith("/login")


@pytest.mark.parametrize("change", ["password", "role", "admin"])
def test_a_password_or_role_change_or_an_admin_ends_the_sessions(
    client: TestClient, ticket_app: TicketApp, change: str
) -> None:
    logged_in_cookie(client)
    assert client.get("/tickets").status_code == 200
    if change == "admin":
        ended = client.delete("/api/v1/users/agent/sessions", headers=ticket_app.auth("admin"))
        assert ended.status_code == 200 and ended.json() == {"username": "agent", "revoked": 1}
        refused = client.delete("/api/v1/users/agent/sessions", headers=ticket_app.auth("agent"))
        assert refused.status_code == 403
    else:
        with session_scope(ticket_app.factory) as session:
            user = session.scalars(select(User).where(User.username == "agent")).one()
            if change == "password":
                set_password(session, user, "a-new-password-1", actor="agent")
            else:
                set_role(session, "agent", "oncall", actor="admin")
    after = client.get("/tickets", follow_redirects=False)
    assert after.status_code == 303 and after.headers["location"].startswith("/login")
    with session_scope(ticket_app.factory) as session:
        revoked = security_log.events(session, "sessions_revoked")
        assert [e.subject for e in revoked] == ["agent"]


def test_an_expired_session_is_refused(client: TestClient, ticket_app: TicketApp) -> None:
    logged_in_cookie(client)
    assert client.get("/tickets").status_code == 200
    with session_scope(ticket_app.factory) as session:
        row = session.scalars(select(AuthSession)).one()
        assert row.expires_at - row.created_at == timedelta(hours=12)
        row.expires_at = row.created_at
    assert client.get("/tickets", follow_redirects=False).status_code == 303


def test_an_expired_token_is_refused_with_a_clear_401_even_after_cache_hits(
    client: TestClient, ticket_app: TicketApp
) -> None:
    headers = ticket_app.auth("agent")
    for _ in range(3):  # the first records the use; the next ones are cache hits on the hot path
        assert client.get("/api/v1/tickets?status=open", headers=headers).status_code == 200
    with session_scope(ticket_app.factory) as session:
        row = session.scalars(
            select(ApiToken).where(ApiToken.token_hash == token_hash(ticket_app.tokens["agent"]))
        ).one()
        row.expires_at = row.created_at
    refused = client.get("/api/v1/tickets?status=open", headers=headers)
    assert refused.status_code == 401
    assert "the token expired at" in refused.text and "hypercare tokens rotate" in refused.text


def test_failures_are_counted_across_server_processes(ticket_app: TicketApp) -> None:
    """Two apps on one store, as two `hypercare serve` workers: failures on either lock the name on both,
    and a session opened by one is ended for the other by a logout."""
    other = create_app(ticket_app.settings, engine=ticket_app.engine, registry=CollectorRegistry())
    with (
        TestClient(ticket_app.app, base_url="http://testserver") as first,
        TestClient(other, base_url="http://testserver") as second,
    ):
        assert [login(first, "viewer", "wrong-pass").status_code for _ in range(3)] == [401] * 3
        assert login(second, "viewer", "wrong-pass").status_code == 401
        assert login(second, "viewer", "wrong-pass").status_code == 429, "the fifth failure, on either"
        assert login(first, "viewer", PASSWORD).status_code == 429
        assert login(first, "agent").status_code == 303
        cookie = first.cookies.get("hypercare_session")
        assert cookie
        second.cookies.set("hypercare_session", cookie)  # the secret key is shared: the other worker
        assert second.get("/tickets").status_code == 200
        assert first.post("/logout", data={"csrf": csrf_of(first.get("/tickets").text)}).status_code == 200
        assert second.get("/tickets", follow_redirects=False).status_code == 303
