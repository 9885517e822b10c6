"""Seconds from resolving a ticket to its "resolved" notification arriving at the on-call's receiver.

The served app (``hypercare.app.build_app``: API + the outbox delivery loop) runs under uvicorn on a
loopback port over a fresh SQLite store; one notification target is apprise's ``json://`` to a local HTTP
receiver that timestamps what it gets. For each of ``--runs`` tickets: open it (through the service), wait
for its "opened" page, wait a random part of a delivery tick (so resolves do not line up with the loop),
then ``POST /api/v1/tickets/{id}/resolve`` over HTTP and time until the "Resolved" message arrives.

A request that writes a pending notification wakes the server's delivery loop at once
(``tickets.notify.on_new_notifications``), so the figure no longer depends on
``notifications.dispatch_interval_s`` (``--interval``, 30 s by default), which remains the retry tick and
the pace for notifications written by other processes (the collectors). ``--direct`` times the delivery
path alone: resolve through the service, then one ``dispatch_pending`` at once (commit -> outbox ->
apprise -> receiver).

    .venv/bin/python bench/resolve_notification.py --runs 10 --interval 5
    .venv/bin/python bench/resolve_notification.py --runs 20 --direct

Loopback only; bounded by ``--runs`` and a 120 s wait per message.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from sqlalchemy.orm import Session, sessionmaker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.session import make_engine, session_factory, session_scope  # noqa: E402
from hypercare.app import build_app  # noqa: E402
from hypercare.config import Settings  # noqa: E402
from hypercare.serving import BackgroundServer, free_port  # noqa: E402
from hypercare.store import upgrade  # noqa: E402
from tests.tickets.factories import make_event  # noqa: E402
from tickets.audit_chain import use_keyring  # noqa: E402
from tickets.audit_keys import keyring_for  # noqa: E402
from tickets.auth import create_token, create_user  # noqa: E402
from tickets.notify import build_notifier, dispatch_pending  # noqa: E402
from tickets.service import TicketService  # noqa: E402

WAIT_S = 120.0


class Receiver:
    """Records (arrival time, title) of every message apprise posts to it."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str]] = []
        self.lock = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                at = time.perf_counter()
                with sink.lock:
                    sink.arrivals.append((at, json.loads(body)["title"]))
                    sink.lock.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/oncall"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, prefix: str) -> float:
        deadline = time.perf_counter() + WAIT_S
        with self.lock:
            while True:
                for at, title in self.arrivals:
                    if title.startswith(prefix):
                        return at
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise TimeoutError(f"no message {prefix!r} within {WAIT_S:g} s")
                self.lock.wait(left)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--interval", type=float, default=30.0, help="notifications.dispatch_interval_s")
    parser.add_argument("--direct", action="store_true", help="time the delivery path alone (no loop)")
    args = parser.parse_args()

    receiver = Receiver()
    with tempfile.TemporaryDirectory(prefix="hc-bench-resolve-") as tmp:
        port = free_port()
        settings = Settings(
            data_dir=Path(tmp),
            server={"host": "127.0.0.1", "port": port},
            notifications={
                "targets": [{"url": receiver.url, "min_priority": "P4"}],
                "dispatch_interval_s": args.interval,
            },
        )
        use_keyring(keyring_for(settings))  # the audit trail's key, generated in the temporary directory
        engine = make_engine(settings.store_url)
        upgrade(engine)
        factory = session_factory(engine)
        with session_scope(factory) as session:
            user = create_user(session, "oncall", "bench-password-1", "oncall")
            token = create_token(session, user, "bench")
        latencies = run_direct(settings, factory, receiver, args.runs) if args.direct else []
        if not args.direct:
            with BackgroundServer(build_app(settings), port=port) as url:
                latencies = run_served(
                    settings, factory=factory, receiver=receiver, url=url, token=token, args=args
                )
        engine.dispose()
    receiver.server.shutdown()
    mode = (
        "direct (one dispatch right after the resolve)"
        if args.direct
        else f"served, interval {args.interval:g} s"
    )
    print(f"resolve -> resolved notification at the receiver, {mode}, {len(latencies)} runs:")
    print(
        f"  median {statistics.median(latencies):.3f} s, "
        f"p95 {sorted(latencies)[max(0, round(0.95 * len(latencies)) - 1)]:.3f} s, "
        f"min {min(latencies):.3f} s, max {max(latencies):.3f} s"
    )


def open_ticket(settings: Settings, factory: sessionmaker[Session], n: int) -> int:
    with session_scope(factory) as session:
        event = make_event(fingerprint=f"bench-{n}", summary=f"Bench ticket {n}", p1=True)
        ticket = TicketService(session, settings).ingest(event).ticket
        assert ticket is not None
        return ticket.id


def run_served(
    settings: Settings,
    *,
    factory: sessionmaker[Session],
    receiver: Receiver,
    url: str,
    token: str,
    args: argparse.Namespace,
) -> list[float]:
    latencies = []
    rng = random.Random(16)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for n in range(args.runs):
            ticket_id = open_ticket(settings, factory, n)
            receiver.wait_for(f"[P1] Opened: Bench ticket {n}")
            time.sleep(rng.uniform(0, min(args.interval, 10)))
            started = time.perf_counter()
            answer = client.post(f"/api/v1/tickets/{ticket_id}/resolve", json={"reason": "bench"})
            answer.raise_for_status()
            latencies.append(receiver.wait_for(f"[P1] Resolved: Bench ticket {n}") - started)
            print(f"  run {n + 1}: {latencies[-1]:.3f} s", flush=True)
    return latencies


def run_direct(
    settings: Settings, factory: sessionmaker[Session], receiver: Receiver, runs: int
) -> list[float]:
    notifier = build_notifier(settings)
    latencies = []
    for n in range(runs):
        ticket_id = open_ticket(settings, factory, n)
        dispatch_pending(factory, notifier, settings)
        started = time.perf_counter()
        with session_scope(factory) as session:
            TicketService(session, settings).resolve(ticket_id, "oncall", "bench")
        dispatch_pending(factory, notifier, settings)
        latencies.append(receiver.wait_for(f"[P1] Resolved: Bench ticket {n}") - started)
    return latencies


if __name__ == "__main__":
    main()
