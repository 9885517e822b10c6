"""Queue page and list API under load: 100,000 tickets in PostgreSQL, wrk with 50 connections on loopback.

Builds ``--database`` (default ``hc_bench_queue``; migrated, then ``--tickets`` tickets: 10% open, the
rest resolved or closed, spread over priorities, categories, sources, queues and assignees, with SLA
deadlines), serves Hypercare with uvicorn ``--workers`` on 127.0.0.1, logs in for a session cookie and
makes an API token, then runs wrk against each scenario for ``--duration`` seconds (after ``--warmup``
seconds of the same load, not measured: each worker builds its cached responses once) and prints
requests/s and latency percentiles.
Meanwhile a writer changes one open ticket ``--writes-per-s`` times a second (default 5: agents working
while others browse; each change moves the tickets version as the app's writes do; 0 for read-only).

    apt-get install -y wrk
    .venv/bin/python bench/queue_load.py --tickets 100000 --connections 50 --duration 15 --workers 2

The configuration is printed with the results: uvicorn ``--workers`` with uvloop and httptools when
installed, ``--pool`` connections per worker (as many as the requests a worker may be serving at once),
wrk with one thread (``--wrk-cpu N`` pins it). Each scenario also reports the server's and PostgreSQL's
CPU milliseconds per request and wrk's share of the machine: on 2 shared cores, throughput and latency
move with whatever else runs, CPU per request much less.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alert_storm import (  # the shared loopback server helpers
    PG,
    BackendCpu,
    cpu_seconds,
    fresh_database,
    serve,
    server_options,
)

SCENARIOS = (
    ("floor: /healthz through the same middleware, no store", "/healthz", "none"),
    ("queue page, open, by priority", "/tickets", "cookie"),
    ("queue page, by SLA due", "/tickets?status=open&sort=sla_due", "cookie"),
    (
        "queue page, P2 data in queue finance",
        "/tickets?status=all&priority=P2&category=data&queue=finance",
        "cookie",
    ),
    ("queue page, text search", "/tickets?status=all&q=invoice+4711", "cookie"),
    # 应收账款 (accounts receivable), in 1 ticket of 6's evidence: a substring of the search text (no spaces)
    ("queue page, Chinese text search", "/tickets?status=all&q=" + quote("应收账款"), "cookie"),
    ("ticket page", "/tickets/{ticket_id}", "cookie"),
    # the same page while the writer changes that very ticket: every change rebuilds it (the worst case)
    ("ticket page, its ticket the one changing", "/tickets/{ticket_id}", "cookie"),
    ("API list, open, 50", "/api/v1/tickets?status=open&limit=50", "bearer"),
    ("API list, assignee + SLA sort", "/api/v1/tickets?status=open&assignee=agent1&sort=sla_due", "bearer"),
)
PASSWORD = "bench-password-42"  # noqa: S105  (a throwaway benchmark user on a throwaway database)


def populate(url: str, count: int) -> int:
    """``count`` tickets through SQLAlchemy Core (model defaults apply); returns an open ticket's id."""
    from sqlalchemy import insert, select, text

    from core.session import make_engine, session_factory, session_scope
    from hypercare.store import upgrade
    from tickets.auth import create_user
    from tickets.models import Ticket, TicketSearchText

    engine = make_engine(url)
    upgrade(engine)
    with session_scope(session_factory(engine)) as session:
        users = [create_user(session, f"agent{n}", PASSWORD, "agent").id for n in range(5)]
    rng = random.Random(7)
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    words = ("invoice", "payment", "journal", "stock", "bank", "vendor", "posting", "period", "tax", "4711")
    accounts = ("应收账款", "应付账款", "银行存款", "库存商品", "应交税费", "主营业务收入")
    rows: list[dict[str, Any]] = []
    for n in range(count):
        is_open = n % 10 == 0
        created = now - timedelta(minutes=rng.randint(1, 60 * 24 * 90))
        priority = rng.choice(("P1", "P2", "P2", "P3", "P3", "P3", "P4"))
        status = (
            rng.choice(("new", "acknowledged", "in_progress", "waiting"))
            if is_open
            else rng.choice(("resolved", "closed"))
        )
        acknowledged = None if status == "new" else created + timedelta(minutes=20)
        rows.append(
            {
                "fingerprint": f"fp-{n}",
                "open_fingerprint": f"fp-{n}" if is_open else None,
                "title": f"{rng.choice(words).title()} {rng.choice(words)} check failed for doc {n}",
                "description": "",
                "status": status,
                "priority": priority,
                "impact": "medium",
                "urgency": "medium",
                "category": rng.choice(("data", "process", "technical", "user")),
                "source": rng.choice(("erp", "bank", "wms", "crm", "legacy", "alertmanager")),
                "check_id": f"check.{n % 300}",
                "queue": rng.choice(("hypercare", "finance", "logistics", "it-ops", "sales")),
                "assignee_id": rng.choice([None, None, *users]),
                "amount_at_risk": Decimal(rng.randint(0, 10**7)) / 100,
                "entity": {"doc": n},
                "search_text": f"doc={n} module=gl 科目={rng.choice(accounts)} 差额={rng.randint(1, 10**6)}",
                "labels": {"module": "gl"},
                "first_seen_at": created,
                "last_seen_at": created + timedelta(minutes=rng.randint(0, 600)),
                "created_at": created,
                "updated_at": created,
                "acknowledged_at": acknowledged,
                "resolved_at": None if is_open else created + timedelta(hours=5),
                "sla_response_due_at": created + timedelta(hours=4),
                "sla_resolution_due_at": created + timedelta(days=rng.randint(1, 10)),
                "sla_state": rng.choice(("ok", "ok", "at_risk", "breached")) if is_open else "met",
            }
        )
    texts = {row["fingerprint"]: row.pop("search_text") for row in rows}
    with engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(insert(Ticket), rows[start : start + 5000])
        found = conn.execute(select(Ticket.id, Ticket.fingerprint)).all()
        searched = [{"ticket_id": ticket_id, "text": texts[fp]} for ticket_id, fp in found if fp in texts]
        for start in range(0, len(searched), 5000):
            conn.execute(insert(TicketSearchText), searched[start : start + 5000])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE ticket"))
        conn.execute(text("VACUUM ANALYZE ticket_search_text"))
        some_open = conn.scalar(text("SELECT min(id) FROM ticket WHERE status = 'new'"))
    engine.dispose()
    return int(some_open or 1)


def credentials(url: str) -> tuple[str, str]:
    """A session cookie (logged in as agent0) and a bearer token."""
    with httpx.Client(base_url=url) as client:
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
        assert csrf is not None
        form = {"username": "agent0", "password": PASSWORD, "csrf": csrf.group(1), "next": "/tickets"}
        client.post("/login", data=form)
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    return cookie, ""


def wrk(url: str, header: str, connections: int, duration: int, cpu: int | None) -> dict[str, Any]:
    """wrk with one thread (an event loop in C: a small share of a core at these rates), pinned to
    ``cpu`` when given."""
    cmd = [
        *(["taskset", "-c", str(cpu)] if cpu is not None else []),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "--latency",
        "-H",
        header,
        url,
    ]
    out = subprocess.run(  # noqa: S603  (wrk with our own arguments)
        cmd, capture_output=True, text=True, timeout=duration + 30, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency: dict[str, float] = {}
    for label, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        latency[label] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": round(rps),
        "p50_ms": round(latency.get("50", 0), 1),
        "p90_ms": round(latency.get("90", 0), 1),
        "p99_ms": round(latency.get("99", 0), 1),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument(
        "--warmup",
        type=int,
        default=3,
        help="seconds of the same load before each measured run, discarded (fills each worker's cache)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", help="run only the scenarios whose name contains this")
    parser.add_argument("--pool", type=int, default=20, help="connections per worker (pool_size)")
    parser.add_argument("--wrk-cpu", type=int, help="pin wrk to this CPU")
    parser.add_argument(
        "--reuse-db", action="store_true", help="reuse --database when it holds --tickets tickets"
    )
    parser.add_argument(
        "--database",
        default="hc_bench_queue",
        help="the benchmark's database (dropped and rebuilt): a name of its own per concurrent run",
    )
    parser.add_argument(
        "--writes-per-s",
        type=float,
        default=5.0,
        help="meanwhile change one open ticket this often (agents working while others browse; 0: read-only)",
    )
    parser.add_argument(
        "--uncached",
        action="store_true",
        help="serve with the response caches off (HYPERCARE_SERVER__RESPONSE_CACHE=false)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    if args.tickets > 1_000_000 or args.duration > 120:
        raise SystemExit("bounded: at most 1,000,000 tickets and 120 s per scenario")
    ticket_id = reused(args.tickets, args.database) if args.reuse_db else None
    if ticket_id is None:
        url = fresh_database(args.database)
        ticket_id = populate(url, args.tickets)
    url = f"{PG}/{args.database}"
    settled = settle(url)
    results: dict[str, Any] = {
        "tickets": args.tickets,
        "connections": args.connections,
        "workers": args.workers,
        "response_cache": "off" if args.uncached else "on",
        "settled": settled,
        "ticket_changes_per_s": args.writes_per_s,
        "config": {
            "cpus": os.cpu_count(),
            "uvicorn": f"--workers {args.workers} {' '.join(server_options()) or '(asyncio, h11)'}",
            "pool_per_worker": f"{args.pool} + {args.pool // 2} overflow, pre-ping on",
            "warmup_s": args.warmup,
            "wrk": f"-t1 -c{args.connections}"
            + (f", pinned to CPU {args.wrk_cpu}" if args.wrk_cpu is not None else " (unpinned)"),
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
        },
    }
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            "HYPERCARE_DATABASE_URL": url,
            "HYPERCARE_DATA_DIR": data_dir,
            "HYPERCARE_SECRET_KEY": secrets.token_urlsafe(40),
            "BENCH_POOL_SIZE": str(args.pool),
            "HYPERCARE_SERVER__RESPONSE_CACHE": "false" if args.uncached else "true",
        }
        proc, base = serve("hypercare_app", args.workers, env)
        try:
            cookie, _ = credentials(base)
            token = make_token(url)
            for name, path, auth in SCENARIOS:
                if args.only and args.only not in name:
                    continue
                header = {
                    "cookie": f"Cookie: {cookie}",
                    "bearer": f"Authorization: Bearer {token}",
                    "none": "Accept: */*",
                }[auth]
                target = base + path.format(ticket_id=ticket_id)
                check = httpx.get(target, headers=dict([header.split(": ", 1)]), timeout=30)
                if check.status_code != 200:
                    raise SystemExit(f"{name}: {check.status_code} {check.text[:300]}")
                if args.warmup:
                    wrk(target, header, args.connections, args.warmup, args.wrk_cpu)
                server0, pg = cpu_seconds([proc.pid]), BackendCpu(url)
                wrk0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                focus = ticket_id if "the one changing" in name else None
                with Writer(url, args.writes_per_s, focus) as writer:
                    results[name] = figures = wrk(
                        target, header, args.connections, args.duration, args.wrk_cpu
                    )
                wrk1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                if args.writes_per_s:
                    figures["ticket_changes"] = writer.changes
                done = max(1, figures["rps"] * args.duration)
                figures["server_cpu_ms_per_req"] = round(1000 * (cpu_seconds([proc.pid]) - server0) / done, 2)
                figures["postgres_cpu_ms_per_req"] = round(1000 * pg.seconds() / done, 2)
                wrk_cpu = wrk1.ru_utime + wrk1.ru_stime - wrk0.ru_utime - wrk0.ru_stime
                figures["wrk_cpu_share"] = f"{100 * wrk_cpu / args.duration / (os.cpu_count() or 1):.1f}%"
                figures["load_average"] = [round(x, 2) for x in os.getloadavg()]
                print(name, figures, file=sys.stderr)
        finally:
            proc.terminate()
            proc.wait(20)
    print(json.dumps(results, indent=2))


class Writer:
    """A thread changing one open ticket (its last sighting) ``rate`` times a second through a Hypercare
    engine, so each change moves the tickets version and that ticket's page version (tickets/cache.py)
    and invalidates the cached responses that may show it. The ticket is drawn from 1,000 open ones, or
    is always ``focus``."""

    def __init__(self, url: str, rate: float, focus: int | None = None) -> None:
        self.url, self.rate, self.changes, self.focus = url, rate, 0, focus
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Writer:
        if self.rate > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        from sqlalchemy import func, select, update

        from core.session import make_engine
        from core.vocabulary import OPEN_STATUSES
        from tickets.cache import bump_version
        from tickets.models import Ticket

        engine = make_engine(self.url)
        with engine.connect() as conn:
            ids = list(conn.scalars(select(Ticket.id).where(Ticket.status.in_(OPEN_STATUSES)).limit(1000)))
        rng = random.Random(11)
        while not self._stop.wait(1 / self.rate):
            ticket_id = self.focus or rng.choice(ids)
            with engine.begin() as conn:
                conn.execute(update(Ticket).where(Ticket.id == ticket_id).values(last_seen_at=func.now()))
                # as the app does for a write on a bare connection that knows its tickets (tickets/cache.py)
                bump_version(conn, tickets=[ticket_id])
            self.changes += 1
        engine.dispose()


def settle(url: str) -> dict[str, int]:
    """Bring the store to the state a running server keeps it in: housekeeping passes (auto-close of
    tickets resolved long ago, escalation and SLA flags) until one changes nothing. The generated tickets
    span 90 days nobody served, so the server's own delivery loop would otherwise spend the measured
    seconds catching up (500 auto-closes per pass, each pass a new tickets version). Then the facet rows
    the load and the passes appended are folded, as a server's own writes fold them now and then."""
    from core.session import make_engine, session_factory
    from hypercare.config import Settings
    from tickets.audit_chain import use_keyring
    from tickets.audit_keys import Keyring
    from tickets.escalation import housekeeping
    from tickets.facets import compact_facets

    settings = Settings(database_url=url)
    use_keyring(Keyring({"bench": secrets.token_bytes(32)}, "a throwaway benchmark key"))  # auto-close audits
    engine = make_engine(url)
    totals = {"closed": 0, "escalated": 0, "passes": 0}
    try:
        while True:
            report = housekeeping(session_factory(engine), settings)
            totals["passes"] += 1
            totals["closed"] += report.closed
            totals["escalated"] += report.escalated
            if not (report.closed or report.escalated):
                with engine.begin() as conn:  # as a running server's writes keep them (tickets/cache.py)
                    compact_facets(conn)
                return totals
    finally:
        engine.dispose()


def reused(count: int, database: str) -> int | None:
    """An open ticket's id of the existing ``database`` if it holds ``count`` tickets, else None."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(f"{PG}/{database}")
    try:
        with engine.connect() as conn:
            if conn.scalar(text("SELECT count(*) FROM ticket")) != count:
                return None
            ticket_id = int(conn.scalar(text("SELECT min(id) FROM ticket WHERE status = 'new'")) or 1)
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()
    from core.session import make_engine
    from hypercare.store import upgrade

    store = make_engine(f"{PG}/{database}")
    upgrade(store)  # migrations added since it was built
    store.dispose()
    return ticket_id


def make_token(url: str) -> str:
    from core.session import make_engine, session_factory, session_scope
    from tickets.auth import create_token, get_user

    engine = make_engine(url)
    with session_scope(session_factory(engine)) as session:
        token = create_token(session, get_user(session, "agent0"), "bench")
    engine.dispose()
    return token


if __name__ == "__main__":
    main()
