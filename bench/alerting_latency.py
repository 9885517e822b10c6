"""Seconds from a failing condition in the ERP to a ticket, on the native path and through Prometheus and
Alertmanager, with the real Debian binaries on loopback.

    python bench/alerting_latency.py [--interval 5] [--episodes 3] [--json]

Starts `hypercare serve` and `hypercare collect` (one check, ``bench.unbalanced``, every ``--interval``
seconds) on a SQLite store and a SQLite "ERP", Prometheus (scrape and rule evaluation every ``--interval``
seconds, the shipped ``deploy/prometheus/hypercare.rules.yml``) and Alertmanager (the shipped
``deploy/alertmanager/alertmanager.yml`` with its addresses and token file changed, ``group_wait: 1s`` and
``group_interval: 5s``) posting to Hypercare with a token made by the documented recipe. Each episode
unbalances a journal entry, waits for the check's ticket (native path) and for Alertmanager's alert folded
into that same ticket (Alertmanager path), then balances it again and waits for the ticket to resolve and
for Alertmanager's resolve to arrive. Every process is on 127.0.0.1 and stopped at the end.

Exits 1 when an episode does not complete (no ticket, a second ticket, no fold, no resolve) within its time.
``tests/deploy/test_prometheus_e2e.py`` runs one episode in-process (``running``, ``episode``) with an
on-call rotation and targets added (``extra_config``) and acknowledges the ticket by its one-click link
while it is open (``while_open``). Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHECK_ID = "bench.unbalanced"
CHECK = {
    "id": CHECK_ID,
    "title": "Journal entries whose debits and credits differ",
    "source": "erp",
    "sql": "SELECT entry AS entry_number, SUM(debit) - SUM(credit) AS difference FROM journal_line "
    "GROUP BY entry HAVING ABS(SUM(debit) - SUM(credit)) >= 0.005",
    "category": "data",
    "severity": "P1",
    "amount_column": "difference",
    "key_columns": ["entry_number"],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, condition: Callable[[], Any], timeout_s: float, poll_s: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(poll_s)
    raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")


def binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit(
        f"none of {', '.join(names)} is installed (apt-get install prometheus prometheus-alertmanager)"
    )


class Stack:
    """The five processes, their files in ``work``, and what the benchmark reads back."""

    def __init__(self, work: Path, interval_s: float, extra_config: dict[str, Any] | None = None) -> None:
        self.work = work
        self.interval = interval_s
        self.extra_config = dict(extra_config or {})
        """Top-level sections added to hypercare.yaml (tests/deploy: ``oncall``, ``notifications``)."""
        self.erp = work / "erp.db"
        self.store = work / "hypercare.db"
        self.ports = {name: free_port() for name in ("hypercare", "prometheus", "alertmanager", "collect")}
        self.url = f"http://127.0.0.1:{self.ports['hypercare']}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERCARE_")}
        self.env.update(
            {
                "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), self.env.get("PYTHONPATH", "")) if p),
                "HYPERCARE_CONFIG": str(work / "hypercare.yaml"),
                "NO_COLOR": "1",
            }
        )
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    # --- set-up ------------------------------------------------------------------------------------

    def write_files(self) -> None:
        with sqlite3.connect(self.erp) as db:
            db.execute(
                "CREATE TABLE journal_line (id INTEGER PRIMARY KEY, entry TEXT, debit REAL, credit REAL)"
            )
            db.execute(
                "INSERT INTO journal_line (entry, debit, credit) VALUES ('JE-1', 100, 0), ('JE-1', 0, 100)"
            )
        (self.work / "checks.yaml").write_text(yaml.safe_dump({"checks": [CHECK]}), encoding="utf-8")
        every = f"every {self.interval:g}s"
        config = {
            "data_dir": str(self.work / "data"),
            "database_url": f"sqlite:///{self.store}",
            "log_format": "json",
            "sources": {"erp": {"url": f"sqlite:///{self.erp}"}},
            "checks": {"packs": [], "paths": [str(self.work / "checks.yaml")]},
            "collectors": {"host": {"enabled": False}},
            "scheduler": {"default_interval": every, "jitter_ratio": 0.0, "tick_s": 0.2},
            "server": {"public_url": self.url},
            **self.extra_config,
        }
        (self.work / "hypercare.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")

    def hypercare(self, *args: str, stdin: str = "") -> str:
        done = subprocess.run(  # noqa: S603  (our interpreter, our arguments)
            [sys.executable, "-m", "hypercare", *args],
            cwd=self.work, env=self.env, input=stdin, capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"hypercare {' '.join(args)} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def token(self) -> Path:
        """docs/operator-guide.md, "Alertmanager intake": an integration user and a token for the intake."""
        self.hypercare(
            "users", "add", "alertmanager", "--role", "oncall", "--password-stdin",
            "--display-name", "Alertmanager (integration)", stdin="a-long-random-password-nobody-types\n",
        )  # fmt: skip
        out = self.hypercare(
            "tokens", "create", "--user", "alertmanager", "--name", "am", "--scope", "alerts:write"
        )
        path = self.work / "hypercare.token"
        path.write_text(out.rstrip("\n").splitlines()[-1] + "\n", encoding="utf-8")
        path.chmod(0o600)
        return path

    def prometheus_config(self) -> Path:
        rules = self.work / "hypercare.rules.yml"
        shutil.copy(ROOT / "deploy/prometheus/hypercare.rules.yml", rules)
        config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text(encoding="utf-8"))
        config["global"] = {
            "scrape_interval": f"{self.interval:g}s",
            "evaluation_interval": f"{self.interval:g}s",
        }
        config["rule_files"] = [str(rules)]
        config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
            f"127.0.0.1:{self.ports['alertmanager']}"
        ]
        config["scrape_configs"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{self.ports['hypercare']}"]
        path = self.work / "prometheus.yml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    def alertmanager_config(self, token: Path) -> Path:
        config = yaml.safe_load((ROOT / "deploy/alertmanager/alertmanager.yml").read_text(encoding="utf-8"))
        config["route"].update({"group_wait": "1s", "group_interval": "5s"})
        hook = config["receivers"][0]["webhook_configs"][0]
        hook["url"] = f"{self.url}/api/v1/alertmanager"
        hook["http_config"]["authorization"]["credentials_file"] = str(token)
        path = self.work / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    def start(self) -> None:
        self.write_files()
        self.hypercare("db", "upgrade")
        token = self.token()
        p = self.ports
        self.spawn("serve", [sys.executable, "-m", "hypercare", "serve", "--host", "127.0.0.1",
                             "--port", str(p["hypercare"])])  # fmt: skip
        wait_for("hypercare serve", lambda: self.get(f"{self.url}/healthz"), 60)
        self.spawn(
            "collect", [sys.executable, "-m", "hypercare", "collect", "--metrics-port", str(p["collect"])]
        )
        self.spawn("alertmanager", [
            binary("prometheus-alertmanager", "alertmanager"),
            f"--config.file={self.alertmanager_config(token)}", f"--storage.path={self.work / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{p['alertmanager']}",
            "--cluster.listen-address=",
        ])  # fmt: skip
        self.spawn("prometheus", [
            binary("prometheus"), f"--config.file={self.prometheus_config()}",
            f"--storage.tsdb.path={self.work / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{p['prometheus']}",
        ])  # fmt: skip
        wait_for("alertmanager", lambda: self.get(f"http://127.0.0.1:{p['alertmanager']}/-/ready"), 60)
        wait_for("prometheus", lambda: self.get(f"http://127.0.0.1:{p['prometheus']}/-/ready"), 60)
        wait_for("the check's first passing run", lambda: self.check_status() == "pass", 60)

    def spawn(self, name: str, argv: list[str]) -> None:
        with (self.work / f"{name}.log").open("wb") as log:  # the child keeps its own copy of the file
            proc = subprocess.Popen(  # noqa: S603  (our interpreter and Debian's binaries, our arguments)
                argv, cwd=self.work, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.procs.append((name, proc))

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for name, proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop; killing it", file=sys.stderr)
                proc.kill()
                proc.wait(5)

    # --- reading back ------------------------------------------------------------------------------

    @staticmethod
    def get(url: str) -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(f"file:{self.store}?mode=ro", uri=True, timeout=5) as db:
            return list(db.execute(sql, params))

    def check_status(self) -> str | None:
        rows = self.query(
            "SELECT status FROM check_result WHERE check_id = ? ORDER BY id DESC LIMIT 1", CHECK_ID
        )
        return str(rows[0][0]) if rows else None

    def open_tickets(self) -> list[tuple[Any, ...]]:
        return self.query(
            "SELECT id, fingerprint, priority FROM ticket "
            "WHERE check_id = ? AND status NOT IN ('resolved', 'closed')",
            CHECK_ID,
        )

    def episodes(self, ticket_id: int, since_id: int) -> list[tuple[Any, ...]]:
        return self.query(
            "SELECT id, status FROM alertmanager_alert WHERE ticket_id = ? AND id > ? ORDER BY id",
            ticket_id,
            since_id,
        )

    def set_balanced(self, balanced: bool) -> None:
        with sqlite3.connect(self.erp) as db:
            db.execute("UPDATE journal_line SET credit = ? WHERE id = 2", (100 if balanced else 90,))


def episode(
    stack: Stack, last_episode: int, while_open: Callable[[int], None] | None = None
) -> dict[str, float | int]:
    """One episode; ``while_open(ticket_id)`` runs once the alert is folded, before the ERP is fixed."""
    timeout = 12 * stack.interval + 30
    t0 = time.monotonic()
    stack.set_balanced(False)
    (ticket_id, fingerprint, priority) = wait_for("the check's ticket", stack.open_tickets, timeout)[0]
    native = time.monotonic() - t0
    rows = wait_for(
        "Alertmanager's alert on the check's ticket", lambda: stack.episodes(ticket_id, last_episode), timeout
    )
    via_am = time.monotonic() - t0
    tickets = stack.open_tickets()
    if len(tickets) != 1 or fingerprint.startswith("am-"):
        raise AssertionError(f"the alert was not folded into the check's ticket: {tickets}")
    audit = stack.query(
        "SELECT COUNT(*) FROM ticket_audit WHERE ticket_id = ? AND action = 'folded'", ticket_id
    )
    if while_open is not None:
        while_open(int(ticket_id))
    t1 = time.monotonic()
    stack.set_balanced(True)
    wait_for("the ticket to resolve", lambda: not stack.open_tickets(), timeout)
    resolved = time.monotonic() - t1
    wait_for(
        "Alertmanager's resolve",
        lambda: (
            stack.query("SELECT status FROM alertmanager_alert WHERE id = ?", rows[0][0])[0][0] == "resolved"
        ),
        timeout,
    )
    am_resolved = time.monotonic() - t1
    return {
        "ticket_id": int(ticket_id),
        "priority": priority,
        "native_s": round(native, 2),
        "alertmanager_s": round(via_am, 2),
        "folded_audits": int(audit[0][0]),
        "resolved_s": round(resolved, 2),
        "alertmanager_resolved_s": round(am_resolved, 2),
        "episode_id": int(rows[0][0]),
    }


@contextmanager
def running(
    interval_s: float, keep: Path | None, extra_config: dict[str, Any] | None = None
) -> Iterator[Stack]:
    with ExitStack() as stack:
        work = keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hc-alerting-")))
        work.mkdir(parents=True, exist_ok=True)
        processes = Stack(work, interval_s, extra_config)
        try:
            processes.start()
            yield processes
        except BaseException:
            for name, _ in processes.procs:
                tail = (work / f"{name}.log").read_text(errors="replace")[-2000:]
                print(f"--- {name}.log (tail)\n{tail}", file=sys.stderr)
            raise
        finally:
            processes.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=float, default=5.0, help="check, scrape and rule interval (s)")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--keep", type=Path, help="keep the processes' files and logs in this directory")
    args = parser.parse_args(argv)
    results: list[dict[str, float | int]] = []
    with running(args.interval, args.keep) as stack:
        last = 0
        for _ in range(args.episodes):
            found = episode(stack, last)
            last = int(found["episode_id"])
            results.append(found)
            if not args.json:
                print(json.dumps(found))
    summary = {
        key: {
            "median": statistics.median(float(r[key]) for r in results),
            "max": max(float(r[key]) for r in results),
        }
        for key in ("native_s", "alertmanager_s", "resolved_s", "alertmanager_resolved_s")
    }
    report = {"interval_s": args.interval, "episodes": results, "summary": summary}
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
