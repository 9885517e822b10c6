"""HTTP probes of ERP transactions and APIs: status, latency, body assertion.

A probe is a check like any other: its result says pass, warn (slower than ``latency_warn_s``), fail
(slower than ``latency_fail_s``, wrong status, body assertion failed, unreachable) with the latency as the
measured value, so anomaly/ turns it into an exception the same way.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx

from hypercare.config import ProbeSettings
from monitor.results import CheckResult, CheckStatus, MetricSample


def probe_check_id(probe: ProbeSettings) -> str:
    return f"probe.{probe.name}"


def run_probe(probe: ProbeSettings, client: httpx.Client) -> tuple[CheckResult, list[MetricSample]]:
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    status: CheckStatus
    error: str | None = None  # what went wrong, shown in the sample; the probe itself did run
    code: int | None = None
    try:
        response = client.request(probe.method, probe.url, timeout=probe.timeout_s)
        latency = time.perf_counter() - t0
        code = response.status_code
        if code != probe.expect_status:
            status, error = "fail", f"HTTP {code}, expected {probe.expect_status}"
        elif probe.expect_body_contains and probe.expect_body_contains not in response.text:
            status, error = "fail", f"response body lacks {probe.expect_body_contains!r}"
        elif latency >= probe.latency_fail_s:
            status = "fail"
            error = f"answered in {latency:.2f}s, limit {probe.latency_fail_s:.2f}s"
        elif latency >= probe.latency_warn_s:
            status = "warn"
            error = f"answered in {latency:.2f}s, warning at {probe.latency_warn_s:.2f}s"
        else:
            status = "pass"
    except httpx.HTTPError as exc:
        latency = time.perf_counter() - t0
        status, error = "fail", f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
    finished = started + timedelta(seconds=latency)
    result = CheckResult(
        check_id=probe_check_id(probe),
        source=probe.source,
        status=status,
        title=f"ERP transaction {probe.name} ({probe.method} {httpx.URL(probe.url).path})",
        category="technical",
        severity=probe.severity,
        started_at=started,
        finished_at=finished,
        violations=0 if status == "pass" else 1,
        measured_value=latency,
        sample=[
            {
                "url_path": httpx.URL(probe.url).path,
                "status_code": code,
                "latency_s": round(latency, 3),
                "problem": error,
            }
        ]
        if status != "pass"
        else [],
        entities=[{}] if status != "pass" else [],
        runbook=probe.runbook or "erp-slow-transaction",
        owner=probe.owner,
        tags=("probe",),
    )
    labels = {"probe": probe.name, "source": probe.source}
    samples = [MetricSample("hypercare_probe_duration_seconds", latency, labels, finished)]
    samples.append(
        MetricSample("hypercare_probe_success", 1.0 if status == "pass" else 0.0, labels, finished)
    )
    return result, samples
