"""Cache hits without worker threads: who asks and the tickets version, in one statement on the event loop.

A cached queue page or API list (tickets/cache.py) needs two facts per request: the user behind the session
cookie or bearer token (active, role, for a token its scopes and whether its last use must be recorded) and
the store's tickets version. The general path gets them through FastAPI dependencies that each run in a
worker thread, with an ORM session, a pre-ping, ``BEGIN``, two queries and a ``ROLLBACK``: four thread hops
and five round trips, several milliseconds of one process's GIL per request. Here both facts come from one
``SELECT`` on an autocommit connection of a small psycopg pool on the event loop itself (PostgreSQL), or of
the store's engine in one worker thread (other stores). A request that this cannot answer completely (no
such user, a role without the scope, a token whose use is due to be recorded, flash messages to show, a
store error) goes the general way, which gives the same answer it always did: this is only ever a
shortcut to the same response, never a second set of rules. The statement fetches facts, not decisions
(the user's ``active`` flag, the session's ``revoked_at``, ``expires_at`` and ``last_seen_at``, the
token's ``revoked_at``, ``expires_at``, ``scopes`` and ``last_used_at``, filtered by nothing but the
hash): :func:`tickets.auth.session_access` and :func:`tickets.auth.token_access`
decide, as they do for the general path.

Never stale: the version is read in the same statement as the user, before the cached response is looked
up, exactly as the general path reads it first (see tickets/cache.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, Integer, Select, bindparam, func, literal_column, select
from starlette.concurrency import run_in_threadpool

from core.db import utcnow
from core.session import pg_connect_args
from tickets.access_models import AuthSession
from tickets.auth import plausible_token, seen_due, session_access, token_access, token_hash
from tickets.cache import PAGE_EPOCH, TicketPageVersion, TicketVersion
from tickets.models import ApiToken, User
from tickets.sessions import plausible_session_id, session_hash

log = logging.getLogger(__name__)

POOL_SIZE = 4
"""Connections of the event loop's pool per process: each is held for one round trip, so a few serve
thousands of requests a second."""
POOL_TIMEOUT_S = 1.0
"""How long a request waits for one of them before it takes the general path instead."""

_VERSION = select(func.sum(TicketVersion.version)).scalar_subquery()
_EPOCH_ID: ColumnElement[int] = literal_column(
    str(PAGE_EPOCH), Integer
)  # a literal: the compiled statement takes only hash and ticket
_PAGE_VERSION = (
    select(func.sum(TicketPageVersion.version))
    .where(TicketPageVersion.ticket_id.in_([_EPOCH_ID, bindparam("ticket")]))
    .scalar_subquery()
)
_PAGE_EPOCH = select(func.count()).where(TicketPageVersion.ticket_id == _EPOCH_ID).scalar_subquery()
_WHO = (User.id, User.username, User.role, User.display_name, User.active, User.language, User.timezone)
SESSION_USER: Select[Any] = (
    select(
        *_WHO,
        _VERSION.label("version"),
        AuthSession.revoked_at,
        AuthSession.expires_at,
        AuthSession.last_seen_at,
    )
    .join(User, User.id == AuthSession.user_id)
    .where(AuthSession.token_hash == bindparam("hash"))
)
"""The user of a session cookie, the session's state, and the tickets version."""
SESSION_USER_PAGE: Select[Any] = SESSION_USER.add_columns(
    _PAGE_VERSION.label("page_version"), _PAGE_EPOCH.label("page_epoch")
)
"""The same, and the page version of ticket ``:ticket`` (tickets/cache.py; while the epoch row exists)."""
TOKEN_USER: Select[Any] = (
    select(
        *_WHO,
        _VERSION.label("version"),
        ApiToken.scopes,
        ApiToken.revoked_at,
        ApiToken.expires_at,
        ApiToken.last_used_at,
    )
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == bindparam("hash"))
)
"""A token's user, what the token may do and when it was last used, and the tickets version."""


@dataclass(frozen=True, slots=True)
class Who:
    """Who a request acts as, as far as a cached response depends on it, and the version it was read at."""

    user_id: int
    username: str
    role: str
    display_name: str
    scopes: frozenset[str]
    version: int | None
    language: str | None = None
    """The user's UI language (a cached page is filed under the language it is in)."""
    timezone: str | None = None
    """The user's display zone (a cached page is filed under the zone its times are in)."""
    page_version: int | None = None
    """The page version of the ticket asked about (:meth:`HotReads.session_user` with ``ticket_id``)."""

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


class HotReads:
    """The one-statement lookups behind cache hits, for one store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pool: Any = None  # psycopg_pool.AsyncConnectionPool while open (PostgreSQL with psycopg 3)
        self._sql: dict[str, str] = {}
        if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
            for name, stmt in (
                ("session", SESSION_USER),
                ("session_page", SESSION_USER_PAGE),
                ("token", TOKEN_USER),
            ):
                self._sql[name] = str(stmt.compile(dialect=engine.dialect))

    @property
    def on_event_loop(self) -> bool:
        """Whether lookups run on the event loop (an open pool) rather than in a worker thread."""
        return self._pool is not None

    async def open(self) -> None:
        """Open the event loop's pool (PostgreSQL only; from the app's lifespan, on the serving loop)."""
        if not self._sql or self._pool is not None:
            return
        from psycopg_pool import AsyncConnectionPool  # noqa: PLC0415 - only PostgreSQL stores use the loop's pool

        conninfo = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=POOL_SIZE,
            timeout=POOL_TIMEOUT_S,
            open=False,
            name="hypercare-hot-reads",
            # the store engines' connect timeout and keepalives (core/session.py): a silent store fails fast
            kwargs={**pg_connect_args(), "autocommit": True, "application_name": "hypercare-hot-reads"},
        )
        await self._pool.open(wait=False)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def session_user(self, value: object, ticket_id: int | None = None) -> Who | None:
        """The user of the login session whose id a cookie holds, with the tickets version (and with
        ``ticket_id`` that ticket's page version), if :func:`~tickets.auth.session_access` lets them in and
        the session's last request is not due to be recorded (a write: the general path does it); else None
        (as on a failed lookup: the caller takes the general path, which says why)."""
        session_id = plausible_session_id(value)
        if session_id is None:
            return None
        if ticket_id is None:
            row = await self._first("session", SESSION_USER, {"hash": session_hash(session_id)})
        else:
            params = {"hash": session_hash(session_id), "ticket": ticket_id}
            row = await self._first("session_page", SESSION_USER_PAGE, params)
        if row is None:
            return None
        now = utcnow()
        scopes = session_access(
            active=bool(row["active"]),
            role=str(row["role"]),
            revoked_at=row["revoked_at"],
            expires_at=row["expires_at"],
            now=now,
        )
        if scopes is None or seen_due(row["last_seen_at"], now):
            return None
        return _who(row, scopes)

    async def token_user(self, token: str) -> Who | None:
        """The user of a token with its scopes and the tickets version, if
        :func:`~tickets.auth.token_access` accepts the token and its use is not due to be recorded (a
        write: the general path does it); else None (as on a failed lookup)."""
        if not plausible_token(token):
            return None
        row = await self._first("token", TOKEN_USER, {"hash": token_hash(token)})
        if row is None:
            return None
        scopes = row["scopes"]
        access = token_access(
            revoked_at=row["revoked_at"],
            active=bool(row["active"]),
            role=str(row["role"]),
            scopes=None if scopes is None else str(scopes),
            last_used_at=row["last_used_at"],
            now=utcnow(),
            expires_at=row["expires_at"],
        )
        if access is None or access.record_use:
            return None
        return _who(row, access.scopes)

    async def _first(self, name: str, stmt: Select[Any], params: dict[str, Any]) -> Mapping[str, Any] | None:
        try:
            if self._pool is not None:
                return await self._first_on_loop(self._sql[name], params)
            return await run_in_threadpool(self._first_in_thread, stmt, params)
        except Exception as exc:  # any failure: the general path answers, with its own errors
            log.warning(
                "hot read failed; answering through the general path", extra={"error": type(exc).__name__}
            )
            return None

    async def _first_on_loop(self, sql: str, params: dict[str, Any]) -> Mapping[str, Any] | None:
        from psycopg.rows import dict_row  # noqa: PLC0415 - only PostgreSQL stores use the loop's pool

        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(sql, params)
            row: dict[str, Any] | None = await cursor.fetchone()
        return row

    def _first_in_thread(self, stmt: Select[Any], params: dict[str, Any]) -> Mapping[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(stmt, params).mappings().first()
            return None if row is None else dict(row)


def _who(row: Mapping[str, Any], scopes: frozenset[str]) -> Who:
    version = row["version"]
    page = row.get("page_version") if row.get("page_epoch") else None
    return Who(
        user_id=int(row["id"]),
        username=str(row["username"]),
        role=str(row["role"]),
        display_name=str(row["display_name"]),
        scopes=scopes,
        version=None if version is None else int(version),
        language=row.get("language"),
        timezone=row.get("timezone"),
        page_version=None if page is None else int(page),
    )
