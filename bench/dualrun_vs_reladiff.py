"""Dual-run keyed diff vs reladiff vs "the limit", on a ledger table: legacy in MariaDB, new in PostgreSQL.

    .venv/bin/python bench/dualrun_vs_reladiff.py                   # 1M, then 5M rows
    .venv/bin/python bench/dualrun_vs_reladiff.py --rows 50000000   # 50M rows
    .venv/bin/python bench/dualrun_vs_reladiff.py --phases        # one Hypercare run, phase by phase

The ledger (id, account, amount, posting_date, memo) is generated inside each database (PostgreSQL:
generate_series; MariaDB: the SEQUENCE engine), once per size; loading is not timed. The new copy gets a
known set of planted differences: changed amounts, deleted rows (missing in new), added rows (extra).

Timed side by side, each in its own process (wall time and the process's peak RSS):

* Hypercare's keyed diff (monitor.dualrun), both databases at once;
* reladiff (installed into bench/.venv-reladiff, never into the project), cross-database hashdiff;
* the native-hash limit ("native"): each database hashing its whole table with its cheapest native hash
  (PostgreSQL ``hashtextextended``, MariaDB ``CRC32``) over the same canonical text, COUNT(*) and SUM, one
  query each, both at once: the physical floor of reading and hashing both tables. The two hashes differ,
  so this row cannot compare anything: it is the floor a cross-engine comparison is measured against;
* the SHA-256 limit ("sha256"): the same, with the per-row hash the keyed diff uses (the first 64 bits of
  SHA-256, the same on both engines): what the keyed diff's own hashing costs, so the rest of the distance
  is its bisection and fetches (``--phases`` shows them);
* the MD5 limit ("md5"): the same with the first 64 bits of MD5, the only other digest both engines share
  (PostgreSQL ``md5``, MariaDB ``MD5``, the same hex): whether a cheaper common digest exists.

Each tool's found differences are checked against the planted ones. ``--repeat N`` (default 3) runs N
rounds, the contenders interleaved and their order rotated; the median, every run and the 1-minute load
average (before, and after each round) are printed: on a shared machine single runs mislead.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG = "postgresql+psycopg://root@127.0.0.1:5432/hc_bench"
MARIADB = "mysql+pymysql://root@127.0.0.1:3306/hc_bench"
VENV = ROOT / "bench" / ".venv-reladiff"
CHANGED = 40
MISSING = 20
EXTRA = 20


def planted(rows: int) -> tuple[set[int], set[int], set[int]]:
    step = rows // (CHANGED + MISSING + 1)
    changed = {7 + step * i for i in range(CHANGED)}
    missing = {11 + step * i + step // 2 for i in range(MISSING)}
    extra = {rows + 1 + i for i in range(EXTRA)}
    return changed, missing, extra


def _admin(url: str) -> None:
    parsed = make_url(url)
    server = parsed.set(database="postgres" if parsed.get_backend_name() == "postgresql" else "mysql")
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if parsed.get_backend_name() == "postgresql":
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}
            )
            if exists.first() is None:
                conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
        else:
            conn.execute(text(f"CREATE DATABASE IF NOT EXISTS `{parsed.database}`"))
    engine.dispose()


def _loaded(engine: Any) -> int | None:
    """Rows of the ledger already loaded (None: not loaded)."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT rows_ FROM ledger_meta")).scalar_one())
    except SQLAlchemyError:
        return None


def load(rows: int) -> None:
    changed, missing, extra = planted(rows)
    for url in (PG, MARIADB):
        _admin(url)
    pg = create_engine(PG)
    if _loaded(pg) != rows:
        with pg.begin() as conn:
            print(f"loading {rows:,} rows into PostgreSQL (new)...", flush=True)
            conn.execute(text("DROP TABLE IF EXISTS ledger, ledger_meta"))
            conn.execute(
                text(
                    "CREATE TABLE ledger (id bigint PRIMARY KEY, account varchar(12), amount numeric(14,2),"
                    " posting_date date, memo varchar(40))"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO ledger SELECT i, CAST(1000 + i % 50 AS varchar),"
                    " ((i * 7919) % 100000) / 100.0, DATE '2026-01-01' + CAST(i % 365 AS integer),"
                    " 'memo ' || (i % 1000)"
                    " FROM generate_series(CAST(1 AS bigint), :n) AS i"
                ),
                {"n": rows},
            )
            conn.execute(text(f"UPDATE ledger SET amount = amount + 1 WHERE id IN ({_ids(changed)})"))
            conn.execute(text(f"DELETE FROM ledger WHERE id IN ({_ids(missing)})"))
            conn.execute(
                text(
                    f"INSERT INTO ledger SELECT i, '9999', 1.00, DATE '2026-12-31', 'extra'"
                    f" FROM generate_series({min(extra)}, {max(extra)}) AS i"
                )
            )
            conn.execute(text("CREATE TABLE ledger_meta (rows_ bigint)"))
            conn.execute(text("INSERT INTO ledger_meta VALUES (:n)"), {"n": rows})
    with pg.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE ledger"))
    pg.dispose()
    maria = create_engine(MARIADB)
    if _loaded(maria) != rows:
        with maria.begin() as conn:
            print(f"loading {rows:,} rows into MariaDB (legacy)...", flush=True)
            conn.execute(text("DROP TABLE IF EXISTS ledger, ledger_meta"))
            conn.execute(
                text(
                    "CREATE TABLE ledger (id bigint PRIMARY KEY, account varchar(12), amount decimal(14,2),"
                    " posting_date date, memo varchar(40)) ENGINE=InnoDB"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO ledger SELECT seq, CAST(1000 + seq % 50 AS CHAR),"
                    " ((seq * 7919) % 100000) / 100.0, DATE '2026-01-01' + INTERVAL (seq % 365) DAY,"
                    " CONCAT('memo ', seq % 1000)"
                    f" FROM seq_1_to_{rows}"
                )
            )
            conn.execute(text("CREATE TABLE ledger_meta (rows_ bigint)"))
            conn.execute(text("INSERT INTO ledger_meta VALUES (:n)"), {"n": rows})
    maria.dispose()


def _ids(ids: set[int]) -> str:
    return ", ".join(str(i) for i in sorted(ids))


# --- the three contenders, each run in a child process -------------------------------------------------

COMPARISON = {
    "name": "bench",
    "legacy": "legacy",
    "new": "new",
    "entities": [
        {
            "name": "ledger",
            "legacy": {"table": "ledger"},
            "new": {"table": "ledger"},
            "key": [{"name": "id", "type": "integer"}],
            "columns": [
                {"name": "account"},
                {"name": "amount", "type": "decimal", "scale": 2, "money": True},
                {"name": "posting_date", "type": "date"},
                {"name": "memo"},
            ],
            "sample_limit": 1000,
        }
    ],
}


def child_hypercare() -> dict[str, Any]:
    from monitor.dualrun.model import ComparisonConfig
    from monitor.dualrun.runner import run_comparison
    from monitor.dualrun.sql import Source, dualrun_engine

    config = ComparisonConfig.model_validate(COMPARISON)
    legacy = Source("legacy", "legacy", dualrun_engine(MARIADB), 600)
    new = Source("new", "new", dualrun_engine(PG), 600)
    result = run_comparison(config, legacy, new)
    (entity,) = result.entities
    if entity.error:
        raise SystemExit(entity.error)
    kinds: dict[str, list[int]] = {"changed": [], "missing_in_new": [], "extra_in_new": []}
    for diff in entity.samples:
        kinds[diff.kind].append(int(diff.key["id"]))
    return {**{k: sorted(v) for k, v in kinds.items()}, "queries": entity.queries, "matched": entity.matched}


def child_limit(native: bool = False, md5: bool = False) -> dict[str, Any]:
    """One query per database, both at once: COUNT(*) and the sum of the keyed diff's own per-row hash
    (the same lean canonical text, the same planner settings), no grouping, no bisection. ``native``: each
    engine's cheapest native hash of that text instead; ``md5``: the first 64 bits of MD5 (the other
    digest both engines have, the same bits on both)."""
    from monitor.dualrun.model import ComparisonConfig
    from monitor.dualrun.normalise import concat, hash_sum, mod64, row_hash
    from monitor.dualrun.sql import Source, SourceQuery, dualrun_engine

    entity = ComparisonConfig.model_validate(COMPARISON).entities[0]

    def checksum(role: str, url: str) -> tuple[int, int]:
        source = Source(role, role, dualrun_engine(url), 600)  # type: ignore[arg-type]
        side = entity.legacy if role == "legacy" else entity.new
        q = SourceQuery(source, side)
        q.describe((*entity.key, *entity.columns))
        parts = [q.canon(c, lean=True) for c in (*entity.key, *entity.columns)]
        text_ = concat(parts, q.dialect)
        if native:
            total = (
                f"SUM(hashtextextended({text_}, 0))" if q.dialect == "postgresql" else f"SUM(CRC32({text_}))"
            )
        elif md5:
            total = (
                f"SUM(CAST(CAST('x' || left(md5({text_}), 16) AS bit(64)) AS bigint))"
                if q.dialect == "postgresql"
                else f"SUM(CAST(CONV(LEFT(MD5({text_}), 16), 16, 10) AS UNSIGNED))"
            )
        else:
            total = hash_sum(row_hash(text_, q.dialect), q.dialect)
        (count, value), *_ = q.fetch(f"SELECT COUNT(*), {total} FROM ledger", checksum=True)
        return int(count), mod64(value)

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.submit(checksum, "legacy", MARIADB), pool.submit(checksum, "new", PG)
        return {"legacy": a.result(), "new": b.result()}


def child_reladiff() -> dict[str, Any]:
    """Run reladiff's CLI (its own venv); report what it found and its peak RSS."""
    import resource

    exe = VENV / "bin" / "reladiff"
    cmd = [
        str(exe),
        "mysql://root@127.0.0.1:3306/hc_bench", "ledger",
        "postgresql://root@127.0.0.1:5432/hc_bench", "ledger",
        "-k", "id", "-c", "account", "-c", "amount", "-c", "posting_date", "-c", "memo",
        "-j", "2", "--json",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()
        raise SystemExit(tail[-1] if tail else f"reladiff exited {proc.returncode}")
    minus: set[int] = set()
    plus: set[int] = set()
    for raw in proc.stdout.splitlines():  # JSON lines: ["-", [id, ...]] (legacy) / ["+", [id, ...]] (new)
        if not raw.strip().startswith("["):
            continue
        sign, row = json.loads(raw)
        (minus if sign == "-" else plus).add(int(row[0]))
    return {
        "changed": sorted(minus & plus),
        "missing_in_new": sorted(minus - plus),
        "extra_in_new": sorted(plus - minus),
        "children_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def ensure_reladiff() -> str | None:
    """Install reladiff into bench/.venv-reladiff when absent; the reason when that is impossible."""
    if (VENV / "bin" / "reladiff").exists():
        return None
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)  # noqa: S603
        subprocess.run(  # noqa: S603
            [
                str(VENV / "bin" / "pip"),
                "install",
                "-q",
                "reladiff",
                "psycopg2-binary",
                "mysql-connector-python",
            ],
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        return f"cannot install reladiff into {VENV}: {exc}"
    return None


def _server_cpu() -> float | None:
    """CPU seconds used so far by every PostgreSQL and MariaDB process on this machine (exited PostgreSQL
    backends and parallel workers through the postmaster's children counters); None when /proc is not
    readable. Other users' queries count too: a delta is an upper bound of one contender's server CPU."""
    tick = os.sysconf("SC_CLK_TCK")
    total, seen = 0, False
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                head, _, rest = fh.read().rpartition(")")
        except OSError:
            continue
        name, fields = head.partition("(")[2], rest.split()
        if name not in {"postgres", "mariadbd", "mysqld"}:
            continue
        seen = True
        total += int(fields[11]) + int(fields[12])  # utime, stime (all threads)
        if name == "postgres" and _comm(fields[1]) != "postgres":  # the postmaster: its reaped children
            total += int(fields[13]) + int(fields[14])
    return total / tick if seen else None


def _comm(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="ascii", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _child(mode: str) -> tuple[dict[str, Any] | None, float, str]:
    """Run one contender in a fresh process: (what it found + its CPU, wall seconds, error)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = _server_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(  # noqa: S603
        [sys.executable, __file__, "--child", mode], capture_output=True, text=True, cwd=ROOT, check=False
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_after = _server_cpu()
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()
        return None, wall, tail[-1] if tail else f"exit {proc.returncode}"
    found: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    # the client: the child and everything it waited for (reladiff's CLI)
    found["client_cpu_s"] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    found["server_cpu_s"] = None if server is None or server_after is None else server_after - server
    return found, wall, ""


def phases() -> None:
    """One Hypercare run in this process, every connection set-up, query, fetch and the Python compare
    timed per thread (seconds from the start): where the time over the limit goes."""
    import threading
    from collections.abc import Iterator
    from contextlib import contextmanager

    from monitor.dualrun import keyed, sql

    start = time.perf_counter()
    events: list[tuple[float, float, str, str]] = []

    def record(what: str, t0: float) -> None:
        events.append((t0 - start, time.perf_counter() - start, threading.current_thread().name, what))

    execute, fetch, connect, compare = (
        sql.SourceQuery.execute,
        sql.SourceQuery.fetch,
        sql.Source.connect,
        keyed.compare_fetched,
    )

    def timed_execute(self: Any, conn: Any, text_: str, values: Any = None) -> Any:
        t0 = time.perf_counter()
        result = execute(self, conn, text_, values)
        record(f"{self.dialect} query {text_[:50]!r}", t0)
        return result

    def timed_fetch(self: Any, text_: str, values: Any = None, *, checksum: bool = False) -> Any:
        t0 = time.perf_counter()
        rows = fetch(self, text_, values, checksum=checksum)
        record(f"{self.dialect} fetched {len(rows)} rows (connection + query + transfer)", t0)
        return rows

    @contextmanager
    def timed_connect(self: Any, *, checksum: bool = False) -> Iterator[Any]:
        t0 = time.perf_counter()
        with connect(self, checksum=checksum) as conn:
            record(f"{self.dialect} connection + session set-up", t0)
            yield conn

    def timed_compare(*args: Any, **kwargs: Any) -> None:
        t0 = time.perf_counter()
        compare(*args, **kwargs)
        record("Python compare/classify", t0)

    sql.SourceQuery.execute = timed_execute  # type: ignore[method-assign,assignment]
    sql.SourceQuery.fetch = timed_fetch  # type: ignore[method-assign,assignment]
    sql.Source.connect = timed_connect  # type: ignore[method-assign]
    keyed.compare_fetched = timed_compare
    found = child_hypercare()
    print(f"{'from s':>7}{'to s':>7}{'took s':>8}  {'thread':<16}what")
    for t0, t1, thread, what in sorted(events):
        print(f"{t0:7.3f}{t1:7.3f}{t1 - t0:8.3f}  {thread:<16}{what}")
    print(f"total {time.perf_counter() - start:.3f} s; {found['queries']} queries")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--rows", type=int, nargs="+", default=[1_000_000, 5_000_000], help="Sizes, run one after the other."
    )
    parser.add_argument("--child", choices=["hypercare", "native", "sha256", "md5", "reladiff"])
    parser.add_argument(
        "--repeat", type=int, default=3, help="Rounds (contenders interleaved); the median is reported."
    )
    parser.add_argument("--skip-reladiff", action="store_true")
    parser.add_argument(
        "--phases", action="store_true", help="Time one Hypercare run phase by phase (data already loaded)."
    )
    args = parser.parse_args()
    if args.phases:
        phases()
        return
    if args.child:
        import resource

        children = {
            "hypercare": child_hypercare,
            "sha256": child_limit,
            "native": lambda: child_limit(native=True),
            "md5": lambda: child_limit(md5=True),
            "reladiff": child_reladiff,
        }
        t0 = time.perf_counter()
        found = children[args.child]()
        found["work_s"] = time.perf_counter() - t0
        found["peak_rss_mib"] = found.pop(
            "children_rss_mib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        )
        print(json.dumps(found))
        return
    for rows in args.rows:
        compare_at(rows, args.repeat, skip_reladiff=args.skip_reladiff)


def compare_at(rows: int, repeat: int, *, skip_reladiff: bool) -> None:
    """Load the ledger at this size (when not loaded yet) and run the contenders ``repeat`` rounds."""
    load(rows)
    changed, missing, extra = planted(rows)
    truth = {"changed": sorted(changed), "missing_in_new": sorted(missing), "extra_in_new": sorted(extra)}
    modes = ["native", "sha256", "md5", "hypercare"]
    problem = None if skip_reladiff else ensure_reladiff()
    if not skip_reladiff and problem is None:
        modes.append("reladiff")
    walls: dict[str, list[float]] = {m: [] for m in modes}
    rss: dict[str, float] = dict.fromkeys(modes, 0.0)
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    verdicts: dict[str, set[str]] = {m: set() for m in modes}
    loads = [os.getloadavg()[0]]
    for round_ in range(repeat):
        for mode in modes[round_ % len(modes) :] + modes[: round_ % len(modes)]:  # rotate the order
            got, _wall, error = _child(mode)
            if got is None:
                verdicts[mode].add(f"FAILED: {error}")
                continue
            if mode in {"sha256", "md5"}:
                verdict = "checksums differ, as they must" if got["legacy"] != got["new"] else "EQUAL?!"
            elif mode == "native":
                verdict = f"hashed {got['legacy'][0]:,} + {got['new'][0]:,} rows (engine-specific hashes)"
            else:
                wrong = [f"{k} {len(got[k])} (planted {len(truth[k])})" for k in truth if got[k] != truth[k]]
                verdict = "exactly the planted differences" if not wrong else "WRONG: " + ", ".join(wrong)
            verdicts[mode].add(verdict)
            walls[mode].append(got["work_s"])  # without the interpreter's start-up
            rss[mode] = max(rss[mode], got["peak_rss_mib"])
            if got["server_cpu_s"] is not None:
                cpu[mode].append(got["server_cpu_s"] + got["client_cpu_s"])
        loads.append(os.getloadavg()[0])
    _report(rows, repeat, walls=walls, rss=rss, verdicts=verdicts, loads=loads, cpu=cpu)
    if problem:
        print(f"reladiff: not run: {problem}")


def _report(
    rows: int,
    rounds: int,
    *,
    walls: dict[str, list[float]],
    rss: dict[str, float],
    verdicts: dict[str, set[str]],
    loads: list[float],
    cpu: dict[str, list[float]],
) -> None:
    shown_loads = ", ".join(f"{x:.1f}" for x in loads)
    print(
        f"\nledger: {rows:,} rows; planted: {CHANGED} changed, {MISSING} missing in new, "
        f"{EXTRA} extra in new (legacy MariaDB, new PostgreSQL); {rounds} round(s)\n"
        f"1-min load average: {shown_loads} (before, then after each round; {os.cpu_count()} CPUs)"
    )
    print(f"{'contender':<12}{'median s':>9}{'runs s':>24}{'CPU s':>8}{'peak RSS MiB':>14}  result")
    median: dict[str, float] = {}
    for name, runs in walls.items():
        median[name] = statistics.median(runs) if runs else float("nan")
        shown = " ".join(f"{w:.2f}" for w in runs)
        used = f"{statistics.median(cpu[name]):.1f}" if cpu[name] else "n/a"
        verdict = "; ".join(sorted(verdicts[name]))
        print(f"{name:<12}{median[name]:>9.2f}{shown:>24}{used:>8}{rss[name]:>14.0f}  {verdict}")
    print(
        "CPU s: median CPU time of the contender's process(es) plus every PostgreSQL and MariaDB process\n"
        "while it ran (other users' queries included: an upper bound; what an idle machine would need)"
    )
    hc = median["hypercare"]
    line = (
        f"hypercare / native-hash limit = {hc / median['native']:.2f}x; "
        f"hypercare / its SHA-256 limit = {hc / median['sha256']:.2f}x; "
        f"MD5 limit / native-hash limit = {median['md5'] / median['native']:.2f}x; "
        f"SHA-256 limit / native-hash limit = {median['sha256'] / median['native']:.2f}x"
    )
    if "reladiff" in median:
        line += f"; reladiff / hypercare = {median['reladiff'] / hc:.1f}x"
        line += f"; reladiff / native-hash limit = {median['reladiff'] / median['native']:.2f}x"
    print(line + " (medians)")


if __name__ == "__main__":
    main()
