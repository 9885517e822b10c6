"""Alert storm: Alertmanager webhooks on loopback into a PostgreSQL store, against a bare FastAPI endpoint.

Both servers run under uvicorn with the same number of workers on 127.0.0.1, each on a fresh database
(``hc_bench_storm`` and ``hc_bench_raw``). The client posts Alertmanager v4 webhooks (``--batch`` alerts
each, as Alertmanager groups them) from ``--concurrency`` connections. Alerts are drawn from
``--distinct`` label sets, each alert a new firing episode (its own ``startsAt``), so most are deduplicated
onto an open ticket as an occurrence. At the end every alert must be accounted for: occurrences on the
Alertmanager tickets == alerts sent (a ticket's first sighting is an occurrence too), and the bare store
holds one row per webhook.

    .venv/bin/python bench/alert_storm.py --alerts 20000 --batch 10 --concurrency 16 --workers 2

Both servers get the same configuration, printed with the results: uvicorn ``--workers`` with uvloop and
httptools when installed, a pool of ``--pool`` connections per worker. The load generator is this
process (httpx, asyncio); ``--client-cpu N`` pins it to one CPU, and its share of the machine's CPU is
reported, as are the servers' and PostgreSQL's CPU milliseconds per alert (a figure the other jobs on a
shared machine do not distort as much as throughput).

Loopback only, bounded in count (``--alerts``) and time (``--timeout``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy.pool import NullPool

PG = os.environ.get("HYPERCARE_BENCH_PG", "postgresql+psycopg://root@127.0.0.1:5432")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


# --- the two apps (imported by the uvicorn workers) --------------------------------------------------------


def hypercare_app() -> Any:
    """The Hypercare app as ``hypercare serve`` builds it, with the benchmark's connection pool: one
    connection per request a worker may be serving (``BENCH_POOL_SIZE``), so no request waits for one or
    opens and closes an overflow connection (SQLAlchemy's default is 5 + 10 overflow)."""
    from core.session import make_engine
    from hypercare.app import build_app
    from hypercare.config import Settings

    settings = Settings()
    pool = int(os.environ.get("BENCH_POOL_SIZE", "5"))
    engine = make_engine(settings.store_url, pool_size=pool, max_overflow=pool // 2)
    return build_app(settings, engine)


def bare_app() -> Any:
    """POST /raw: parse the JSON body and insert it, nothing else."""
    from fastapi import FastAPI
    from sqlalchemy import create_engine, text

    pool = int(os.environ.get("BENCH_POOL_SIZE", "5"))
    engine = create_engine(
        os.environ["BENCH_RAW_URL"], pool_size=pool, max_overflow=pool // 2, pool_pre_ping=True
    )
    app = FastAPI()

    @app.post("/raw")
    def raw(payload: dict[str, Any]) -> dict[str, str]:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO raw_alert (body) VALUES (CAST(:body AS jsonb))"),
                {"body": json.dumps(payload)},
            )
        return {"status": "ok"}

    return app


# --- set-up ---------------------------------------------------------------------------------------------


def fresh_database(name: str) -> str:
    from sqlalchemy import create_engine, text

    admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{PG}/{name}"


def prepare_hypercare(url: str) -> str:
    """Migrate the store and make an on-call user with a token that may post alerts."""
    from core.session import make_engine, session_factory, session_scope
    from hypercare.store import upgrade
    from tickets.auth import create_token, create_user

    engine = make_engine(url)
    upgrade(engine)
    with session_scope(session_factory(engine)) as session:
        user = create_user(session, "bench", secrets.token_urlsafe(16), "oncall")
        token = create_token(session, user, "bench")
    engine.dispose()
    return token


def prepare_raw(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE raw_alert (id bigserial PRIMARY KEY, body jsonb NOT NULL)"))
    engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_options() -> list[str]:
    """uvicorn's fastest event loop and HTTP parser when they are installed (what ``auto`` picks too)."""
    options = []
    if importlib.util.find_spec("uvloop") is not None:
        options += ["--loop", "uvloop"]
    if importlib.util.find_spec("httptools") is not None:
        options += ["--http", "httptools"]
    return options


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and their children (0 for any that is gone)."""
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for one in [proc, *proc.children(recursive=True)]:
                times = one.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


class BackendCpu:
    """CPU seconds of the PostgreSQL backends serving one database (the benchmark's own: other clients of
    a shared server do not count). Backends are sampled at the start and at the end; one that came and
    went in between (an overflow connection) is missed, so the figure is a floor."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine

        self.engine = create_engine(url, poolclass=NullPool)
        self.start = self._sample()

    def _sample(self) -> dict[int, float]:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            pids = conn.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).all()
        sample: dict[int, float] = {}
        for pid in pids:
            try:
                times = psutil.Process(pid).cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            sample[pid] = times.user + times.system
        return sample

    def seconds(self) -> float:
        end = self._sample()
        self.engine.dispose()
        return sum(cpu - self.start.get(pid, 0.0) for pid, cpu in end.items())


def serve(factory: str, workers: int, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        f"alert_storm:{factory}",
        "--factory",
        "--app-dir",
        str(HERE),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
        *server_options(),
    ]
    environment = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=environment)  # noqa: S603  (our interpreter, our arguments)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/docs", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"{factory} did not start on {url}")


# --- load -----------------------------------------------------------------------------------------------


def webhook(n: int, batch: int, distinct: int, t0: datetime) -> dict[str, Any]:
    alerts = []
    for i in range(batch):
        k = n * batch + i
        key = k % distinct
        labels = {
            "alertname": f"ErpCheck{key % 17}",
            "instance": f"erp-app-{key:04d}:8000",
            "severity": "warning",
            "team": "erp",
        }
        alerts.append(
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"ERP check {key} failing", "description": "bench"},
                "startsAt": (t0 + timedelta(milliseconds=k)).isoformat().replace("+00:00", "Z"),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example/graph",
                "fingerprint": f"{key:016x}",
            }
        )
    return {
        "version": "4",
        "groupKey": f'{{}}:{{n="{n}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "erp-oncall",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example",
        "alerts": alerts,
    }


async def storm(
    url: str,
    path: str,
    *,
    headers: dict[str, str],
    payloads: list[dict[str, Any]],
    concurrency: int,
    timeout: float,
) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for payload in payloads:  # serialised up front: the clock measures the servers, not json.dumps
        queue.put_nowait(json.dumps(payload).encode())
    headers = {**headers, "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                payload = queue.get_nowait()
                started = time.perf_counter()
                response = await client.post(path, content=payload)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    errors += 1
                    if errors <= 3:
                        print(f"  {response.status_code}: {response.text[:300]}", file=sys.stderr)

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout)
        return time.perf_counter() - started, latencies, errors


def _own_cpu() -> float:
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def pct(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000 if len(values) > 1 else 0.0
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import create_engine, text

    hc_url = fresh_database("hc_bench_storm")
    raw_url = fresh_database("hc_bench_raw")
    token = prepare_hypercare(hc_url)
    prepare_raw(raw_url)
    webhooks = args.alerts // args.batch
    t0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    payloads = [webhook(n, args.batch, args.distinct, t0) for n in range(webhooks)]
    # warm-up webhooks are new episodes too, started before the measured ones (as a storm's earlier
    # notifications are): the measured run has no replays, and each of its sightings is its ticket's latest
    warm = [webhook(-1 - n, args.batch, args.distinct, t0) for n in range(max(1, webhooks // 20))]
    sent = webhooks * args.batch
    results: dict[str, Any] = {
        "warm_up_alerts": len(warm) * args.batch,
        "alerts": sent,
        "webhooks": webhooks,
        "batch": args.batch,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "config": {
            "cpus": os.cpu_count(),
            "uvicorn": f"--workers {args.workers} {' '.join(server_options()) or '(asyncio, h11)'}",
            "pool_per_worker": f"{args.pool} + {args.pool // 2} overflow, pre-ping on",
            "client": f"httpx asyncio, {args.concurrency} connections, one process"
            + (f" pinned to CPU {args.client_cpu}" if args.client_cpu is not None else " (unpinned)"),
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
        },
    }
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            "HYPERCARE_DATABASE_URL": hc_url,
            "HYPERCARE_DATA_DIR": data_dir,
            "HYPERCARE_SECRET_KEY": secrets.token_urlsafe(40),
            "BENCH_RAW_URL": raw_url,
            "BENCH_POOL_SIZE": str(args.pool),
        }
        for name, factory, path, headers, db_url in (
            (
                "hypercare",
                "hypercare_app",
                "/api/v1/alertmanager",
                {"Authorization": f"Bearer {token}"},
                hc_url,
            ),
            ("bare", "bare_app", "/raw", {}, raw_url),
        ):
            proc, url = serve(factory, args.workers, env)
            try:
                asyncio.run(
                    storm(
                        url,
                        path,
                        headers=headers,
                        payloads=warm,
                        concurrency=args.concurrency,
                        timeout=args.timeout,
                    )
                )
                if args.client_cpu is not None:
                    os.sched_setaffinity(0, {args.client_cpu})
                server0, pg, client0 = cpu_seconds([proc.pid]), BackendCpu(db_url), _own_cpu()
                wall, latencies, errors = asyncio.run(
                    storm(
                        url,
                        path,
                        headers=headers,
                        payloads=payloads,
                        concurrency=args.concurrency,
                        timeout=args.timeout,
                    )
                )
                server_cpu = cpu_seconds([proc.pid]) - server0
                pg_cpu, client_cpu = pg.seconds(), _own_cpu() - client0
            finally:
                os.sched_setaffinity(0, range(os.cpu_count() or 1))
                proc.terminate()
                proc.wait(20)
            results[name] = {
                "wall_s": round(wall, 2),
                "alerts_per_s": round(sent / wall),
                "webhooks_per_s": round(webhooks / wall),
                "p50_ms": round(pct(latencies, 50), 1),
                "p99_ms": round(pct(latencies, 99), 1),
                "errors": errors,
                # CPU per alert, whatever else ran on the machine: what 2 cores could sustain
                "server_cpu_ms_per_alert": round(1000 * server_cpu / sent, 3),
                "postgres_cpu_ms_per_alert": round(1000 * pg_cpu / sent, 3),
                "client_cpu_share": f"{100 * client_cpu / wall / (os.cpu_count() or 1):.0f}% of the machine",
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
            }
    hc = create_engine(hc_url)
    with hc.connect() as conn:
        tickets = conn.scalar(text("SELECT count(*) FROM ticket WHERE fingerprint LIKE 'am-%'"))
        occurrences = conn.scalar(
            text(
                "SELECT count(*) FROM occurrence o JOIN ticket t ON t.id = o.ticket_id"
                " WHERE t.fingerprint LIKE 'am-%'"
            )
        )
        counted = conn.scalar(
            text("SELECT coalesce(sum(occurrence_count), 0) FROM ticket WHERE fingerprint LIKE 'am-%'")
        )
    hc.dispose()
    raw = create_engine(raw_url)
    with raw.connect() as conn:
        raw_rows = conn.scalar(text("SELECT count(*) FROM raw_alert"))
    raw.dispose()
    results["hypercare"].update(
        tickets=tickets,
        occurrences=occurrences,
        occurrence_count_sum=counted,
        lost=sent + len(warm) * args.batch - int(occurrences or 0),
        counts_agree=occurrences == counted,
    )
    results["bare"].update(rows=raw_rows, lost=webhooks + len(warm) - int(raw_rows or 0))
    results["ratio_hypercare_to_bare"] = round(
        results["hypercare"]["alerts_per_s"] / results["bare"]["alerts_per_s"], 2
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=10, help="alerts per webhook")
    parser.add_argument("--distinct", type=int, default=200, help="distinct alert label sets (tickets)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--pool", type=int, default=10, help="connections per worker (pool_size)")
    parser.add_argument("--client-cpu", type=int, help="pin the load generator to this CPU")
    args = parser.parse_args()
    if args.alerts > 200_000:
        raise SystemExit("--alerts is bounded to 200,000")
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
