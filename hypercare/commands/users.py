"""`hypercare users ...`: users and API tokens."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer

from hypercare.commands.common import console, state
from hypercare.errors import HypercareError

users_app = typer.Typer(no_args_is_help=True, help="Users and API tokens.")


# --- users -------------------------------------------------------------------------------------------


@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[str, typer.Option(help="admin | agent | manager | viewer")] = "agent",
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
) -> None:
    """Create a user (the password is asked for, never given on the command line)."""
    from hypercare.store import make_engine, require_current_schema, session_factory, session_scope
    from tickets.auth import create_user

    password = sys.stdin.readline().rstrip("\n") if password_stdin else getpass.getpass("Password: ")
    engine = make_engine(state.settings().store_url)
    require_current_schema(engine)
    try:
        with session_scope(session_factory(engine)) as session:
            create_user(session, username, password, role)
    except ValueError as exc:
        raise HypercareError(str(exc)) from None
    console.print(f"user {username} ({role}) created")


@users_app.command("token")
def users_token(
    username: str, name: Annotated[str, typer.Option(help="What the token is for.")] = "cli"
) -> None:
    """Create an API token for a user; it is shown once."""
    from sqlalchemy import select

    from hypercare.store import make_engine, require_current_schema, session_factory, session_scope
    from tickets.auth import create_token
    from tickets.models import User

    engine = make_engine(state.settings().store_url)
    require_current_schema(engine)
    with session_scope(session_factory(engine)) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise HypercareError(f"no user named {username!r}")
        token = create_token(session, user, name)
    console.print(token, soft_wrap=True)
