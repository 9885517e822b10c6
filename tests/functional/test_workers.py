"""Scale-out: two real `hypercare collect` processes share one PostgreSQL store and a demo ERP.

One worker is killed with SIGKILL while it runs a slow check. The other must take over its lease once it
expires, every unit must still run, and no unit may ever run in both workers at once (each worker logs
when it starts and ends a unit; the intervals of one unit must not overlap).
"""

from __future__ import annotations

import itertools
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from hypercare.demo.sink import NotificationSink
from hypercare.serving import free_port
from monitor.checks import load_pack
from monitor.models import WorkLease
from tests.cli import cli_env, run_hypercare
from tests.demo_erp import DemoErpFactory

pytestmark = pytest.mark.slow
LEASE_S = 5.0
SLOW_CHECK = {
    "id": "slow.recursive_count",
    "title": "A deliberately slow read-only query (about two seconds)",
    "source": "erp",
    "sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n) "
    "SELECT x AS n FROM c WHERE x < 0",
    "params": {"n": 8_000_000},
    "category": "technical",
    "severity": "P4",
}


def log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def wait_for(what: str, condition: Callable[[], Any], timeout_s: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Worker:
    def __init__(self, name: str, config: Path, workdir: Path) -> None:
        self.name = name
        self.log = workdir / f"{name}.log"
        self.port = free_port()
        env = cli_env(HYPERCARE_CONFIG=str(config))
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hypercare", "collect", "--worker-id", name,
                 "--metrics-port", str(self.port)],
                cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip

    def events(self, message: str) -> list[dict[str, Any]]:
        return [line for line in log_lines(self.log) if line.get("msg") == message]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_workers_share_the_work_and_a_killed_workers_lease_is_taken_over(
    store_url: str, tmp_path: Path, demo_erp: DemoErpFactory
) -> None:
    erp = demo_erp(scale=0.05)
    sink = NotificationSink(tmp_path / "notifications.jsonl")
    with sink:
        _run_two_workers(store_url, tmp_path, erp.erp_url, erp.finance_url, sink)


def _run_two_workers(
    store_url: str, tmp_path: Path, erp_url: str, finance_url: str, sink: NotificationSink
) -> None:
    (tmp_path / "slow.yaml").write_text(yaml.safe_dump({"checks": [SLOW_CHECK]}), encoding="utf-8")
    config = tmp_path / "hypercare.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp_path / "data"),
                "database_url": store_url,
                "log_format": "json",
                "sources": {"erp": {"url": erp_url}, "finance": {"url": finance_url}},
                "notifications": {"targets": [{"url": sink.apprise_url, "min_priority": "P2"}]},
                "checks": {"packs": ["demo_erp"], "paths": [str(tmp_path / "slow.yaml")]},
                "collectors": {"host": {"enabled": False}},
                "scheduler": {
                    "default_interval": "every 3s",
                    "jitter_ratio": 0.1,
                    "workers": 2,
                    "per_source_concurrency": 2,
                    "lease_s": LEASE_S,
                    "tick_s": 0.2,
                },
            }
        ),
        encoding="utf-8",
    )
    units = {f"check:{spec.id}" for spec in load_pack("demo_erp")} | {f"check:{SLOW_CHECK['id']}"}
    workers = [Worker("worker-a", config, tmp_path), Worker("worker-b", config, tmp_path)]
    try:
        slow_key = f"check:{SLOW_CHECK['id']}"

        def slow_started() -> Worker | None:
            for w in workers:
                if any(e["unit"] == slow_key for e in w.events("unit started")):
                    return w
            return None

        victim: Worker = wait_for("a worker to start the slow check", slow_started)
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(10)
        killed_at = datetime.now(UTC)
        survivor = next(w for w in workers if w is not victim)

        def taken_over() -> bool:
            return any(
                e["unit"] == slow_key and e["previous_holder"] == victim.name
                for e in survivor.events("lease taken over")
            )

        wait_for("the survivor to take over the slow check's lease", taken_over)

        def ran_after_kill() -> set[str]:
            done = {e["unit"] for e in survivor.events("unit finished") if _at(e) > killed_at}
            return units - done

        wait_for("every unit to run after the kill", lambda: not ran_after_kill())

        # The survivor's /metrics shows the latest results from the shared store.
        metrics = httpx.get(f"http://127.0.0.1:{survivor.port}/metrics", timeout=10).text
        status = [
            line
            for line in metrics.splitlines()
            if line.startswith("hypercare_check_status{") and 'check_id="gl.unbalanced_entries"' in line
        ]
        assert any('status="fail"' in line and line.endswith(" 1.0") for line in status), status

        # The P1/P2 tickets the workers opened were notified from the outbox.
        wait_for("notifications to reach the sink", sink.received)

        survivor.proc.send_signal(signal.SIGTERM)
        assert survivor.proc.wait(60) == 0, survivor.log.read_text()
        assert survivor.events("scheduler stopped")
    finally:
        for w in workers:
            w.stop()

    # No unit ever ran in both workers at once (the victim's last units ran until it was killed).
    spans: dict[str, list[tuple[datetime, datetime, str]]] = defaultdict(list)
    for w in workers:
        open_: dict[str, datetime] = {}
        for e in log_lines(w.log):
            if e.get("msg") == "unit started":
                open_[e["unit"]] = _at(e)
            elif e.get("msg") == "unit finished":
                spans[e["unit"]].append((open_.pop(e["unit"]), _at(e), w.name))
        for unit, started in open_.items():
            spans[unit].append((started, killed_at if w is victim else datetime.now(UTC), w.name))
    assert set(spans) >= units
    for unit, intervals in spans.items():
        intervals.sort()
        for (_s1, e1, w1), (s2, _e2, w2) in itertools.pairwise(intervals):
            assert e1 <= s2, f"{unit} ran in {w1} and {w2} at once"
    assert {w for _s, _e, w in spans[slow_key]} == {"worker-a", "worker-b"}

    engine = create_engine(store_url)
    with Session(engine) as session:
        held = session.scalars(select(WorkLease.key).where(WorkLease.leased_by == survivor.name)).all()
    engine.dispose()
    assert held == []  # a graceful stop releases every lease


def _at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["at"])


def test_collect_once_from_the_cli_and_a_bad_schedule_is_a_clear_error(tmp_path: Path) -> None:
    erp = tmp_path / "erp.db"
    conn = sqlite3.connect(erp)
    conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, qty INTEGER NOT NULL)")
    conn.executemany("INSERT INTO item (qty) VALUES (?)", [(3,), (-2,)])
    conn.commit()
    conn.close()
    check = {
        "id": "inventory.negative",
        "title": "Items with negative stock",
        "source": "erp",
        "sql": "SELECT id FROM item WHERE qty < 0",
        "key_columns": ["id"],
        "category": "data",
        "severity": "P2",
        "schedule": "now and then",
    }
    checks = tmp_path / "checks.yaml"
    checks.write_text(yaml.safe_dump({"checks": [check]}), encoding="utf-8")
    config = tmp_path / "hypercare.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp_path / "data"),
                "sources": {"erp": {"url": f"sqlite:///{erp}"}},
                "checks": {"packs": [], "paths": [str(checks)]},
                "collectors": {"host": {"enabled": False}},
            }
        ),
        encoding="utf-8",
    )

    def hypercare(*args: str) -> subprocess.CompletedProcess[str]:
        return run_hypercare(*args, cwd=tmp_path, env={"HYPERCARE_CONFIG": str(config)})

    assert hypercare("db", "upgrade").returncode == 0
    bad = hypercare("collect", "--once")
    assert bad.returncode != 0
    assert "check inventory.negative" in bad.stderr and "'now and then'" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr

    checks.write_text(yaml.safe_dump({"checks": [{**check, "schedule": "every 5m"}]}), encoding="utf-8")
    done = hypercare("collect", "--once")
    assert done.returncode == 1, done.stderr  # the check ran and failed: 1, as `check run` (guide)
    assert "inventory.negative" in done.stdout and "fail" in done.stdout
    assert "units run: 1" in done.stdout
