"""Dependencies shared by the routers, declared once as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from hypercare.config import Settings
from tickets.api.state import app_state
from tickets.auth import user_for_token
from tickets.models import User
from tickets.service import TicketService

ACTING_ROLES = ("admin", "agent")


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; routes that change something commit it, anything else is rolled back."""
    with app_state(request).session_factory() as session:
        yield session


def get_settings(request: Request) -> Settings:
    return app_state(request).settings


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

_bearer = HTTPBearer(auto_error=False, description="An API token (`hypercare users token`).")


def _unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = "Bearer" if error is None else f'Bearer error="{error}"'
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": challenge})


def current_user(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    if credentials is None:
        raise _unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    user = user_for_token(session, credentials.credentials)
    if user is None:
        raise _unauthorized("invalid, revoked or expired token", "invalid_token")
    session.commit()  # keeps the token's last_used_at
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def require_roles(*roles: str) -> Callable[[User], User]:
    def check(user: CurrentUser) -> User:
        if user.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"role '{user.role}' may not do this (needs {' or '.join(roles)})"
            )
        return user

    return check


ActingUser = Annotated[User, Depends(require_roles(*ACTING_ROLES))]
"""A user who may change tickets: an admin or an agent."""


def get_service(session: SessionDep, settings: SettingsDep) -> TicketService:
    return TicketService(session, settings)


ServiceDep = Annotated[TicketService, Depends(get_service)]
