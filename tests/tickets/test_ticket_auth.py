"""Users, argon2 passwords and API tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets.auth import (
    LAST_USED_RESOLUTION,
    ROLE_SCOPES,
    TokenAccess,
    authenticate,
    create_token,
    create_user,
    hash_password,
    plausible_token,
    revoke_token,
    session_access,
    session_uid,
    token_access,
    user_for_token,
    verify_password,
)
from tickets.models import ApiToken


def test_passwords_are_salted_argon2id_hashes() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second, "a fresh salt each time"
    assert first.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert "correct horse" not in first
    assert verify_password("correct horse", first)
    assert not verify_password("correct hors", first)
    assert not verify_password("correct horse", "md5$abc")
    assert not verify_password("correct horse", "scrypt$x$y$z$!!$!!")
    assert not verify_password("correct horse", "$argon2id$v=19$garbage")


def test_a_created_user_logs_in_with_the_right_password_only(session: Session) -> None:
    user = create_user(session, "alice", "s3cure-pass", "agent", display_name="Alice Agent")
    assert (user.username, user.role, user.display_name, user.active) == (
        "alice",
        "agent",
        "Alice Agent",
        True,
    )
    assert authenticate(session, "alice", "s3cure-pass") is user
    assert authenticate(session, "alice", "wrong-pass") is None
    assert authenticate(session, "nobody", "s3cure-pass") is None
    user.active = False
    assert authenticate(session, "alice", "s3cure-pass") is None


@pytest.mark.parametrize(
    ("username", "password", "role", "message"),
    [
        (
            "bob",
            "long-enough",
            "superuser",
            "role 'superuser' is not one of viewer, reporter, agent, oncall, manager, admin",
        ),
        ("bob", "short", "agent", "at least 8 characters"),
        ("", "long-enough", "agent", "username '' is not valid"),
        ("bob smith", "long-enough", "agent", "is not valid"),
    ],
)
def test_bad_users_are_refused_with_the_reason(
    session: Session, username: str, password: str, role: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        create_user(session, username, password, role)


def test_a_taken_username_is_refused(session: Session) -> None:
    create_user(session, "alice", "s3cure-pass", "agent")
    with pytest.raises(ValueError, match="user 'alice' already exists"):
        create_user(session, "alice", "other-pass", "viewer")


def test_tokens_are_shown_once_and_stored_as_a_hash(session: Session) -> None:
    user = create_user(session, "ci", "s3cure-pass", "agent")
    token = create_token(session, user, "pipeline")

    row = session.scalars(select(ApiToken)).one()
    assert token.startswith("hc_") and len(token) > 40
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.prefix == token[:12]
    assert token not in (row.token_hash, row.prefix, row.name)
    assert row.last_used_at is None

    used = datetime(2026, 11, 23, 10, tzinfo=UTC)
    assert user_for_token(session, token, now=lambda: used) is user
    assert row.last_used_at == used


def test_unknown_revoked_and_inactive_tokens_are_refused(session: Session) -> None:
    user = create_user(session, "ci", "s3cure-pass", "agent")
    token = create_token(session, user, "pipeline")
    assert user_for_token(session, "hc_not-a-token") is None
    assert user_for_token(session, "Bearer " + token) is None
    user.active = False
    assert user_for_token(session, token) is None
    user.active = True
    revoke_token(session, session.scalars(select(ApiToken.id)).one())
    assert user_for_token(session, token) is None


NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_a_token_is_let_in_only_unrevoked_with_an_active_user_and_scopes_within_the_role() -> None:
    def access(**facts: object) -> TokenAccess | None:
        given: dict[str, Any] = {
            "revoked_at": None,
            "active": True,
            "role": "agent",
            "scopes": "tickets:read events:write",
            "last_used_at": NOW,
            "now": NOW,
        }
        return token_access(**{**given, **facts})

    assert access() == TokenAccess(frozenset({"tickets:read", "events:write"}), record_use=False)
    assert access(revoked_at=NOW - timedelta(days=1)) is None
    assert access(active=False) is None
    demoted = access(role="viewer")  # demoting the user narrows the token at once
    assert demoted is not None and demoted.scopes == frozenset({"tickets:read"})
    defaults = access(scopes=None)  # a token from before scopes: its role's defaults
    assert defaults is not None and defaults.scopes == ROLE_SCOPES["agent"]
    unknown_role = access(role="intern")
    assert unknown_role is not None and unknown_role.scopes == frozenset()


def test_a_token_use_is_due_to_be_recorded_once_a_minute() -> None:
    def due(last_used_at: datetime | None) -> bool:
        found = token_access(
            revoked_at=None, active=True, role="agent", scopes=None, last_used_at=last_used_at, now=NOW
        )
        assert found is not None
        return found.record_use

    assert due(None)
    assert not due(NOW - LAST_USED_RESOLUTION + timedelta(seconds=1))
    assert due(NOW - LAST_USED_RESOLUTION)


def test_a_login_session_lets_in_an_active_user_with_their_roles_scopes() -> None:
    assert session_access(active=True, role="viewer") == ROLE_SCOPES["viewer"]
    assert session_access(active=False, role="admin") is None
    assert session_uid(7) == 7
    for value in (None, "7", True, 0, -1, 2**31, 7.0):
        assert session_uid(value) is None, value
    assert plausible_token("hc_" + "x" * 40)
    assert not plausible_token("Bearer hc_x") and not plausible_token("hc_" + "x" * 300)
