"""``hypercare oncall``: who is on call now or at a time, and the overrides (someone covers from..to)."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from core.errors import HypercareError
from hypercare.commands.common import JsonOption, console, print_json, state

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from sqlalchemy.orm import Session

oncall_app = typer.Typer(no_args_is_help=True, help="On-call rotations and overrides.")
override_app = typer.Typer(no_args_is_help=True, help="Someone covers a rotation from..to.")
oncall_app.add_typer(override_app, name="override")
TimeHelp = "YYYY-MM-DDTHH:MM in the site's zone (oncall.timezone), or ISO-8601 with a zone"


@contextmanager
def _session() -> Iterator[Session]:
    from core.schema import require_current_schema
    from core.session import make_engine, session_factory, session_scope

    engine = make_engine(state.settings().store_url)
    try:
        require_current_schema(engine)
        with session_scope(session_factory(engine)) as session:
            yield session
    except (ValueError, LookupError) as exc:
        raise HypercareError(str(exc)) from None
    finally:
        engine.dispose()


def _time(value: str, name: str, tz: ZoneInfo) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise HypercareError(f"{name}: {value!r} is not a time ({TimeHelp})") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def _local(value: datetime, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


@oncall_app.command("now")
def now(
    at: Annotated[str | None, typer.Option("--at", help=f"Who is on call at this time ({TimeHelp}).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Who is on call in each rotation now (or --at a time), until when, who is next, and the manager."""
    from core.db import utcnow
    from tickets import oncall

    settings = state.settings()
    tz = oncall.zone(settings)
    when = utcnow() if at is None else _time(at, "--at", tz)
    with _session() as session:
        rows = oncall.everyone(session, settings, when)
    if as_json:
        print_json(
            [
                {
                    "rotation": r.rotation,
                    "queues": list(r.queues),
                    "username": r.username,
                    "source": r.source,
                    "since": r.since,
                    "until": r.until,
                    "secondary": r.secondary,
                    "manager": r.manager,
                    "override_id": r.override_id,
                }
                for r in rows
            ]
        )
        return
    if not rows:
        console.print("no rotation is configured (oncall.rotations)")
        return
    table = Table(
        "rotation",
        "queues",
        "on call",
        "until",
        "secondary",
        "manager",
        title=f"On call at {_local(when, tz)}",
    )
    for r in rows:
        who = r.username + (f" (override {r.override_id})" if r.override_id else "")
        queues = ", ".join(r.queues) or "(every other queue)"
        table.add_row(r.rotation, queues, who, _local(r.until, tz), r.secondary or "-", r.manager or "-")
    console.print(table)


@override_app.command("add")
def override_add(
    rotation: str,
    username: str,
    start: Annotated[str, typer.Option("--from", help=f"When the cover starts ({TimeHelp}).")],
    until: Annotated[str, typer.Option("--until", help=f"When it ends ({TimeHelp}).")],
    reason: Annotated[str, typer.Option("--reason", help="Who asked, and why.")],
) -> None:
    """USERNAME covers ROTATION from --from to --until (recorded as a security event)."""
    from core.db import utcnow
    from tickets import oncall

    settings = state.settings()
    tz = oncall.zone(settings)
    with _session() as session:
        row = oncall.add_override(
            session,
            settings,
            rotation_name=rotation,
            username=username,
            starts_at=_time(start, "--from", tz),
            ends_at=_time(until, "--until", tz),
            reason=reason,
            actor=f"cli:{getpass.getuser()}",
            now=utcnow(),
        )
        console.print(
            f"override {row.id}: {username} covers {rotation} from {_local(row.starts_at, tz)} "
            f"until {_local(row.ends_at, tz)}"
        )


@override_app.command("list")
def override_list(
    rotation: Annotated[str | None, typer.Option("--rotation")] = None, as_json: JsonOption = False
) -> None:
    """The overrides not over yet."""
    from core.db import utcnow
    from tickets import oncall

    settings = state.settings()
    tz = oncall.zone(settings)
    with _session() as session:
        rows: list[dict[str, Any]] = [
            {
                "id": r.id,
                "rotation": r.rotation,
                "username": r.username,
                "starts_at": r.starts_at,
                "ends_at": r.ends_at,
                "reason": r.reason,
                "created_by": r.created_by,
            }
            for r in oncall.overrides(session, now=utcnow(), rotation_name=rotation)
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "rotation", "who covers", "from", "until", "reason", "by")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["rotation"],
            r["username"],
            _local(r["starts_at"], tz),
            _local(r["ends_at"], tz),
            r["reason"],
            r["created_by"],
        )
    console.print(table)


@override_app.command("end")
def override_end(override_id: int) -> None:
    """End an override now (it stays on record)."""
    from core.db import utcnow
    from tickets import oncall

    with _session() as session:
        row = oncall.end_override(session, override_id, actor=f"cli:{getpass.getuser()}", now=utcnow())
        console.print(f"override {row.id} ({row.username} on {row.rotation}) ended")
