"""Users over the API: one's own profile (language, time zone); administration: end a user's sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from core.db import utcnow
from tickets.api.deps import AdminUser, SessionDep, require_scope
from tickets.api.schemas import Problem
from tickets.auth import Principal
from tickets.models import User
from tickets.profile import update_profile
from tickets.sessions import revoke_user_sessions

router = APIRouter(prefix="/api/v1", tags=["users"])


class SessionsRevoked(BaseModel):
    username: str
    revoked: int
    """How many live login sessions were ended."""


@router.delete(
    "/users/{username}/sessions",
    response_model=SessionsRevoked,
    responses={403: {"model": Problem}, 404: {"model": Problem}},
)
def revoke_sessions(
    username: Annotated[str, Path(max_length=64)], admin: AdminUser, session: SessionDep, request: Request
) -> SessionsRevoked:
    """End every login session of a user at once (their API tokens are not affected: revoke or rotate
    those). Recorded as a security event."""
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user named {username!r}")
    address = request.client.host if request.client is not None else None
    count = revoke_user_sessions(
        session, user, reason="revoked by admin", actor=admin.username, now=utcnow(), address=address
    )
    session.commit()
    return SessionsRevoked(username=username, revoked=count)


class Profile(BaseModel):
    """A user's own settings (``null``: not chosen, the browser's or the site's applies)."""

    username: str
    display_name: str
    role: str
    language: str | None = Field(description="en, zh_CN or zh_TW; null: the browser's, else site.language")
    timezone: str | None = Field(description="An IANA time zone such as Asia/Shanghai; null: the site's")


class ProfilePatch(BaseModel):
    """The fields to change; a field left out stays as it is, ``null`` clears it."""

    model_config = ConfigDict(extra="forbid")
    language: str | None = Field(None, max_length=16, examples=["zh_CN"])
    timezone: str | None = Field(None, max_length=64, examples=["Asia/Shanghai"])


ProfileUser = Annotated[Principal, Depends(require_scope("tickets:read", "reports:write"))]
"""Any user (every role has one of these scopes): each reads and changes only their own profile."""


def _profile(user: User) -> Profile:
    return Profile(
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        language=user.language,
        timezone=user.timezone,
    )


@router.get("/me", response_model=Profile, responses={403: {"model": Problem}})
def read_profile(principal: ProfileUser) -> Profile:
    """Who the token acts as, with their language and time zone."""
    return _profile(principal.user)


@router.patch("/me", response_model=Profile, responses={403: {"model": Problem}, 422: {"model": Problem}})
def change_profile(body: ProfilePatch, principal: ProfileUser, session: SessionDep) -> Profile:
    """Change one's own language and/or time zone (a field left out stays as it is; ``null`` or ``""``
    clears it). An unknown language or time zone is refused with 422, naming what is accepted."""
    fields = {name: getattr(body, name) for name in body.model_fields_set}
    user = principal.user
    try:
        update_profile(session, user, **fields)
    except ValueError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    session.commit()
    return _profile(user)
