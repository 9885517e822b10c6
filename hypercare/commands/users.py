"""`hypercare users ...` and `hypercare tokens ...`: users, roles, login sessions and API tokens, for
administrators and scripts. Passwords never appear in logs; a token is printed once, alone on the last line
of the output."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, TypedDict

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from core.errors import HypercareError
from hypercare.commands.common import JsonOption, console, print_json, state

users_app = typer.Typer(no_args_is_help=True, help="Users and their roles.")
tokens_app = typer.Typer(no_args_is_help=True, help="API tokens (bearer, scoped, expiring, revocable).")
sessions_app = typer.Typer(no_args_is_help=True, help="Login sessions of the web UI.")
users_app.add_typer(sessions_app, name="sessions")
ROLE_HELP = "viewer | reporter | agent | oncall | manager | admin"


@contextmanager
def _session() -> Iterator[Session]:
    """A committed-on-success session on the configured store; a ValueError becomes a clean CLI error."""
    from core.schema import require_current_schema
    from core.session import make_engine, session_factory, session_scope

    engine = make_engine(state.settings().store_url)
    try:
        require_current_schema(engine)
        with session_scope(session_factory(engine)) as session:
            yield session
    except ValueError as exc:
        raise HypercareError(str(exc)) from None
    finally:
        engine.dispose()


def _read_password(password: str | None, password_stdin: bool) -> str:
    if password is not None and password_stdin:
        raise HypercareError("give --password or --password-stdin, not both")
    if password is not None:
        return password
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat: ") != first:
        raise HypercareError("the passwords differ")
    return first


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if at else "-"


class UserRow(TypedDict):
    """One user of `users list --json` (the keys are the output's contract)."""

    id: int
    username: str
    display_name: str
    role: str
    active: bool
    tokens: int
    """Live (unrevoked) tokens."""
    created_at: datetime
    language: str | None
    """The UI language the user chose (en, zh_CN, zh_TW); null: the browser's, else the site's."""
    timezone: str | None
    """The time zone the user chose; null: the site's."""


class TokenRow(TypedDict):
    """One token of `tokens list --json` (the keys are the output's contract; never the token itself)."""

    id: int
    prefix: str
    user: str
    name: str
    scopes: list[str]
    """What the token may do now: its scopes within its user's role."""
    created_at: datetime
    expires_at: datetime | None
    """None: never expires."""
    last_used_at: datetime | None
    revoked_at: datetime | None
    state: str
    """active | revoked | expired | user disabled"""


class EventRow(TypedDict):
    """One security event of `users events --json` (the keys are the output's contract)."""

    at: datetime
    actor: str
    action: str
    subject: str
    address: str | None
    detail: dict[str, Any]


# --- users -------------------------------------------------------------------------------------------


LANGUAGE_HELP = "UI and message language: en, zh_CN (简体中文) or zh_TW (繁體中文); default: the browser's."
TIMEZONE_HELP = "IANA time zone times are shown in, such as Asia/Shanghai; default: the site's."


@users_app.command("add")
def users_add(  # noqa: PLR0917  (typer options)
    username: str,
    role: Annotated[str, typer.Option(help=ROLE_HELP)] = "agent",
    password: Annotated[
        str | None, typer.Option(help="The password (visible to other local users: prefer stdin).")
    ] = None,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
    display_name: Annotated[str, typer.Option(help="The name shown in the UI.")] = "",
    language: Annotated[str | None, typer.Option(help=LANGUAGE_HELP)] = None,
    timezone: Annotated[str | None, typer.Option(help=TIMEZONE_HELP)] = None,
) -> None:
    """Add a user; the password comes from --password, --password-stdin or a prompt."""
    from tickets.auth import check_role, create_user
    from tickets.profile import clean_language, clean_timezone, update_profile

    try:
        check_role(role)
        lang, zone = clean_language(language), clean_timezone(timezone)
    except ValueError as exc:
        raise HypercareError(str(exc)) from None
    secret = _read_password(password, password_stdin)
    with _session() as session:
        user = create_user(session, username, secret, role, display_name=display_name)
        update_profile(session, user, language=lang, timezone=zone)
    console.print(f"user {username} ({role}) created", highlight=False)


@users_app.command("profile")
def users_profile(
    username: str,
    language: Annotated[str | None, typer.Option(help=LANGUAGE_HELP + ' "" clears it.')] = None,
    timezone: Annotated[str | None, typer.Option(help=TIMEZONE_HELP + ' "" clears it.')] = None,
) -> None:
    """Show or set a user's language and time zone (what the profile page sets)."""
    from sqlalchemy import select

    from tickets.models import User
    from tickets.profile import UNSET, update_profile

    with _session() as session:  # a ValueError (unknown language or zone) is a clean CLI error
        user = session.scalars(select(User).where(User.username == username)).first()
        if user is None:
            raise HypercareError(f"no user named {username!r}")
        lang, zone = (UNSET if value is None else value for value in (language, timezone))
        update_profile(session, user, language=lang, timezone=zone)
        shown = f"language {user.language or '(browser, else site)'}, time zone {user.timezone or '(site)'}"
    console.print(f"user {username}: {shown}", highlight=False)


users_app.command("create", help="Alias of `users add`.")(users_add)


@users_app.command("list")
def users_list(as_json: JsonOption = False) -> None:
    """Users with their role, state and number of live tokens."""
    from tickets.auth import list_tokens, list_users

    with _session() as session:
        live: dict[int, int] = {}
        for row in list_tokens(session):
            if row.revoked_at is None:
                live[row.user_id] = live.get(row.user_id, 0) + 1
        users = [
            UserRow(
                id=user.id,
                username=user.username,
                display_name=user.display_name,
                role=user.role,
                active=user.active,
                tokens=live.get(user.id, 0),
                created_at=user.created_at,
                language=user.language,
                timezone=user.timezone,
            )
            for user in list_users(session)
        ]
    if as_json:
        print_json(users)
        return
    table = Table("user", "role", "active", "tokens", "created", "display name")
    for u in users:
        table.add_row(
            u["username"],
            u["role"],
            "yes" if u["active"] else "no",
            str(u["tokens"]),
            _when(u["created_at"]),
            u["display_name"],
        )
    console.print(table)


@users_app.command("set-role")
def users_set_role(username: str, role: Annotated[str, typer.Argument(help=ROLE_HELP)]) -> None:
    """Change a user's role; their login sessions are revoked (their tokens narrow to the role at once)."""
    from tickets.auth import set_role

    with _session() as session:
        set_role(session, username, role)
    console.print(f"user {username} is now {role}; their login sessions were revoked", highlight=False)


@users_app.command("passwd")
def users_passwd(
    username: str,
    password: Annotated[
        str | None, typer.Option(help="The password (visible to other local users: prefer stdin).")
    ] = None,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
) -> None:
    """Set a user's password; their login sessions are revoked (their API tokens are not: rotate them)."""
    from tickets.auth import get_user, set_password

    secret = _read_password(password, password_stdin)
    with _session() as session:
        set_password(session, get_user(session, username), secret)
    console.print(f"password of {username} changed; their login sessions were revoked", highlight=False)


@sessions_app.command("revoke")
def sessions_revoke(username: str) -> None:
    """End every login session of a user at once (they log in again; their tokens are unaffected)."""
    from core.db import utcnow
    from tickets.auth import get_user
    from tickets.sessions import revoke_user_sessions

    with _session() as session:
        count = revoke_user_sessions(
            session, get_user(session, username), reason="revoked by admin", actor="cli", now=utcnow()
        )
    console.print(f"{count} login session(s) of {username} revoked", highlight=False)


@sessions_app.command("list")
def sessions_list(username: str) -> None:
    """A user's live login sessions: opened, last seen, expires, from where (never the session id)."""
    from core.db import utcnow
    from tickets.auth import get_user
    from tickets.sessions import live_sessions

    with _session() as session:
        rows = [
            (str(s.id), _when(s.created_at), _when(s.last_seen_at), _when(s.expires_at), s.address or "-")
            for s in live_sessions(session, get_user(session, username), utcnow())
        ]
    table = Table("id", "opened", "last seen", "expires", "address")
    for row in rows:
        table.add_row(*row)
    console.print(table)


@users_app.command("events")
def users_events(
    action: Annotated[
        str | None,
        typer.Option(
            help="Only this kind: login_locked, sessions_revoked, token_rotated, silence_created, "
            "silence_expired."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Security events, newest first: lockouts, sessions revoked, tokens rotated, silences."""
    from tickets.security_log import events

    with _session() as session:
        rows = [
            EventRow(
                at=e.at,
                actor=e.actor,
                action=e.action,
                subject=e.subject,
                address=e.address,
                detail=dict(e.detail),
            )
            for e in events(session, action, limit)
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("at", "actor", "action", "subject", "address", "detail")
    for r in rows:
        detail = ", ".join(f"{k}={v}" for k, v in sorted(r["detail"].items()))
        table.add_row(_when(r["at"]), r["actor"], r["action"], r["subject"], r["address"] or "-", detail)
    console.print(table)


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable a user: no login, their sessions are revoked and their tokens stop working."""
    from tickets.auth import disable_user

    with _session() as session:
        disable_user(session, username)
    console.print(f"user {username} disabled", highlight=False)


# --- tokens ------------------------------------------------------------------------------------------


@tokens_app.command("create")
def tokens_create(
    user: Annotated[str, typer.Option("--user", help="The user the token acts as.")],
    name: Annotated[str, typer.Option("--name", help="What the token is for (a label).")] = "cli",
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="A scope (repeatable); default: all of the user's role."),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            help="Lifetime: 90d, 12h, 2w, or 'never' (not for a token with the admin scope). "
            "Default: security.token_default_days (90).",
        ),
    ] = None,
) -> None:
    """Create an API token. It is printed alone on the last line and never shown again."""
    from datetime import timedelta

    from tickets.auth import create_token, get_user, list_tokens, parse_lifetime

    try:
        lifetime = (
            timedelta(days=state.settings().security.token_default_days)
            if expires is None
            else parse_lifetime(expires)
        )
    except ValueError as exc:
        raise HypercareError(str(exc)) from None
    with _session() as session:
        owner = get_user(session, user)
        if not owner.active:
            raise ValueError(f"user {user!r} is disabled")
        token = create_token(session, owner, name, scope or None, expires=lifetime)
        row = list_tokens(session, user)[-1]
        until = "never expires" if row.expires_at is None else f"expires {_when(row.expires_at)} UTC"
        summary = f"token {row.id} ({row.prefix}...) for {user}, scopes: {row.scopes}, {until}; shown once:"
    console.print(summary, highlight=False, soft_wrap=True)
    typer.echo(token)


@users_app.command("token", help="Alias of `tokens create --user USERNAME`.")
def users_token(
    username: str, name: Annotated[str, typer.Option(help="What the token is for.")] = "cli"
) -> None:
    tokens_create(user=username, name=name, scope=None, expires=None)


@tokens_app.command("revoke")
def tokens_revoke(
    ref: Annotated[str, typer.Argument(help="The token's id or prefix (from `tokens list`).")],
) -> None:
    """Revoke a token; it stops working at once."""
    from tickets.auth import revoke_token

    with _session() as session:
        row = revoke_token(session, ref)
        message = f"token {row.id} ({row.prefix}..., {row.name}) revoked"
    console.print(message, highlight=False)


@tokens_app.command("rotate")
def tokens_rotate(
    ref: Annotated[str, typer.Argument(help="The token's id or prefix (from `tokens list`).")],
) -> None:
    """Issue a new secret for a token (same user, name, scopes and lifetime) and revoke the old one at
    once. The new token is printed alone on the last line and never shown again."""
    from tickets.auth import rotate_token

    with _session() as session:
        row, token = rotate_token(session, ref)
        until = "never expires" if row.expires_at is None else f"expires {_when(row.expires_at)} UTC"
        summary = f"token {row.id} ({row.prefix}...) replaces the revoked one, {until}; shown once:"
    console.print(summary, highlight=False, soft_wrap=True)
    typer.echo(token)


@tokens_app.command("list")
def tokens_list(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Tokens with their user, scopes, created, expires, last use and state (never the token itself)."""
    from core.db import utcnow
    from tickets.auth import list_tokens, token_scopes

    now = utcnow()

    def state_of(revoked: datetime | None, expires: datetime | None, active: bool) -> str:
        if revoked is not None:
            return "revoked"
        if expires is not None and expires <= now:
            return "expired"
        return "active" if active else "user disabled"

    with _session() as session:
        tokens = [
            TokenRow(
                id=row.id,
                prefix=row.prefix,
                user=row.user.username,
                name=row.name,
                scopes=sorted(token_scopes(row)),
                created_at=row.created_at,
                expires_at=row.expires_at,
                last_used_at=row.last_used_at,
                revoked_at=row.revoked_at,
                state=state_of(row.revoked_at, row.expires_at, row.user.active),
            )
            for row in list_tokens(session, user)
        ]
    if as_json:
        print_json(tokens)
        return
    table = Table(
        "id", "prefix", "user", "name", "scopes", "created", "expires", "last used", "revoked", "state"
    )
    for t in tokens:
        table.add_row(
            str(t["id"]),
            t["prefix"],
            t["user"],
            t["name"],
            " ".join(t["scopes"]),
            _when(t["created_at"]),
            _when(t["expires_at"]) if t["expires_at"] else "never",
            _when(t["last_used_at"]),
            _when(t["revoked_at"]),
            t["state"],
        )
    console.print(table)
