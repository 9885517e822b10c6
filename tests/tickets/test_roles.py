"""Roles and scoped tokens: every API route names the scope it needs, and each role without it is refused;
argon2 passwords, with legacy scrypt hashes upgraded at login."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.routing import BaseRoute
from starlette.testclient import TestClient

from core.session import session_scope
from tests.tickets.factories import TicketApp
from tickets.api.deps import ACTING_ROLES
from tickets.auth import (
    ROLE_SCOPES,
    SCOPES,
    authenticate,
    create_token,
    create_user,
    principal_for_token,
    revoke_token,
    roles_with,
    verify_password,
)
from tickets.models import ROLES, ApiToken, User

PUBLIC_API = {"/api/v1/health"}
"""API paths that need no token (none today besides health, if it lives under /api/v1)."""
INLINE_CHECKS: dict[str, tuple[frozenset[str], dict[str, Any]]] = {
    "POST /api/v1/tickets/{ticket_id}/rating": (frozenset({"reports:write", "tickets:write"}), {"score": 5}),
}
"""Operations that check their scopes in the handler (after the body is validated) rather than through
``require_scope``, with a valid body to reach the check; the matrix still tries every role on them."""


def body_for(method: str, path: str) -> dict[str, Any]:
    return INLINE_CHECKS.get(f"{method} {path}", (frozenset(), {}))[1]


def _scopes_of(route: APIRoute) -> set[str]:
    found: set[str] = set()
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        found.update(getattr(dep.call, "required_scopes", ()))
        stack.extend(dep.dependencies)
    return found


def _all_routes(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        # FastAPI >= 0.16x keeps an included router as one entry holding the original router
        inner = getattr(route, "original_router", None)
        yield from _all_routes(inner.routes) if inner is not None else (route,)


def api_routes(app: FastAPI) -> list[tuple[str, str, frozenset[str]]]:
    """(method, path, scopes any of which admits) of every API operation."""
    out = []
    for route in _all_routes(app.routes):
        if isinstance(route, APIRoute) and route.path.startswith("/api/v1") and route.path not in PUBLIC_API:
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                scopes = (
                    _scopes_of(route) or INLINE_CHECKS.get(f"{method} {route.path}", (frozenset(), {}))[0]
                )
                out.append((method, route.path, frozenset(scopes)))
    return out


def test_every_role_has_known_scopes_and_the_old_role_names_still_exist() -> None:
    assert set(ROLE_SCOPES) == set(ROLES)
    assert {"viewer", "agent", "manager", "admin", "reporter", "oncall"} == set(ROLES)
    assert all(scopes <= set(SCOPES) for scopes in ROLE_SCOPES.values())
    assert ROLE_SCOPES["admin"] == frozenset(SCOPES)
    assert set(ACTING_ROLES) == {"agent", "oncall", "admin"}
    assert roles_with("alerts:write") == ("oncall", "admin")


def test_every_api_route_declares_the_scope_it_needs(ticket_app: TicketApp) -> None:
    routes = api_routes(ticket_app.app)
    assert len(routes) >= 8
    undeclared = [f"{m} {p}" for m, p, scopes in routes if not scopes]
    assert undeclared == [], "routes without require_scope (tickets.api.deps): " + ", ".join(undeclared)


@pytest.mark.parametrize("role", ["viewer", "reporter", "agent", "oncall", "manager", "admin"])
def test_each_role_is_refused_every_route_its_scopes_do_not_allow(
    client: TestClient, ticket_app: TicketApp, role: str
) -> None:
    """The matrix: for this role, every API operation is either refused with 403 (scope missing) or gets
    past authorisation (any answer but 401/403: a 404 for ticket 1, a 422 for the empty body...)."""
    refused, allowed = [], []
    for method, path, scopes in api_routes(ticket_app.app):
        url = re.sub(r"\{[^}]+\}", "1", path)
        response = client.request(method, url, json=body_for(method, path), headers=ticket_app.auth(role))
        if scopes & ROLE_SCOPES[role]:
            assert response.status_code not in (401, 403), f"{role} {method} {path}: {response.text}"
            allowed.append(f"{method} {path}")
        else:
            assert response.status_code == 403, f"{role} {method} {path} -> {response.status_code}"
            assert "scope" in response.json()["error"]["message"]
            refused.append(f"{method} {path}")
    if role == "admin":
        assert refused == []
    else:
        assert refused, f"{role} should be refused something"
    admin_only = "DELETE /api/v1/users/{username}/sessions"
    if role == "oncall":  # on-call may do everything short of administration
        assert refused == [admin_only]
    if role == "agent":
        # the intakes of other alerting tools (Alertmanager, PagerDuty's webhook) need alerts:write
        assert refused == ["POST /api/v1/alertmanager", admin_only, "POST /api/v1/pagerduty/webhook"]
    if role == "reporter":
        own = ("/reports", "/rating", "/api/v1/me")  # their reports, ratings and their own profile
        assert all(any(part in op for part in own) for op in allowed), allowed
        assert "GET /api/v1/tickets" in refused, "a reporter sees their reports, not the queue"


def test_write_routes_refuse_every_role_without_the_scope(client: TestClient, ticket_app: TicketApp) -> None:
    writes = [(m, p, s) for m, p, s in api_routes(ticket_app.app) if m in {"POST", "PUT", "PATCH", "DELETE"}]
    assert {"/api/v1/events", "/api/v1/alertmanager", "/api/v1/reports"} <= {p for _, p, _ in writes}
    checked = 0
    for method, path, scopes in writes:
        url = re.sub(r"\{[^}]+\}", "1", path)
        for role in ROLES:
            if not scopes & ROLE_SCOPES[role]:
                assert (
                    client.request(
                        method, url, json=body_for(method, path), headers=ticket_app.auth(role)
                    ).status_code
                    == 403
                )
                checked += 1
    assert checked >= 3 * len(writes) // 2


def test_a_token_can_do_only_what_its_scopes_and_its_role_allow(session: Session) -> None:
    user = create_user(session, "ops", "s3cure-pass", "oncall")
    narrow = create_token(session, user, "alertmanager", ["alerts:write"])
    full = create_token(session, user, "laptop")
    narrow_p, full_p = principal_for_token(session, narrow), principal_for_token(session, full)
    assert narrow_p is not None and narrow_p.scopes == {"alerts:write"}
    assert full_p is not None and full_p.scopes == ROLE_SCOPES["oncall"]
    with pytest.raises(ValueError, match="does not allow scope 'admin'"):
        create_token(session, user, "x", ["admin"])
    with pytest.raises(ValueError, match="unknown scope 'tickets:delete'"):
        create_token(session, user, "x", ["tickets:delete"])

    user.role = "viewer"  # demoted: its tokens narrow at once
    session.flush()
    full_p = principal_for_token(session, full)
    assert full_p is not None and full_p.scopes == ROLE_SCOPES["viewer"]
    narrow_p = principal_for_token(session, narrow)
    assert narrow_p is not None and narrow_p.scopes == frozenset()


def test_a_revoked_token_stops_working_at_once_over_http(client: TestClient, ticket_app: TicketApp) -> None:
    headers = ticket_app.auth("agent")
    assert client.get("/api/v1/tickets", headers=headers).status_code == 200
    with session_scope(ticket_app.factory) as session:
        prefix = ticket_app.tokens["agent"][:10]
        row = revoke_token(session, prefix)
        assert row.revoked_at is not None
    refused = client.get("/api/v1/tickets", headers=headers)
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]
    with session_scope(ticket_app.factory) as session:
        user = session.scalars(select(User).where(User.username == "viewer")).one()
        user.active = False
    assert client.get("/api/v1/tickets", headers=ticket_app.auth("viewer")).status_code == 401


def test_tokens_are_found_for_revocation_by_id_or_unique_prefix(session: Session) -> None:
    user = create_user(session, "ci", "s3cure-pass", "agent")
    create_token(session, user, "one")
    create_token(session, user, "two")
    first, second = session.scalars(select(ApiToken).order_by(ApiToken.id)).all()
    assert revoke_token(session, str(second.id)) is second
    assert revoke_token(session, first.prefix) is first
    first.prefix, second.prefix = "hc_shared001", "hc_shared002"
    session.flush()
    with pytest.raises(ValueError, match="several tokens"):
        revoke_token(session, "hc_shared")
    with pytest.raises(ValueError, match="no API token with id 999"):
        revoke_token(session, "999")
    with pytest.raises(ValueError, match="at least 6 characters"):
        revoke_token(session, "hc_")


def _legacy_scrypt(password: str) -> str:
    """A hash as the previous version stored it (scrypt, N=2**14, r=8, p=1)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=64, maxmem=64 * 1024 * 1024
    )
    return f"scrypt$16384$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def test_a_legacy_scrypt_password_still_logs_in_and_is_upgraded_to_argon2(session: Session) -> None:
    user = create_user(session, "old", "s3cure-pass", "agent")
    user.password_hash = _legacy_scrypt("s3cure-pass")
    session.flush()
    assert authenticate(session, "old", "wrong-pass") is None
    assert user.password_hash.startswith("scrypt$"), "a failed login changes nothing"
    assert authenticate(session, "old", "s3cure-pass") is user
    assert user.password_hash.startswith("$argon2id$")
    assert verify_password("s3cure-pass", user.password_hash)
    assert authenticate(session, "old", "s3cure-pass") is user


def test_errors_never_show_a_traceback(client: TestClient, ticket_app: TicketApp) -> None:
    bodies: list[Any] = [
        client.post("/api/v1/events", content=b"\xff\xfe", headers=ticket_app.auth("agent")),
        client.post("/api/v1/reports", data={"title": "x"}, headers=ticket_app.auth("reporter")),
    ]
    for response in bodies:
        assert 400 <= response.status_code < 500
        assert "Traceback" not in response.text and "error" in response.json()


def test_bodies_over_the_default_limit_are_a_413(client: TestClient, ticket_app: TicketApp) -> None:
    headers = {**ticket_app.auth("agent"), "Content-Type": "application/json"}
    big = b'{"summary": "' + b"x" * (1024 * 1024) + b'"}'
    response = client.post("/api/v1/events", content=big, headers=headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
