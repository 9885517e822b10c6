"""Alert storm: Alertmanager webhooks on loopback into a PostgreSQL store, against a bare FastAPI endpoint.

Both servers run under uvicorn with the same number of workers on 127.0.0.1, each on a fresh database
(``hc_bench_storm`` and ``hc_bench_raw``). The client posts Alertmanager v4 webhooks (``--batch`` alerts
each, as Alertmanager groups them) from ``--concurrency`` connections. Alerts are drawn from
``--distinct`` label sets, each alert a new firing episode (its own ``startsAt``), so most are deduplicated
onto an open ticket as an occurrence. At the end every alert must be accounted for: occurrences on the
Alertmanager tickets == alerts sent (a ticket's first sighting is an occurrence too), and the bare store
holds one row per webhook.

    .venv/bin/python bench/alert_storm.py --alerts 20000 --batch 10 --concurrency 16 --workers 2

Loopback only, bounded in count (``--alerts``) and time (``--timeout``).
"""

from __future__ import annotations

import argparse
import asyncio
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

PG = os.environ.get("HYPERCARE_BENCH_PG", "postgresql+psycopg://root@127.0.0.1:5432")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


# --- the two apps (imported by the uvicorn workers) --------------------------------------------------------


def hypercare_app() -> Any:
    from hypercare.config import Settings
    from tickets.api import create_app

    return create_app(Settings())


def bare_app() -> Any:
    """POST /raw: parse the JSON body and insert it, nothing else."""
    from fastapi import FastAPI
    from sqlalchemy import create_engine, text

    engine = create_engine(os.environ["BENCH_RAW_URL"], pool_size=10, max_overflow=10)
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
    from hypercare.store import make_engine, session_factory, session_scope, upgrade
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
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for payload in payloads:
        queue.put_nowait(payload)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                payload = queue.get_nowait()
                started = time.perf_counter()
                response = await client.post(path, json=payload)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    errors += 1
                    if errors <= 3:
                        print(f"  {response.status_code}: {response.text[:300]}", file=sys.stderr)

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout)
        return time.perf_counter() - started, latencies, errors


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
    # warm-up webhooks are new episodes too (past the measured ones), so the measured run has no replays
    warm = [webhook(webhooks + n, args.batch, args.distinct, t0) for n in range(max(1, webhooks // 20))]
    sent = webhooks * args.batch
    results: dict[str, Any] = {
        "warm_up_alerts": len(warm) * args.batch,
        "alerts": sent,
        "webhooks": webhooks,
        "batch": args.batch,
        "concurrency": args.concurrency,
        "workers": args.workers,
    }
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            "HYPERCARE_DATABASE_URL": hc_url,
            "HYPERCARE_DATA_DIR": data_dir,
            "HYPERCARE_SECRET_KEY": secrets.token_urlsafe(40),
            "BENCH_RAW_URL": raw_url,
        }
        for name, factory, path, headers in (
            ("hypercare", "hypercare_app", "/api/v1/alertmanager", {"Authorization": f"Bearer {token}"}),
            ("bare", "bare_app", "/raw", {}),
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
            finally:
                proc.terminate()
                proc.wait(20)
            results[name] = {
                "wall_s": round(wall, 2),
                "alerts_per_s": round(sent / wall),
                "webhooks_per_s": round(webhooks / wall),
                "p50_ms": round(pct(latencies, 50), 1),
                "p99_ms": round(pct(latencies, 99), 1),
                "errors": errors,
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
    args = parser.parse_args()
    if args.alerts > 200_000:
        raise SystemExit("--alerts is bounded to 200,000")
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
