"""The demo ERP check pack on PostgreSQL: Hypercare against the limit (psql running the same SQL), in one run.

    .venv/bin/python bench/checks_vs_psql.py [--scale 10] [--workers 4] [--rounds 3] [--skip-build]

Builds the demo ERP at ``--scale`` (1 = ~100k journal lines; 100 = ~10M, about 5 minutes) into the
PostgreSQL database ``--database`` on ``--pg-url``, then times the whole ``demo_erp`` pack:

* **limit** — the same SQL statements, bound parameters rendered as literals, run back to back by one
  ``psql`` process (each in a read-only transaction, as Hypercare runs them), output discarded;
* **engine, sequential** — ``monitor.collect.collect``: Hypercare's check engine alone, one check after the
  other (connect, read-only transaction, statement timeout, fetch, build results);
* **scheduler, sequential** — ``hypercare collect --once`` in-process with 1 worker: leases, the engine,
  and the full pipeline (results, events, tickets stored in a fresh SQLite store);
* **scheduler, concurrent** — the same with ``--workers`` threads and per-source concurrency.

One warm-up pass (psql) fills the caches first; then ``--rounds`` rounds run the modes round-robin and
the median of each mode counts.
Overhead is against the limit; rows scanned per second come from ``pg_stat_user_tables``
(``seq_tup_read + idx_tup_fetch`` deltas over the mode's rounds).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Date, DateTime, Numeric, bindparam, create_engine, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL, make_url

from core.session import make_engine, session_factory
from hypercare.config import Settings
from hypercare.demo.builder import build_demo_erp
from hypercare.pipeline import scheduler_processor
from hypercare.store import upgrade
from monitor.checks import CheckSpec, bound_parameters, load_pack
from monitor.collect import collect
from monitor.scheduler import Scheduler, build_units

TIMEOUT_S = 3600.0


def literal_sql(spec: CheckSpec, now: datetime) -> str:
    """The check's SQL with its bound parameters rendered as PostgreSQL literals (what psql will run)."""
    values = bound_parameters(spec, now)
    stmt = text(spec.sql)
    binds = []
    for name in stmt.compile().params:
        value = values[name]
        kind: Any = None
        if isinstance(value, datetime):
            kind = DateTime()
        elif isinstance(value, date):
            kind = Date()
        elif isinstance(value, Decimal):
            kind = Numeric()
        binds.append(bindparam(name, value, type_=kind))
    compiled = stmt.bindparams(*binds).compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    return str(compiled).strip().rstrip(";")


def psql_script(specs: list[CheckSpec], now: datetime) -> str:
    parts = []
    for spec in specs:
        parts.append(
            "BEGIN;\nSET TRANSACTION READ ONLY;\n"
            f"SET LOCAL statement_timeout = {int(TIMEOUT_S * 1000)};\n"
            f"{literal_sql(spec, now)};\nROLLBACK;\n"
        )
    return "".join(parts)


def psql_command(url: URL, script: Path) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    cmd = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-o", os.devnull, "-f", str(script)]
    cmd += ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-d", str(url.database)]
    if url.username:
        cmd += ["-U", url.username]
    return cmd, env


def rows_scanned(url: str) -> int:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT COALESCE(SUM(seq_tup_read + COALESCE(idx_tup_fetch, 0)), 0)"
                        " FROM pg_stat_user_tables"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


def measure(modes: list[tuple[str, Callable[[], None]]], rounds: int, erp_url: str) -> list[dict[str, Any]]:
    """Run the modes round-robin (so load on a shared machine hits them alike); median wall time each."""
    times: dict[str, list[float]] = {label: [] for label, _ in modes}
    scanned: dict[str, list[int]] = {label: [] for label, _ in modes}
    for round_ in range(1, rounds + 1):
        for label, run in modes:
            before = rows_scanned(erp_url)
            t0 = time.perf_counter()
            run()
            times[label].append(time.perf_counter() - t0)
            time.sleep(1.0)  # backends flush their table statistics when they end; give the last one a moment
            scanned[label].append(rows_scanned(erp_url) - before)
            print(f"  round {round_}: {label}: {times[label][-1]:.2f}s", flush=True)
    return [
        {
            "label": label,
            "seconds": statistics.median(times[label]),
            "rows": statistics.median(scanned[label]),
        }
        for label, _ in modes
    ]


def scheduler_pass(erp_url: str, workers: int, workdir: Path) -> Callable[[], None]:
    template = workdir / f"store-template-{workers}.db"
    template_engine = make_engine(f"sqlite:///{template}")
    upgrade(template_engine)  # migrations once, outside the timing; each round gets a fresh copy
    template_engine.dispose()

    def run() -> None:
        store = workdir / f"store-{workers}-{time.monotonic_ns()}.db"
        shutil.copyfile(template, store)
        settings = Settings(
            data_dir=workdir,
            database_url=f"sqlite:///{store}",
            sources={"erp": {"url": erp_url, "statement_timeout_s": TIMEOUT_S}},
            checks={"packs": ["demo_erp"]},
            collectors={"host": {"enabled": False}},
            scheduler={
                "workers": workers,
                "per_source_concurrency": workers,
                "jitter_ratio": 0,
                "tick_s": 0.05,
            },
        )
        engine = make_engine(settings.store_url)
        factory = session_factory(engine)

        with httpx.Client() as client:
            units = build_units(settings, load_pack("demo_erp"), http_client=client)
            scheduler = Scheduler(settings, factory, units, scheduler_processor(settings, factory), seed=1)
            summary = scheduler.run(threading.Event(), once=True)
        engine.dispose()
        if summary.statuses.get("error"):
            raise SystemExit(f"{summary.statuses['error']} check(s) errored: {summary.statuses}")

    return run


def main() -> None:  # noqa: PLR0915 - one linear script: build, four timed modes, the table
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=10.0, help="1 = ~100k journal lines; 100 = ~10M")
    parser.add_argument("--workers", type=int, default=4, help="threads of the concurrent run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per mode (the median counts)")
    parser.add_argument("--pg-url", default="postgresql+psycopg://root@127.0.0.1:5432/postgres")
    parser.add_argument("--database", default="hc_bench_erp", help="the ERP database (dropped and rebuilt)")
    parser.add_argument("--skip-build", action="store_true", help="reuse the ERP built by a previous run")
    args = parser.parse_args()
    if shutil.which("psql") is None:
        raise SystemExit("psql is not installed (Debian: postgresql-client)")

    admin_url = make_url(args.pg_url)
    erp = admin_url.set(database=args.database)
    erp_url = erp.render_as_string(hide_password=False)
    workdir = Path(tempfile.mkdtemp(prefix="hc-bench-"))
    try:
        if not args.skip_build:
            admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{args.database}"'))
            admin.dispose()
            t0 = time.perf_counter()
            built = build_demo_erp(workdir / "erp", scale=args.scale, erp_url=erp_url)
            lines = built.counts.get("journal_line", 0)
            print(
                f"built the demo ERP: {lines:,} journal lines in {time.perf_counter() - t0:.0f}s", flush=True
            )
        specs = load_pack("demo_erp")
        now = datetime.now(UTC)
        script = workdir / "pack.sql"
        script.write_text(psql_script(specs, now), encoding="utf-8")
        cmd, env = psql_command(erp, script)

        def limit() -> None:
            subprocess.run(cmd, env=env, check=True)  # noqa: S603 - our own psql command line

        settings = Settings(
            data_dir=workdir,
            sources={"erp": {"url": erp_url, "statement_timeout_s": TIMEOUT_S}},
            checks={"packs": ["demo_erp"]},
        )

        def engine_only() -> None:
            collection = collect(settings, specs, now=now)
            if collection.count("error"):
                raise SystemExit([r.error for r in collection.results if r.error])

        print(f"{len(specs)} checks; warm-up pass (psql)...", flush=True)
        limit()
        modes = [
            ("limit: psql, same SQL back to back", limit),
            ("Hypercare engine, sequential", engine_only),
            ("Hypercare scheduler, 1 worker", scheduler_pass(erp_url, 1, workdir)),
            (f"Hypercare scheduler, {args.workers} workers", scheduler_pass(erp_url, args.workers, workdir)),
        ]
        rows = measure(modes, args.rounds, erp_url)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    base = rows[0]["seconds"]
    print()
    print(f"{'mode':44} {'wall s':>8} {'vs limit':>9} {'rows scanned':>14} {'rows/s':>12}")
    for row in rows:
        overhead = (row["seconds"] - base) / base * 100
        rate = row["rows"] / row["seconds"] if row["seconds"] else 0
        shown = "limit" if row is rows[0] else f"{overhead:+.1f}%"
        print(f"{row['label']:44} {row['seconds']:8.2f} {shown:>9} {row['rows']:14,.0f} {rate:12,.0f}")
    speedup = rows[2]["seconds"] / rows[3]["seconds"]
    print(f"\nconcurrency speed-up ({args.workers} workers vs 1): {speedup:.2f}x")


if __name__ == "__main__":
    main()
