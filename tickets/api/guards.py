"""Request guards for the whole app: a bounded request body (413 beyond it, before the body is read when
it announces its length) and a 503 with ``Retry-After`` when the store is unreachable, the one failure a
retry can cure (Alertmanager retries 5xx and gives up on 4xx)."""

from __future__ import annotations

import logging
from collections.abc import Callable

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
                await _refuse(scope, send, 413, f"the request body is larger than {limit} bytes")
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
                await _refuse(scope, send, 413, f"the request body is larger than {limit} bytes")
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return chunks.pop(0) if chunks else await receive()

        await self.app(scope, replay, send)


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


def install_guards(app: FastAPI, settings: TicketsConfig) -> None:
    """The body limit and the store-unavailable answer, on every route."""
    app.add_middleware(BodyLimitMiddleware, limit=body_limits(settings))
    for error in (OperationalError, InterfaceError, PoolTimeoutError):
        app.add_exception_handler(error, store_unavailable)
