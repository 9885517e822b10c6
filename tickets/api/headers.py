"""Security headers on every answer: a strict Content-Security-Policy for the UI's pages (everything from
this origin, no script at all: the templates have none), no framing (``X-Frame-Options: DENY`` and
``frame-ancestors 'none'``), no MIME sniffing, the referrer kept to this site. API answers (JSON, never
rendered as a page) get ``default-src 'none'``. The interactive docs (``/docs``, ``/redoc``,
tickets/api/docs.py) run Swagger UI and ReDoc from this origin: script from 'self' only; ReDoc writes its
styles into the page (``'unsafe-inline'`` styles, no inline script) and renders in a worker from a blob."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UI_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; "
    "frame-ancestors 'none'"
)
"""The UI: its stylesheet, scripts (tickets/ui/static, never inline) and images from this origin, forms posted
to it; no plugin, no frame."""
API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
"""Swagger UI and ReDoc, every asset from this origin (no CDN)."""
COMMON = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
DOCS_PATHS = ("/docs", "/redoc")


def policy_for(path: str) -> str:
    """The Content-Security-Policy of an answer on ``path``."""
    if path.startswith(DOCS_PATHS):
        return DOCS_CSP
    if path.startswith(("/api/", "/openapi.json", "/metrics", "/healthz", "/readyz")):
        return API_CSP
    return UI_CSP


class SecurityHeadersMiddleware:
    """Adds the headers to each answer's start, keeping any a route set itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = policy_for(scope["path"])

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in COMMON.items():
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", csp)
            await send(message)

        await self.app(scope, receive, with_headers)
