"""The interactive API docs (``/docs``: Swagger UI, ``/redoc``: ReDoc) served from Hypercare itself.

FastAPI's own pages load Swagger UI and ReDoc from a CDN and start them with an inline script: blank
without internet (and unreliable from mainland China), and at odds with a strict CSP. These pages load the
assets the `fastapi-offline` package bundles, from this origin (``/static/docs-vendor/``), and start
Swagger UI from ``/static/docs/swagger-init.js``; the CSP of the two pages (tickets/api/headers.py) allows
script from this origin only.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from markupsafe import escape

VENDOR_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
"""swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png (the package's copies)."""
VENDOR_URL = "/static/docs-vendor"
OPENAPI_URL = "/openapi.json"

router = APIRouter(include_in_schema=False)

_SWAGGER = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - API docs</title>
<link rel="icon" href="{vendor}/favicon.png">
<link rel="stylesheet" href="{vendor}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{vendor}/swagger-ui-bundle.js"></script>
<script src="/static/docs/swagger-init.js"></script>
</body>
</html>
"""

_REDOC = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - API reference</title>
<link rel="icon" href="{vendor}/favicon.png">
</head>
<body>
<redoc spec-url="{openapi}"></redoc>
<script src="{vendor}/redoc.standalone.js"></script>
</body>
</html>
"""


def _page(template: str, title: str) -> HTMLResponse:
    return HTMLResponse(template.format(title=escape(title), vendor=VENDOR_URL, openapi=OPENAPI_URL))


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    """Swagger UI: try the API from the browser (with a token: Authorize)."""
    return _page(_SWAGGER, "Hypercare")


@router.get("/redoc")
def redoc() -> HTMLResponse:
    """ReDoc: the API reference as one page."""
    return _page(_REDOC, "Hypercare")
