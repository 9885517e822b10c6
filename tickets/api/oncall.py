"""On-call over the API: who is on call now (or at a time), and the overrides (someone covers from..to).

Thin: the rules live in tickets/oncall.py. Reading needs ``tickets:read``; adding or ending an override
``tickets:write``, and each is recorded as a security event."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, StringConstraints

from tickets import oncall
from tickets.api.deps import ActingUser, CurrentUser, ServiceDep, SessionDep, SettingsDep
from tickets.api.schemas import IsoDateTime, Problem, iso_8601_aware

router = APIRouter(prefix="/api/v1", tags=["oncall"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "The user's role may not do this."},
    404: {"model": Problem, "description": "No such rotation or override."},
    422: {"model": Problem, "description": "The override is not valid as asked (the message says why)."},
}
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class OnCallPublic(BaseModel):
    rotation: str
    queues: list[str]
    """The queues it answers for (empty: every queue no other rotation names)."""
    username: str
    source: str
    """``rotation`` (their turn) or ``override`` (covering)."""
    since: datetime
    until: datetime
    secondary: str | None
    manager: str | None
    override_id: int | None
    reason: str


class OverrideCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rotation: Name
    username: Name
    starts_at: IsoDateTime
    ends_at: IsoDateTime
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class OverridePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    rotation: str
    username: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime


def public(found: oncall.OnCall) -> OnCallPublic:
    return OnCallPublic(
        rotation=found.rotation,
        queues=list(found.queues),
        username=found.username,
        source=found.source,
        since=found.since,
        until=found.until,
        secondary=found.secondary,
        manager=found.manager,
        override_id=found.override_id,
        reason=found.reason,
    )


@router.get("/oncall", response_model=list[OnCallPublic], responses={403: _ERRORS[403]})
def who_is_on_call(
    user: CurrentUser,
    service: ServiceDep,
    session: SessionDep,
    settings: SettingsDep,
    at: Annotated[
        str | None, Query(max_length=40, description="An ISO-8601 time with a zone; default now.")
    ] = None,
) -> list[OnCallPublic]:
    """Who is on call in each rotation now, or at ``at``."""
    when = service.now() if at is None else parse_time(at, "at")
    return [public(found) for found in oncall.everyone(session, settings, when)]


def parse_time(value: str, name: str) -> datetime:
    """An ISO-8601 time with a zone from a query parameter; 422 naming the parameter otherwise."""
    try:
        iso_8601_aware(value)
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{name}: {exc}") from None


@router.get("/oncall/overrides", response_model=list[OverridePublic], responses={403: _ERRORS[403]})
def list_overrides(
    user: CurrentUser,
    service: ServiceDep,
    session: SessionDep,
    rotation: Annotated[str | None, Query()] = None,
) -> list[OverridePublic]:
    """The overrides not over yet, by start."""
    rows = oncall.overrides(session, now=service.now(), rotation_name=rotation)
    return [OverridePublic.model_validate(row) for row in rows]


@router.post(
    "/oncall/overrides", response_model=OverridePublic, status_code=status.HTTP_201_CREATED, responses=_ERRORS
)
def create_override(
    body: OverrideCreate, user: ActingUser, service: ServiceDep, session: SessionDep, settings: SettingsDep
) -> OverridePublic:
    """``username`` covers ``rotation`` from ``starts_at`` to ``ends_at`` (at most 92 days, with a reason)."""
    try:
        row = oncall.add_override(
            session,
            settings,
            rotation_name=body.rotation,
            username=body.username,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            reason=body.reason,
            actor=user.username,
            now=service.now(),
        )
    except oncall.UnknownRotation as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    session.commit()
    return OverridePublic.model_validate(row)


@router.delete("/oncall/overrides/{override_id}", response_model=OverridePublic, responses=_ERRORS)
def end_override(
    override_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    user: ActingUser,
    service: ServiceDep,
    session: SessionDep,
) -> OverridePublic:
    """End an override now (it stays on record)."""
    try:
        row = oncall.end_override(session, override_id, actor=user.username, now=service.now())
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    session.commit()
    return OverridePublic.model_validate(row)
