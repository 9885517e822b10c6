"""The ticket UI over HTTP as a person uses it: read a page's CSRF token, sign in."""

from __future__ import annotations

import re

from httpx import Response
from starlette.testclient import TestClient

from tests.tickets.factories import PASSWORD


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page carries a CSRF token"
    return found.group(1)


def login(
    client: TestClient, username: str, password: str = PASSWORD, next_url: str = "/tickets"
) -> Response:
    token = csrf_of(client.get("/login").text)
    form = {"username": username, "password": password, "csrf": token, "next": next_url}
    return client.post("/login", data=form, follow_redirects=False)
