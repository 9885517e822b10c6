"""`hypercare users ...` and `hypercare tokens ...`: users, roles and API tokens, for administrators and
scripts. Passwords never appear in logs; a token is printed once, alone on the last line of the output."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, TypedDict

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from core.errors import HypercareError
from hypercare.commands.common import JsonOption, console, print_json, state

users_app = typer.Typer(no_args_is_help=True, help="Users and their roles.")
tokens_app = typer.Typer(no_args_is_help=True, help="API tokens (bearer, scoped, revocable).")
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


class TokenRow(TypedDict):
    """One token of `tokens list --json` (the keys are the output's contract; never the token itself)."""

    id: int
    prefix: str
    user: str
    name: str
    scopes: list[str]
    """What the token may do now: its scopes within its user's role."""
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    state: str
    """active | revoked | user disabled"""


# --- users -------------------------------------------------------------------------------------------


@users_app.command("add")
def users_add(
    username: str,
    role: Annotated[str, typer.Option(help=ROLE_HELP)] = "agent",
    password: Annotated[
        str | None, typer.Option(help="The password (visible to other local users: prefer stdin).")
    ] = None,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
    display_name: Annotated[str, typer.Option(help="The name shown in the UI.")] = "",
) -> None:
    """Add a user; the password comes from --password, --password-stdin or a prompt."""
    from tickets.auth import check_role, create_user

    try:
        check_role(role)
    except ValueError as exc:
        raise HypercareError(str(exc)) from None
    secret = _read_password(password, password_stdin)
    with _session() as session:
        create_user(session, username, secret, role, display_name=display_name)
    console.print(f"user {username} ({role}) created", highlight=False)


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


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable a user: no login, and their tokens stop working."""
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
) -> None:
    """Create an API token. It is printed alone on the last line and never shown again."""
    from tickets.auth import create_token, get_user, list_tokens

    with _session() as session:
        owner = get_user(session, user)
        if not owner.active:
            raise ValueError(f"user {user!r} is disabled")
        token = create_token(session, owner, name, scope or None)
        row = list_tokens(session, user)[-1]
        summary = f"token {row.id} ({row.prefix}...) for {user}, scopes: {row.scopes}; shown once:"
    console.print(summary, highlight=False, soft_wrap=True)
    typer.echo(token)


@users_app.command("token", help="Alias of `tokens create --user USERNAME`.")
def users_token(
    username: str, name: Annotated[str, typer.Option(help="What the token is for.")] = "cli"
) -> None:
    tokens_create(user=username, name=name, scope=None)


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


@tokens_app.command("list")
def tokens_list(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Tokens with their user, scopes, last use and state (never the token itself)."""
    from tickets.auth import list_tokens, token_scopes

    with _session() as session:
        tokens = [
            TokenRow(
                id=row.id,
                prefix=row.prefix,
                user=row.user.username,
                name=row.name,
                scopes=sorted(token_scopes(row)),
                created_at=row.created_at,
                last_used_at=row.last_used_at,
                revoked_at=row.revoked_at,
                state="revoked" if row.revoked_at else ("user disabled" if not row.user.active else "active"),
            )
            for row in list_tokens(session, user)
        ]
    if as_json:
        print_json(tokens)
        return
    table = Table("id", "prefix", "user", "name", "scopes", "created", "last used", "state")
    for t in tokens:
        table.add_row(
            str(t["id"]),
            t["prefix"],
            t["user"],
            t["name"],
            " ".join(t["scopes"]),
            _when(t["created_at"]),
            _when(t["last_used_at"]),
            t["state"],
        )
    console.print(table)
