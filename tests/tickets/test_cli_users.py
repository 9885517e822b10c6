"""`hypercare users ...` and `hypercare tokens ...` as an administrator or a script meets them: a real
process on a migrated SQLite store, its exit status and output, and the store it leaves."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db import utcnow
from core.session import make_engine, session_factory
from tests.cli import run_hypercare
from tickets import sessions
from tickets.auth import ROLE_SCOPES, authenticate, principal_for_token, user_for_session
from tickets.models import ApiToken, User


class Cli:
    def __init__(self, tmp_path: Path) -> None:
        self.cwd = tmp_path
        self.env = {"HYPERCARE_DATA_DIR": str(tmp_path / "data")}
        self.url = f"sqlite:///{tmp_path / 'data' / 'hypercare.db'}"

    def __call__(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return run_hypercare(*args, cwd=self.cwd, env=self.env, stdin=stdin)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    runner = Cli(tmp_path)
    assert runner("db", "upgrade").returncode == 0
    return runner


def test_users_are_added_listed_and_disabled(cli: Cli) -> None:
    assert cli("users", "add", "alice", "--role", "oncall", "--password", "alice-pass-1").returncode == 0
    made = cli("users", "add", "bob", "--role", "reporter", "--password-stdin", stdin="bob-pass-12\n")
    assert made.returncode == 0 and "user bob (reporter) created" in made.stdout
    prompted = cli("users", "add", "carol", "--role", "viewer", stdin="carol-pass-1\ncarol-pass-1\n")
    assert prompted.returncode == 0, prompted.stderr

    bad_role = cli("users", "add", "dave", "--role", "root", "--password", "whatever-123")
    assert bad_role.returncode == 1 and "role 'root' is not one of viewer, reporter" in bad_role.stderr
    short = cli("users", "add", "dave", "--password", "short")
    assert short.returncode == 1 and "at least 8 characters" in short.stderr
    assert "short" not in short.stdout

    listing = cli("users", "list")
    rows = {line.split("│")[1].strip(): line for line in listing.stdout.splitlines() if line.count("│") > 3}
    assert set(rows) == {"alice", "bob", "carol"}
    assert "oncall" in rows["alice"] and "reporter" in rows["bob"]

    assert cli("users", "disable", "bob").returncode == 0
    assert cli("users", "disable", "nobody").returncode == 1
    engine = make_engine(cli.url)
    with session_factory(engine)() as session:
        assert session.scalars(select(User.active).where(User.username == "bob")).one() is False
        assert authenticate(session, "bob", "bob-pass-12") is None
        assert authenticate(session, "carol", "carol-pass-1") is not None
        assert all("pass" not in u.password_hash for u in session.scalars(select(User)))
    engine.dispose()


def test_a_token_is_printed_once_on_its_last_line_scoped_listed_and_revoked(cli: Cli) -> None:
    cli("users", "add", "am", "--role", "oncall", "--password", "am-pass-123")
    made = cli("tokens", "create", "--user", "am", "--name", "alertmanager", "--scope", "alerts:write")
    assert made.returncode == 0, made.stderr
    token = made.stdout.rstrip("\n").splitlines()[-1]
    assert token.startswith("hc_") and " " not in token and len(token) > 40
    full = cli("tokens", "create", "--user", "am", "--name", "laptop").stdout.splitlines()[-1]

    engine = make_engine(cli.url)
    factory = session_factory(engine)
    with factory() as session:
        narrow = principal_for_token(session, token)
        assert narrow is not None and narrow.scopes == {"alerts:write"}
        wide = principal_for_token(session, full)
        assert wide is not None and wide.scopes == ROLE_SCOPES["oncall"]
        session.commit()

    listing = cli("tokens", "list")
    assert listing.returncode == 0
    assert token not in listing.stdout and token[:12] in listing.stdout
    assert "alertmanager" in listing.stdout and "alerts:write" in listing.stdout

    refused = cli("tokens", "create", "--user", "am", "--name", "x", "--scope", "admin")
    assert refused.returncode == 1 and "does not allow scope 'admin'" in refused.stderr
    nobody = cli("tokens", "create", "--user", "ghost", "--name", "x")
    assert nobody.returncode == 1 and "no user named 'ghost'" in nobody.stderr

    revoked = cli("tokens", "revoke", token[:10])
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert cli("tokens", "revoke", "4242").returncode == 1
    with factory() as session:
        assert principal_for_token(session, token) is None
        assert principal_for_token(session, full) is not None
    assert "revoked" in cli("tokens", "list", "--user", "am").stdout
    engine.dispose()


def test_users_and_tokens_list_json_for_scripts(cli: Cli) -> None:
    cli(
        "users",
        "add",
        "am",
        "--role",
        "oncall",
        "--password",
        "am-pass-123",
        "--display-name",
        "Alertmanager",
    )
    cli("users", "add", "zoe", "--role", "viewer", "--password", "zoe-pass-123")
    token = cli("tokens", "create", "--user", "am", "--name", "alertmanager", "--scope", "alerts:write")
    cli("tokens", "create", "--user", "zoe", "--name", "laptop")
    cli("tokens", "revoke", token.stdout.splitlines()[-1][:12])

    users = cli("users", "list", "--json")
    assert users.returncode == 0, users.stderr
    listed = json.loads(users.stdout)  # stdout is only the JSON
    assert [u["username"] for u in listed] == ["am", "zoe"]
    am = listed[0]
    assert set(am) == {
        "id",
        "username",
        "display_name",
        "role",
        "active",
        "tokens",
        "created_at",
        "language",
        "timezone",
    }
    assert (am["role"], am["active"], am["tokens"], am["display_name"]) == ("oncall", True, 0, "Alertmanager")
    assert listed[1]["tokens"] == 1
    assert datetime.fromisoformat(am["created_at"]).utcoffset() == timedelta(0)

    tokens = cli("tokens", "list", "--json")
    assert tokens.returncode == 0, tokens.stderr
    rows = json.loads(tokens.stdout)
    assert [(t["user"], t["name"], t["state"]) for t in rows] == [
        ("am", "alertmanager", "revoked"),
        ("zoe", "laptop", "active"),
    ]
    assert set(rows[0]) == {
        "id", "prefix", "user", "name", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at",
        "state",
    }  # fmt: skip
    assert rows[0]["scopes"] == ["alerts:write"] and rows[1]["scopes"] == sorted(ROLE_SCOPES["viewer"])
    assert datetime.fromisoformat(rows[0]["revoked_at"]).tzinfo is not None
    assert rows[1]["revoked_at"] is None and rows[1]["last_used_at"] is None
    assert token.stdout.splitlines()[-1] not in tokens.stdout
    only = json.loads(cli("tokens", "list", "--user", "zoe", "--json").stdout)
    assert [t["name"] for t in only] == ["laptop"]
    assert cli("tokens", "list", "--user", "ghost", "--json").returncode == 1  # as the table form


def test_tokens_expire_by_default_and_rotate(cli: Cli) -> None:
    cli("users", "add", "am", "--role", "oncall", "--password", "am-pass-123")
    cli("users", "add", "root", "--role", "admin", "--password", "root-pass-123")
    default = cli("tokens", "create", "--user", "am", "--name", "laptop")
    assert default.returncode == 0 and "expires 20" in default.stdout
    short = cli("tokens", "create", "--user", "am", "--name", "ci", "--expires", "12h")
    never = cli("tokens", "create", "--user", "am", "--name", "alertmanager", "--expires", "never")
    assert never.returncode == 0 and "never expires" in never.stdout
    admin_never = cli("tokens", "create", "--user", "root", "--expires", "never")
    assert admin_never.returncode == 1 and "'admin' scope must expire" in admin_never.stderr
    bad = cli("tokens", "create", "--user", "am", "--expires", "soon")
    assert bad.returncode == 1 and "give a duration such as 90d" in bad.stderr

    engine = make_engine(cli.url)
    factory = session_factory(engine)
    with factory() as session:
        made = {t.name: t for t in session.scalars(select(ApiToken))}
        lifetime = made["laptop"].expires_at - made["laptop"].created_at  # type: ignore[operator]
        assert lifetime == timedelta(days=90)
        assert made["ci"].expires_at - made["ci"].created_at == timedelta(hours=12)  # type: ignore[operator]
        assert made["alertmanager"].expires_at is None

    old = short.stdout.splitlines()[-1]
    rotated = cli("tokens", "rotate", old[:12])
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.splitlines()[-1]
    assert new.startswith("hc_") and new != old
    with factory() as session:
        assert principal_for_token(session, old) is None, "the old secret is revoked at once"
        fresh = principal_for_token(session, new)
        assert fresh is not None and fresh.user.username == "am"
        row = session.get(ApiToken, fresh.token_id)
        assert row is not None and row.name == "ci" and row.expires_at is not None
        assert row.expires_at - row.created_at == timedelta(hours=12)
        session.commit()
    listing = json.loads(cli("tokens", "list", "--json").stdout)
    states = {(t["name"], t["state"]) for t in listing}
    assert ("ci", "revoked") in states and ("ci", "active") in states
    assert all("expires_at" in t for t in listing)
    assert cli("tokens", "rotate", old[:12]).returncode == 1  # a revoked token is not rotated
    engine.dispose()


def test_role_and_password_changes_and_an_admin_revoke_login_sessions(cli: Cli) -> None:
    cli("users", "add", "alice", "--role", "agent", "--password", "alice-pass-1")
    engine = make_engine(cli.url)
    factory = session_factory(engine)

    def login() -> str:
        with factory() as session:
            user = session.scalars(select(User).where(User.username == "alice")).one()
            sid = sessions.start(session, user, now=utcnow(), max_age=timedelta(hours=12))
            session.commit()
            return sid

    def works(sid: str) -> bool:
        with factory() as session:
            return user_for_session(session, sid) is not None

    first = login()
    assert works(first)
    assert cli("users", "set-role", "alice", "oncall").returncode == 0
    assert not works(first), "a role change ends the sessions"
    second = login()
    changed = cli("users", "passwd", "alice", "--password-stdin", stdin="alice-pass-2\n")
    assert changed.returncode == 0, changed.stderr
    assert not works(second), "a password change ends the sessions"
    third = login()
    revoked = cli("users", "sessions", "revoke", "alice")
    assert revoked.returncode == 0 and "1 login session(s) of alice revoked" in revoked.stdout
    assert not works(third)
    with factory() as session:
        assert authenticate(session, "alice", "alice-pass-2") is not None
    engine.dispose()
    listed = cli("users", "events", "--action", "sessions_revoked", "--json")
    assert listed.returncode == 0, listed.stderr
    reasons = [e["detail"]["reason"] for e in json.loads(listed.stdout)]
    assert reasons == ["revoked by admin", "password changed", "role changed"]
    assert "sessions_revoked" in cli("users", "events").stdout
