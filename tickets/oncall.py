"""Who is on call: rotations (``oncall.rotations``), overrides (someone covers from..to), and the people an
escalation level pages.

A rotation's members take turns of ``length_days``, handing off at ``handoff`` wall-clock time in the site's
zone (``oncall.timezone``, default ``sla.calendar.timezone``): turn k starts at ``start + k*length_days`` at
``handoff`` local time, so a daylight-saving change moves no hand-off. ``members[k % n]`` is on call during
turn k, ``members[(k+1) % n]`` is the secondary. An override in the store (``oncall_override``) replaces the
member while it lasts (the newest wins when two overlap). A ticket's rotation is the one naming its queue,
else the one that names no queue.

Creating or ending an override is recorded as a security event (tickets/security_log.py) - who changed who
gets paged, when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets import security_log
from tickets.models import Ticket, User
from tickets.oncall_models import OncallOverride
from tickets.settings import Rotation, TicketsConfig

Role = Literal["oncall", "secondary", "manager"]
MAX_OVERRIDE = timedelta(days=92)


class UnknownRotation(LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        names = ", ".join(known) or "none configured (oncall.rotations)"
        super().__init__(f"no rotation named {name!r}; rotations: {names}")


@dataclass(frozen=True, slots=True)
class OnCall:
    rotation: str
    queues: tuple[str, ...]
    username: str
    source: Literal["rotation", "override"]
    since: datetime
    until: datetime
    """When this person's turn (or override) ends."""
    secondary: str | None
    manager: str | None
    override_id: int | None = None
    reason: str = ""


def zone(settings: TicketsConfig) -> ZoneInfo:
    """Where hand-off times are read: ``oncall.timezone``, else the SLA calendar's, else the site's."""
    return ZoneInfo(settings.oncall.timezone or settings.sla.calendar.timezone or settings.site.timezone)


def turn(rotation: Rotation, tz: ZoneInfo, at: datetime) -> tuple[int, datetime, datetime]:
    """The turn number at ``at`` and its start and end (UTC), hand-offs at local wall-clock time."""
    first = datetime.combine(rotation.start, time.fromisoformat(rotation.handoff))
    length = timedelta(days=rotation.length_days)
    local = at.astimezone(tz).replace(tzinfo=None)
    number = (local - first) // length
    starts = first + number * length
    return number, _utc(starts, tz), _utc(starts + length, tz)


def _utc(local: datetime, tz: ZoneInfo) -> datetime:
    return local.replace(tzinfo=tz).astimezone(ZoneInfo("UTC"))


def rotation(settings: TicketsConfig, name: str) -> Rotation:
    for found in settings.oncall.rotations:
        if found.name == name:
            return found
    raise UnknownRotation(name, [r.name for r in settings.oncall.rotations])


def rotation_for_queue(settings: TicketsConfig, queue: str) -> Rotation | None:
    rotations = settings.oncall.rotations
    named = next((r for r in rotations if queue in r.queues), None)
    return named or next((r for r in rotations if not r.queues), None)


def active_override(session: Session, name: str, at: datetime) -> OncallOverride | None:
    return session.scalars(
        select(OncallOverride)
        .where(OncallOverride.rotation == name, OncallOverride.starts_at <= at, OncallOverride.ends_at > at)
        .order_by(OncallOverride.id.desc())
        .limit(1)
    ).first()


def who(session: Session, settings: TicketsConfig, found: Rotation, at: datetime) -> OnCall:
    """Who is on call for the rotation at ``at``."""
    number, since, until = turn(found, zone(settings), at)
    members = found.members
    regular = members[number % len(members)]
    secondary = members[(number + 1) % len(members)] if len(members) > 1 else None
    cover = active_override(session, found.name, at)
    if cover is None:
        return OnCall(found.name, found.queues, regular, "rotation", since, until, secondary, found.manager)
    return OnCall(
        found.name,
        found.queues,
        cover.username,
        "override",
        cover.starts_at,
        cover.ends_at,
        regular if regular != cover.username else secondary,
        found.manager,
        override_id=cover.id,
        reason=cover.reason,
    )


def everyone(session: Session, settings: TicketsConfig, at: datetime) -> list[OnCall]:
    """Who is on call in every rotation at ``at``."""
    return [who(session, settings, found, at) for found in settings.oncall.rotations]


def people_for(
    session: Session, settings: TicketsConfig, ticket: Ticket, roles: tuple[Role, ...], at: datetime
) -> set[str]:
    """The usernames holding ``roles`` in the rotation of the ticket's queue at ``at`` (none: no rotation)."""
    found = rotation_for_queue(settings, ticket.queue)
    if found is None or not roles:
        return set()
    current = who(session, settings, found, at)
    by_role: dict[str, str | None] = {
        "oncall": current.username,
        "secondary": current.secondary,
        "manager": current.manager,
    }
    return {name for role in roles if (name := by_role[role]) is not None}


def add_override(
    session: Session,
    settings: TicketsConfig,
    *,
    rotation_name: str,
    username: str,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    actor: str,
    now: datetime,
) -> OncallOverride:
    """``username`` covers the rotation from ``starts_at`` to ``ends_at``; refused (``ValueError``,
    :class:`UnknownRotation`) naming what is wrong."""
    rotation(settings, rotation_name)
    if ends_at <= starts_at:
        raise ValueError("an override must end after it starts (until > from)")
    if ends_at - starts_at > MAX_OVERRIDE:
        raise ValueError(f"an override lasts at most {MAX_OVERRIDE.days} days; change the rotation instead")
    if ends_at <= now:
        raise ValueError("an override must end in the future")
    if not reason.strip():
        raise ValueError("an override needs a reason (who asked, why)")
    user = session.scalars(select(User).where(User.username == username, User.active.is_(True))).first()
    if user is None:
        raise ValueError(f"no active user named {username!r}")
    override = OncallOverride(
        rotation=rotation_name,
        username=username,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason.strip(),
        created_by=actor[:64],
        created_at=now,
    )
    session.add(override)
    session.flush()
    security_log.record(
        session,
        actor=actor,
        action="oncall_override_created",
        subject=f"rotation {rotation_name}",
        detail={
            "override_id": override.id,
            "username": username,
            "starts_at": starts_at.isoformat(),
            "ends_at": ends_at.isoformat(),
            "reason": reason.strip()[:200],
        },
        now=now,
    )
    return override


def overrides(session: Session, *, now: datetime, rotation_name: str | None = None) -> list[OncallOverride]:
    """The overrides not over yet, by start."""
    query = select(OncallOverride).where(OncallOverride.ends_at > now)
    if rotation_name is not None:
        query = query.where(OncallOverride.rotation == rotation_name)
    return list(session.scalars(query.order_by(OncallOverride.starts_at, OncallOverride.id)))


def end_override(session: Session, override_id: int, *, actor: str, now: datetime) -> OncallOverride:
    """End an override now (kept as a record); ``LookupError`` when there is no such override."""
    found = session.get(OncallOverride, override_id)
    if found is None:
        raise LookupError(f"no on-call override {override_id}")
    if found.ends_at > now:
        planned = found.ends_at
        found.ends_at = max(now, found.starts_at)
        session.flush()
        security_log.record(
            session,
            actor=actor,
            action="oncall_override_ended",
            subject=f"rotation {found.rotation}",
            detail={"override_id": found.id, "username": found.username, "planned_end": planned.isoformat()},
            now=now,
        )
    return found
