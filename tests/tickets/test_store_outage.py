"""A store that accepts connections and then says nothing: the API answers 503 fast, /readyz within 2 s,
and both recover by themselves when the store speaks again.

The store is a real PostgreSQL behind a TCP proxy on loopback that can go silent: it keeps every
connection open and accepts the bytes sent to it (so the kernel acknowledges them and no TCP timeout
fires), but passes nothing on until it is resumed — what a hung server or a broken middlebox looks like.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from starlette.responses import JSONResponse
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from core.session import make_engine, session_factory
from hypercare.app import ports
from hypercare.config import Settings
from tests.tickets.factories import seed_users
from tickets.api.guards import StoreBreaker, StoreDeadlineMiddleware
from tickets.app import create_app


class SilentProxy:
    """Loopback TCP proxy to ``target`` that can stop passing bytes either way (:meth:`silence`)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.quiet = threading.Event()
        self.closed = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def silence(self) -> None:
        self.quiet.set()

    def resume(self) -> None:
        self.quiet.clear()

    def close(self) -> None:
        self.closed.set()
        self.quiet.clear()
        self.listener.close()
        for sock in self.sockets:
            sock.close()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:
                dst.close()
                return
            while self.quiet.is_set():  # hold what arrived: the sender sees it acknowledged, not answered
                time.sleep(0.02)
            try:
                dst.sendall(data)
            except OSError:
                return


@pytest.fixture
def proxied_store(store_url: str) -> Iterator[tuple[str, SilentProxy]]:
    url = make_url(store_url)
    proxy = SilentProxy(url.host or "127.0.0.1", url.port or 5432)
    yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), proxy
    proxy.close()


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)]
)  # SQLite has no server
def test_a_silent_store_costs_callers_seconds_and_heals_by_itself(
    proxied_store: tuple[str, SilentProxy], tmp_path: Path
) -> None:
    url, proxy = proxied_store
    settings = Settings(
        data_dir=tmp_path,
        database_url=url,
        server={"public_url": "https://hypercare.example", "store_deadline_s": 1.0},  # type: ignore[arg-type]
    )
    engine = make_engine(url, pool_size=4, statement_timeout_s=30)
    tokens = seed_users(session_factory(engine))
    headers = {"Authorization": f"Bearer {tokens['agent']}"}
    app = create_app(settings, engine=engine, ports=ports(settings))
    try:
        with TestClient(app) as client:
            assert client.get("/api/v1/tickets", headers=headers).status_code == 200
            assert client.get("/readyz").status_code == 200

            proxy.silence()
            started = time.monotonic()
            ready = client.get("/readyz")
            assert ready.status_code == 503 and "did not answer within 2 s" in ready.json()["reason"]
            assert time.monotonic() - started < 3.5

            started = time.monotonic()
            first = client.get("/api/v1/tickets?q=a", headers=headers)
            assert first.status_code == 503 and first.headers["Retry-After"] == "30"
            assert "not answering" in first.json()["error"]["message"]
            assert time.monotonic() - started < 2.0  # answered at once or at the 1 s deadline, never minutes

            time.sleep(2.1)  # the breaker lets one request through: the deadline, then 2 s for a ping
            started = time.monotonic()
            probe = client.get("/api/v1/tickets?q=b", headers=headers)
            assert probe.status_code == 503 and "did not answer in time" in probe.json()["error"]["message"]
            assert 2.9 < time.monotonic() - started < 4.5
            assert client.get("/healthz").status_code == 200  # the process itself is fine

            proxy.resume()
            deadline = time.monotonic() + 15
            while client.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "the app did not recover after the store came back"
                time.sleep(0.2)
            assert client.get("/api/v1/tickets", headers=headers).status_code == 200
    finally:
        engine.dispose()


def test_a_slow_request_keeps_its_time_while_the_store_answers() -> None:
    """Past its deadline a request is abandoned only if the store is silent too: a Verify that re-runs a
    slow ERP check, or a large webhook, is slow, not a store outage."""

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(0.6)
        await JSONResponse({"ok": True})(scope, receive, send)

    def client(answers: bool) -> TestClient:
        async def probe() -> bool:
            return answers

        breaker = StoreBreaker()
        return TestClient(StoreDeadlineMiddleware(slow_app, deadline_s=0.2, breaker=breaker, probe=probe))

    assert client(answers=True).get("/api/v1/tickets").json() == {"ok": True}
    refused = client(answers=False).get("/api/v1/tickets")
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "30"
