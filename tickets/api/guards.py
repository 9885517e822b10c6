"""Request guards for the whole app: a bounded request body (413 beyond it, before the body is read when
it announces its length) and a 503 with ``Retry-After`` when the store is unreachable or hangs, the one
failure a retry can cure (Alertmanager retries 5xx and gives up on 4xx).

A store that accepts connections and then stays silent would hold every request for minutes (no driver
timeout covers an established, silent connection). :class:`StoreDeadlineMiddleware` answers 503 when a
request has not begun to answer within ``server.store_deadline_s``; its :class:`StoreBreaker` then answers
the next requests 503 at once, letting one through every ``probe_s`` to find out whether the store is
back (``/readyz`` checks with a 2 s deadline of its own and closes the breaker when it is)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tickets.api.problems import problem_body
from tickets.settings import TicketsConfig

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
"""Any request not given a larger limit below (JSON bodies, UI forms)."""
FORM_OVERHEAD_BYTES = 1024 * 1024
RETRY_AFTER_S = 30


def body_limits(settings: TicketsConfig) -> Callable[[str], int]:
    """The largest body accepted on a path."""
    reports = settings.reports.max_attachments * settings.reports.max_attachment_bytes + FORM_OVERHEAD_BYTES

    def limit(path: str) -> int:
        if path.rstrip("/") == "/api/v1/alertmanager":
            return settings.alertmanager.max_body_bytes
        if path.startswith(("/api/v1/reports", "/report")):  # the API and the UI form (/report)
            return reports
        return DEFAULT_MAX_BODY_BYTES

    return limit


class BodyLimitMiddleware:
    """Refuse request bodies over the path's limit with 413: at once when ``Content-Length`` says so,
    else (chunked) as soon as the bytes received pass it, before the application sees any of them."""

    def __init__(self, app: ASGIApp, limit: Callable[[str], int]) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            try:
                too_large = int(length) > limit
            except ValueError:
                await _refuse(scope, send, 400, "Content-Length is not a number")
                return
            if too_large:
                await _refuse(scope, send, 413, _too_large(scope["path"], limit))
                return
            await self.app(scope, receive, send)
            return
        chunks: list[Message] = []
        received = 0
        while True:  # no announced length: read up to the limit first, then replay
            message = await receive()
            chunks.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > limit:
                await _refuse(scope, send, 413, _too_large(scope["path"], limit))
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return chunks.pop(0) if chunks else await receive()

        await self.app(scope, replay, send)


def _too_large(path: str, limit: int) -> str:
    message = f"the request body is larger than {limit} bytes"
    if path.rstrip("/") == "/api/v1/alertmanager":  # Alertmanager drops a 4xx: say how to keep groups small
        message += (
            " (alertmanager.max_body_bytes): set `max_alerts` in this receiver's webhook_config in "
            "Alertmanager or group by more labels (`group_by`) in its route, or raise "
            "`alertmanager.max_body_bytes` in Hypercare's settings"
        )
    return message


async def _refuse(scope: Scope, send: Send, status_code: int, message: str) -> None:
    log.info("request refused", extra={"path": scope["path"], "status": status_code, "reason": message})
    response = JSONResponse(problem_body(status_code, message), status_code=status_code)
    response.headers["Connection"] = "close"

    async def no_body() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, no_body, send)


async def store_unavailable(request: Request, exc: Exception) -> Response:
    reason = str(getattr(exc, "orig", exc) or type(exc).__name__).strip().splitlines()
    log.warning(
        "store unavailable",
        extra={"path": request.url.path, "error": type(exc).__name__, "reason": reason[0] if reason else ""},
    )
    body = problem_body(503, "the ticket store is unavailable; retry later")
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


NO_STORE_PATHS = ("/healthz", "/readyz", "/metrics", "/static/")
"""Paths that answer without waiting on the store (or, /readyz, with a deadline of their own)."""


class StoreBreaker:
    """Open after a request waited on the store past its deadline. While open, requests are answered 503
    at once except one probe every ``probe_s`` seconds; a request answered below 500 closes it."""

    def __init__(self, probe_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.probe_s = probe_s
        self.clock = clock
        self.is_open = False
        self._next_probe = 0.0

    def allow(self) -> bool:
        if not self.is_open:
            return True
        now = self.clock()
        if now >= self._next_probe:
            self._next_probe = now + self.probe_s
            return True
        return False

    def trip(self) -> None:
        if not self.is_open:
            log.warning("store not answering: requests answered 503 until it does")
        self.is_open = True
        self._next_probe = self.clock() + self.probe_s

    def close(self) -> None:
        if self.is_open:
            log.info("store answering again")
        self.is_open = False


StoreProbe = Callable[[], Awaitable[bool]]
"""Whether the store answers a trivial query within a short deadline (``tickets.app`` builds it)."""
PROBE_DEADLINE_S = 2.0


class StoreDeadlineMiddleware:
    """503 with ``Retry-After`` for a request that has not begun to answer within ``deadline_s`` while the
    store itself does not answer.

    A request past its deadline is not abandoned for being slow: the store is probed (``probe``, 2 s), and
    while it answers the request keeps its time (a Verify re-running a slow ERP check, a large webhook).
    Only when the store is silent too is the request answered 503 and the breaker tripped. The request runs
    on as a task of its own (its worker thread cannot be interrupted); whatever it sends later is dropped. A
    response that has begun (a download) is never cut."""

    def __init__(
        self, app: ASGIApp, deadline_s: float, breaker: StoreBreaker, probe: StoreProbe | None = None
    ) -> None:
        self.app = app
        self.deadline_s = deadline_s
        self.breaker = breaker
        self.probe = probe
        self._abandoned: set[asyncio.Future[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(NO_STORE_PATHS):
            await self.app(scope, receive, send)
            return
        if not self.breaker.allow():
            await _unavailable(scope, send, "the ticket store is not answering; retry later")
            return
        state = _Answer()

        async def guarded(message: Message) -> None:
            if state.abandoned:
                return
            if message["type"] == "http.response.start":
                state.status = int(message["status"])
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded))
        done, _ = await asyncio.wait({task}, timeout=self.deadline_s)
        while not done and state.status == 0 and self.probe is not None and await self.probe():
            done, _ = await asyncio.wait({task}, timeout=self.deadline_s)  # slow, but the store answers
        if not done and state.status == 0:
            state.abandoned = True
            self._abandoned.add(task)
            task.add_done_callback(self._forget)
            self.breaker.trip()
            log.warning(
                "request abandoned: the store did not answer in time",
                extra={"path": scope["path"], "deadline_s": self.deadline_s},
            )
            await _unavailable(scope, send, "the ticket store did not answer in time; retry later")
            return
        await task
        if state.status < 500:
            self.breaker.close()

    def _forget(self, task: asyncio.Future[None]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info("an abandoned request ended with %s", type(task.exception()).__name__)


class _Answer:
    __slots__ = ("abandoned", "status")

    def __init__(self) -> None:
        self.status = 0
        self.abandoned = False


async def _unavailable(scope: Scope, send: Send, message: str) -> None:
    response = JSONResponse(
        problem_body(503, message), status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}
    )

    async def no_body() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, no_body, send)


def install_guards(
    app: FastAPI,
    settings: TicketsConfig,
    breaker: StoreBreaker | None = None,
    probe: StoreProbe | None = None,
) -> None:
    """The body limit, the store deadline and the store-unavailable answer, on every route."""
    app.add_middleware(
        StoreDeadlineMiddleware,
        deadline_s=settings.server.store_deadline_s,
        breaker=breaker or StoreBreaker(),
        probe=probe,
    )
    app.add_middleware(BodyLimitMiddleware, limit=body_limits(settings))
    for error in (OperationalError, InterfaceError, PoolTimeoutError):
        app.add_exception_handler(error, store_unavailable)
