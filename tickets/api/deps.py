"""Dependencies shared by the routers, declared once as ``Annotated`` aliases.

Every API route names the scope it needs (:func:`require_scope`); a request passes when its bearer token
has the scope and the token's user's role allows it (``tickets.auth.ROLE_SCOPES``). The scope a route
needs is kept on its dependency (``required_scope``) so a test can walk every route and try each role.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from tickets.api.state import app_state
from tickets.auth import Principal, check_token, roles_with
from tickets.cache import wrote
from tickets.errors import InvalidTransition, TicketError, TicketNotFound
from tickets.models import ROLES, User
from tickets.service import TicketService
from tickets.settings import TicketsConfig

ACTING_ROLES = roles_with("tickets:write")
"""Roles that may change tickets (the UI shows them the actions)."""


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; routes that change something commit it, anything else is rolled back."""
    with app_state(request).session_factory() as session:
        yield session


def get_settings(request: Request) -> TicketsConfig:
    return app_state(request).settings


SessionDep = Annotated[Session, Depends(get_session)]
TicketId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The ticket's id.")]
"""A ticket id in a path: anything else (0, negative, past the column's range) is a 422, never a store
error."""
SettingsDep = Annotated[TicketsConfig, Depends(get_settings)]

_bearer = HTTPBearer(auto_error=False, description="An API token (`hypercare tokens create`).")


def _unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = "Bearer" if error is None else f'Bearer error="{error}"'
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": challenge})


def current_principal(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None:
        raise _unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    principal = check_token(session, credentials.credentials)
    if not isinstance(principal, Principal):  # why not: unknown, revoked, expired, its user disabled
        raise _unauthorized(principal, "invalid_token")
    if wrote(session):  # the token's last use, recorded once a minute: keep it (else no round trip)
        session.commit()
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]
"""Any valid token, whatever its scopes; routes check ownership or scopes themselves."""


def require_scope(*scopes: str) -> Callable[[Principal], Principal]:
    """A dependency refusing (403) a token with none of ``scopes``, naming the roles that have them."""

    def check(principal: PrincipalDep) -> Principal:
        return authorize(principal, scopes)

    check.required_scopes = scopes  # type: ignore[attr-defined]  # read by the role matrix test
    return check


def authorize(principal: Principal, scopes: tuple[str, ...]) -> Principal:
    """``principal`` if its token has one of ``scopes``, else 403 naming the roles that have them."""
    if not any(principal.allows(scope) for scope in scopes):
        needed = " or ".join(f"'{scope}'" for scope in scopes)
        roles = ", ".join(role for role in ROLES if any(role in roles_with(s) for s in scopes))
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"this needs scope {needed} (roles: {roles}); the token of '{principal.user.username}' "
            f"(role '{principal.user.role}') does not have it",
        )
    return principal


def bearer_for(*scopes: str) -> Callable[..., Awaitable[HTTPAuthorizationCredentials | None]]:
    """The bearer credentials of a route that authorises them itself, on the event loop for a cache hit
    (tickets/hot_reads.py) and with :func:`current_principal` and :func:`authorize` otherwise. Declares
    ``scopes`` like :func:`require_scope` does (OpenAPI's security scheme, the role matrix test)."""

    async def credentials(
        found: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> HTTPAuthorizationCredentials | None:
        return found

    credentials.required_scopes = scopes  # type: ignore[attr-defined]  # read by the role matrix test
    return credentials


def _user_with(scope: str) -> Callable[[Principal], User]:
    checker = require_scope(scope)

    # A default, not Annotated: annotations are strings here and could not see the local ``checker``.
    def user(principal: Principal = Depends(checker)) -> User:  # noqa: B008
        return principal.user

    return user


CurrentUser = Annotated[User, Depends(_user_with("tickets:read"))]
"""A user who may read the ticket queue."""
ActingUser = Annotated[User, Depends(_user_with("tickets:write"))]
"""A user who may change tickets."""
EventWriter = Annotated[User, Depends(_user_with("events:write"))]
AlertWriter = Annotated[User, Depends(_user_with("alerts:write"))]
ReportWriter = Annotated[Principal, Depends(require_scope("reports:write"))]
ReportViewer = Annotated[Principal, Depends(require_scope("reports:read", "reports:write"))]
"""Reads reports: everyone's with ``reports:read``, else only one's own."""
AdminUser = Annotated[User, Depends(_user_with("admin"))]


def get_service(session: SessionDep, settings: SettingsDep) -> TicketService:
    return TicketService(session, settings)


ServiceDep = Annotated[TicketService, Depends(get_service)]


T = TypeVar("T")


def run_service(
    change: Callable[[], T],
    *,
    not_found: tuple[type[Exception], ...] = (),
    conflict: tuple[type[Exception], ...] = (),
) -> T:
    """Run a service call for a route, its errors answered with their message: a missing ticket (or one of
    ``not_found``) 404, a transition its status does not allow (or one of ``conflict``) 409, a refused value
    422."""
    missing: tuple[type[Exception], ...] = (TicketNotFound, *not_found)
    refused: tuple[type[Exception], ...] = (InvalidTransition, *conflict)
    try:
        return change()
    except missing as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except refused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except (ValueError, TicketError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
