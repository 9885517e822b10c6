"""One error body for every 4xx and 5xx of the API: ``{"error": {"code", "message", "details"}}``.

:func:`install_error_handlers` answers ``HTTPException``, validation errors (422; malformed JSON is a 400)
values the store refuses (``DataError``: a 422) and unexpected exceptions (a 500 that names nothing internal;
the traceback goes to the log) in that shape.
Pages of the web UI get an HTML page instead when the browser asks for one. :func:`document_errors` makes
the OpenAPI schema say so: the 422 FastAPI documents by itself gets this body, body-accepting operations
document 400, and operations behind a bearer token document 401.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from tickets.api.schemas import Problem

HtmlError = Callable[[Request, int, str], Response]
"""Renders an error as a page for a browser: (request, status code, message)."""

log = logging.getLogger(__name__)

CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}
PROBLEM_REF = "#/components/schemas/Problem"


def problem_body(
    status_code: int, message: str, details: Any = None, code: str | None = None
) -> dict[str, Any]:
    code = code or CODES.get(status_code) or HTTPStatus(status_code).phrase.lower().replace(" ", "_")
    return {"error": {"code": code, "message": message, "details": details}}


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def _answer(
    request: Request,
    status_code: int,
    message: str,
    details: Any = None,
    *,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    html: HtmlError | None = getattr(request.app.state, "html_error", None)
    if html is not None and _wants_html(request):
        return html(request, status_code, message)
    body = problem_body(status_code, message, jsonable_encoder(details), code)
    return JSONResponse(body, status_code=status_code, headers=dict(headers) if headers else None)


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):  # registered for this class only
        return await _unexpected(request, exc)
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    details = None if isinstance(exc.detail, str) else exc.detail
    if exc.status_code == 400 and message == "There was an error parsing the body":
        return _answer(request, 400, "the request body could not be parsed", code="malformed_body")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    response = _answer(request, exc.status_code, message, details, headers=headers or None)
    response.headers.update(headers)  # the UI's error page too
    return response


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method the request's path answers. FastAPI has one route per method (the router's 405 names
    only the first it tried) and nests included routers, so each method is asked of the app's routes."""
    routes = request.app.router.routes
    return [
        method
        for method in METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


async def _validation_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):  # registered for this class only
        return await _unexpected(request, exc)
    errors = [
        {"loc": list(err.get("loc", ())), "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))}
        for err in exc.errors()
    ]
    if any(err["type"] == "json_invalid" for err in errors):
        return _answer(request, 400, "malformed JSON in the request body", errors, code="malformed_json")
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(part) for part in first["loc"])
    message = f"{where}: {first['msg']}" if where else str(first["msg"])
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return _answer(request, 422, message, errors)


async def _data_error(request: Request, exc: Exception) -> Response:
    """The store refused a value of the request (a NUL character in text for PostgreSQL, a number out of
    its column's range): bad input, so a 422 naming the kind of problem, never the SQL."""
    original = getattr(exc, "orig", None)
    kind = type(original).__name__ if original is not None else type(exc).__name__
    log.warning(
        "the store refused a request's value: %s",
        kind,
        extra={"method": request.method, "path": request.url.path, "error": kind},
    )
    message = "the store cannot keep a value of this request (e.g. a NUL character or a number out of range)"
    return _answer(request, 422, message, {"store_error": kind}, code="unstorable_value")


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error(
        "unhandled error answering %s %s",
        request.method,
        request.url.path,
        exc_info=exc,
        extra={"method": request.method, "path": request.url.path, "error": type(exc).__name__},
    )
    body = problem_body(500, "internal error: the request failed; see the server log")
    return JSONResponse(body, status_code=500)


def install_error_handlers(app: FastAPI, *, html: HtmlError | None = None) -> None:
    """Answer every error in the one shape, and document it in the OpenAPI schema. With ``html`` (the web
    UI's error page), a browser asking for a page gets that instead of the JSON body."""
    app.state.html_error = html
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(Exception, _unexpected)
    document_errors(app)


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": PROBLEM_REF}}}}


def _patch_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for code, spec in list(responses.items()):
        if code.startswith(("4", "5")) and "content" not in spec:
            responses[code] = _problem(spec.get("description") or HTTPStatus(int(code)).phrase)
        elif code.startswith(("4", "5")):
            spec["content"] = {"application/json": {"schema": {"$ref": PROBLEM_REF}}}
    if "422" in responses:
        responses["422"]["description"] = "The request is not valid (what and where in `details`)."
    if "requestBody" in operation:
        responses.setdefault("400", _problem("Malformed JSON or an unreadable body."))
        responses.setdefault("422", _problem("The request is not valid (what and where in `details`)."))
    if operation.get("security"):
        responses.setdefault("401", _problem("Missing, invalid or revoked bearer token."))


def document_errors(app: FastAPI) -> None:
    """Wrap ``app.openapi`` so every operation's 4xx/5xx answers use the :class:`Problem` body."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in problem_schema.pop("$defs", {}).items():
            schemas.setdefault(name, sub)
        schemas["Problem"] = problem_schema
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                if isinstance(operation, dict) and "responses" in operation:
                    _patch_operation(operation)
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
