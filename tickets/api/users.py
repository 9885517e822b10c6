"""Administration of users' access over the API: end a user's login sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, status
from pydantic import BaseModel
from sqlalchemy import select

from core.db import utcnow
from tickets.api.deps import AdminUser, SessionDep
from tickets.api.schemas import Problem
from tickets.models import User
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
