"""``/docs`` and ``/redoc`` work without internet: every asset comes from Hypercare itself, the pages have
no inline script, and their CSP allows only this origin's script; real chromium renders both with every
request to another origin refused."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright
from starlette.testclient import TestClient

from tests.servers import CHROMIUM_ARGS
from tickets.api.headers import DOCS_CSP


def assets_of(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_the_docs_pages_reference_only_local_assets_which_are_served(client: TestClient) -> None:
    for path, expected in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-security-policy"] == DOCS_CSP
        assets = assets_of(response.text)
        assert any(asset.endswith(expected) for asset in assets)
        for asset in assets:
            assert asset.startswith("/") and not asset.startswith("//"), f"{path}: {asset} is not local"
            served = client.get(asset)
            assert served.status_code == 200, asset
            assert len(served.content) > 0
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", response.text), "no inline script"
    assert "script-src 'self';" in DOCS_CSP and "http" not in DOCS_CSP
    assert client.get("/openapi.json").json()["info"]["title"] == "Hypercare"


REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
"""The one remote URL in ReDoc's bundle (the "API docs by Redocly" logo): the CSP blocks it, ReDoc hides it."""


def test_swagger_ui_and_redoc_render_offline_in_chromium(chromium_executable: Path, live_server: Any) -> None:
    refused: list[str] = []
    violations: list[str] = []

    def only_local(route: Any) -> None:
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    def console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_executable), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(60_000)  # the bundles are megabytes of script on a busy CI machine
        page.route("**/*", only_local)
        page.on("console", console)
        page.goto(live_server.url + "/docs")
        title = page.locator(".swagger-ui .info .title")
        title.wait_for()
        assert "Hypercare" in title.inner_text()
        assert page.locator(".opblock").count() > 10, "the operations are listed"
        page.goto(live_server.url + "/redoc")
        heading = page.locator("h1").first
        heading.wait_for()
        assert "Hypercare" in heading.inner_text()
        assert page.locator("[data-section-id]").count() > 10, "the operations are listed"
        browser.close()
    assert refused == [], "a docs page asked for something from another origin"
    assert all(REDOCLY_LOGO in text for text in violations), violations
