"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

import asyncio

import anyio.to_thread
from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from prometheus_client.exposition import choose_encoder

from core.errors import StoreError
from core.schema import require_current_schema
from core.session import ping
from tickets.api.state import app_state

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive (says nothing about the store). On the event loop: no worker thread."""
    return {"status": "ok"}


READY_DEADLINE_S = 2.0
"""/readyz answers within this, whatever the store does (an orchestrator's probe must not hang)."""


@router.get(
    "/readyz",
    responses={503: {"description": "The store is unreachable, silent, or its schema is not current."}},
)
async def readyz(request: Request) -> JSONResponse:
    """Ready to serve: the store answers within 2 s and its schema is the one this code needs. ``detail``
    lists what start-up found worth knowing (a monitored source running with a privileged user, knowingly)."""
    state = app_state(request)

    def check() -> None:
        ping(state.engine)
        require_current_schema(state.engine)

    try:
        await asyncio.wait_for(
            anyio.to_thread.run_sync(check, abandon_on_cancel=True), timeout=READY_DEADLINE_S
        )
    except TimeoutError:
        state.breaker.trip()
        reason = f"the store did not answer within {READY_DEADLINE_S:g} s"
        return JSONResponse({"status": "unavailable", "reason": reason}, status.HTTP_503_SERVICE_UNAVAILABLE)
    except StoreError as exc:
        body = {"status": "unavailable", "reason": str(exc)}
        return JSONResponse(body, status.HTTP_503_SERVICE_UNAVAILABLE)
    state.breaker.close()
    if state.notices:
        return JSONResponse({"status": "ready", "detail": list(state.notices)})
    return JSONResponse({"status": "ready"})


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text format, or OpenMetrics when the scraper asks for it."""
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(app_state(request).registry), media_type=content_type)
