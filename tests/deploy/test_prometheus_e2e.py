"""The loop with the real Debian Prometheus and Alertmanager on loopback (bench/alerting_latency.py, one
episode): a check fails -> its ticket -> hypercare_check_status -> the shipped rule -> Alertmanager with the
shipped configuration and the documented token -> the alert folded into the check's ticket, not a second
one -> the ERP fixed -> the ticket resolved -> Alertmanager's resolve recorded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import cli_env
from tests.deploy.promql import ROOT, tool

pytestmark = pytest.mark.slow


def test_a_failing_check_alerts_through_prometheus_and_alertmanager_into_its_own_ticket(
    tmp_path: Path,
) -> None:
    tool("prometheus", "prometheus")
    tool("prometheus-alertmanager", "prometheus-alertmanager")
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench/alerting_latency.py"), "--episodes", "1", "--json",
         "--keep", str(tmp_path / "stack")],
        capture_output=True, text=True, timeout=400, check=False, env=cli_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    (episode,) = report["episodes"]
    assert episode["priority"] == "P1"  # the check's severity, through the metric's label and the intake
    assert episode["folded_audits"] == 1  # folded, audited once, on the check's own ticket
    interval = report["interval_s"]
    assert episode["native_s"] <= 3 * interval + 5
    assert episode["native_s"] <= episode["alertmanager_s"] <= 6 * interval + 15
    assert episode["resolved_s"] <= episode["alertmanager_resolved_s"]
    stack = tmp_path / "stack"
    token = (stack / "hypercare.token").read_text(encoding="utf-8").strip()
    logs = {name: (stack / f"{name}.log").read_text(encoding="utf-8") for name in ("serve", "alertmanager")}
    assert all(token not in text for text in logs.values()), "the token is never logged"
    assert "level=error" not in logs["alertmanager"], logs["alertmanager"][-2000:]
