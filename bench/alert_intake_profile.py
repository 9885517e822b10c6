"""Where an Alertmanager alert's CPU goes: the intake route in-process, on PostgreSQL, one thread.

The same webhooks as ``bench/alert_storm.py`` (its ``webhook``), posted in turn to
``POST /api/v1/alertmanager`` of the app ``hypercare serve`` builds, through httpx's ASGI transport (no
sockets, no uvicorn). FastAPI's thread pool is bypassed (the sync route and its dependencies run on the
calling thread), so the figures and the optional profile see the whole request in one thread. Reported
per alert, after a warm-up that opens the tickets:

- this process's CPU (the route, FastAPI, and the in-process client, which is small);
- the PostgreSQL backend's CPU by statement (the backend's CPU time read before and after each statement:
  tick-based, so only the sum over many statements is meaningful) and at COMMIT;
- with ``--profile``, pyinstrument's tree of the measured webhooks (wall clock: the waits on PostgreSQL
  show as ``Connection.wait``).

    .venv/bin/python bench/alert_intake_profile.py --webhooks 200 --batch 50

On a shared machine the CPU per alert moves less than the throughput, but it still moves (a busy
machine's caches): compare two versions in the same minute, best of several runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastapi.concurrency
import fastapi.dependencies.utils
import fastapi.routing
import httpx
import psutil
from sqlalchemy import event
from sqlalchemy.engine import Connection

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import alert_storm  # noqa: E402  (this directory's benchmark: the same webhooks and set-up)


async def _inline(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


@asynccontextmanager
async def _inline_context(manager: AbstractContextManager[Any]) -> AsyncIterator[Any]:
    with manager as value:
        yield value


def run_on_this_thread() -> None:
    """FastAPI runs sync routes and dependencies in a thread pool; here on the event loop's thread."""
    for module in (fastapi.routing, fastapi.dependencies.utils, fastapi.concurrency):
        if hasattr(module, "run_in_threadpool"):
            module.run_in_threadpool = _inline  # type: ignore[attr-defined]
        if hasattr(module, "contextmanager_in_threadpool"):
            module.contextmanager_in_threadpool = _inline_context  # type: ignore[attr-defined]


class BackendCpu:
    """The CPU time of the store's backend spent in each statement (and in COMMIT), summed by statement."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.on = False

    @staticmethod
    def _cpu(conn: Connection) -> float:
        pid = conn.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)

    def install(self, engine: Any) -> None:
        @event.listens_for(engine, "before_cursor_execute")
        def before(conn: Connection, *_: Any) -> None:
            if self.on:
                conn.info["bench_cpu"] = self._cpu(conn)

        @event.listens_for(engine, "after_cursor_execute")
        def after(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
            if self.on and "bench_cpu" in conn.info:
                key = re.sub(r"\s+", " ", statement).strip()[:70]
                self.seconds[key] += self._cpu(conn) - conn.info.pop("bench_cpu")
                self.calls[key] += 1

        @event.listens_for(engine, "commit")
        def commit(conn: Connection) -> None:
            if self.on:
                conn.info["bench_commit"] = self._cpu(conn)

        @event.listens_for(engine, "begin")  # COMMIT's CPU, read when the connection is next used
        def begin(conn: Connection) -> None:
            if self.on and "bench_commit" in conn.info:
                self.seconds["COMMIT (and what the pool does before the next transaction)"] += self._cpu(
                    conn
                ) - conn.info.pop("bench_commit")
                self.calls["COMMIT (and what the pool does before the next transaction)"] += 1

    def rows(self, alerts: int) -> Iterator[str]:
        for key, seconds in sorted(self.seconds.items(), key=lambda kv: -kv[1]):
            yield f"  {1e6 * seconds / alerts:7.1f} us  {self.calls[key]:5d}x  {key}"


async def measure(
    app: Any,
    headers: dict[str, str],
    warm: list[str],
    bodies: list[str],
    backend: BackendCpu,
    *,
    profile: bool,
) -> tuple[float, Any]:
    """Post the warm-up, then the measured webhooks; this process's CPU seconds over the latter."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:

        async def post(body: str) -> None:
            response = await client.post("/api/v1/alertmanager", content=body, headers=headers)
            if response.status_code != 200:
                raise SystemExit(f"{response.status_code}: {response.text[:300]}")

        for body in warm:
            await post(body)
        profiler = None
        if profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005, async_mode="disabled")
            profiler.start()
        backend.on = True
        started = time.process_time()
        for body in bodies:
            await post(body)
        cpu = time.process_time() - started
        backend.on = False
        if profiler is not None:
            profiler.stop()
        return cpu, profiler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=200)
    parser.add_argument("--batch", type=int, default=50, help="alerts per webhook")
    parser.add_argument("--distinct", type=int, default=200, help="distinct alert label sets (tickets)")
    parser.add_argument("--profile", action="store_true", help="print pyinstrument's tree")
    args = parser.parse_args()
    if args.webhooks * args.batch > 200_000:
        raise SystemExit("--webhooks x --batch is bounded to 200,000 alerts")
    run_on_this_thread()
    url = alert_storm.fresh_database("hc_bench_intake_profile")
    token = alert_storm.prepare_hypercare(url)
    t0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    n, batch = args.webhooks, args.batch
    warm = [json.dumps(alert_storm.webhook(-1 - k, batch, args.distinct, t0)) for k in range(max(4, n // 20))]
    bodies = [json.dumps(alert_storm.webhook(k, batch, args.distinct, t0)) for k in range(n)]
    with tempfile.TemporaryDirectory() as data_dir:
        os.environ.update(
            HYPERCARE_DATABASE_URL=url,
            HYPERCARE_DATA_DIR=data_dir,
            HYPERCARE_SECRET_KEY=secrets.token_urlsafe(40),
        )
        from core.session import make_engine
        from hypercare.app import build_app
        from hypercare.config import Settings

        engine = make_engine(url)
        backend = BackendCpu()
        backend.install(engine)
        app = build_app(Settings(), engine)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        cpu, profiler = asyncio.run(measure(app, headers, warm, bodies, backend, profile=args.profile))
        engine.dispose()
    alerts = n * batch
    print(f"{alerts} alerts in {n} webhooks of {batch}, {args.distinct} distinct (after a warm-up)")
    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"this process (route, FastAPI, in-process client): {1000 * cpu / alerts:.3f} ms CPU per alert")
    total = sum(backend.seconds.values())
    print(f"PostgreSQL backend: {1000 * total / alerts:.3f} ms CPU per alert, by statement:")
    for row in backend.rows(alerts):
        print(row)
    if profiler is not None:
        print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
