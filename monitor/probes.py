"""HTTP probes of ERP transactions and APIs: status, latency, body assertion, TLS certificate expiry.

A probe is a check like any other: its result says pass, warn (slower than ``latency_warn_s``, or a
certificate expiring within ``tls_warn_days``), fail (slower than ``latency_fail_s``, wrong status, body
assertion failed, unreachable, certificate expiring within ``tls_fail_days``) with the latency as the
measured value, so anomaly/ turns it into an exception the same way.

Headers come from the settings as secrets (``headers: {Authorization: {secret_env: ERP_API_TOKEN}}``); their
values are sent and never logged, stored or shown. The certificate is read from the verified TLS session
of the request itself (``hypercare_probe_tls_certificate_expiry_timestamp_seconds``); a client that does
not verify certificates gets no expiry reading.
"""

from __future__ import annotations

import ssl
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from monitor import check_ids
from monitor.results import CheckResult, CheckStatus, MetricSample
from monitor.settings import ProbeSettings


def probe_check_id(probe: ProbeSettings) -> str:
    return check_ids.probe(probe.name)


def run_probe(probe: ProbeSettings, client: httpx.Client) -> tuple[CheckResult, list[MetricSample]]:
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    status: CheckStatus
    error: str | None = None  # what went wrong, shown in the sample; the probe itself did run
    code: int | None = None
    expires: datetime | None = None
    headers = {name: value.get_secret_value() for name, value in probe.headers.items()}
    try:
        response = client.request(probe.method, probe.url, headers=headers, timeout=probe.timeout_s)
        latency = time.perf_counter() - t0
        code = response.status_code
        expires = certificate_expiry(response)
        days_left = (expires - started).total_seconds() / 86400 if expires else None
        if code != probe.expect_status:
            status, error = "fail", f"HTTP {code}, expected {probe.expect_status}"
        elif probe.expect_body_contains and probe.expect_body_contains not in response.text:
            status, error = "fail", f"response body lacks {probe.expect_body_contains!r}"
        elif latency >= probe.latency_fail_s:
            status = "fail"
            error = f"answered in {latency:.2f}s, limit {probe.latency_fail_s:.2f}s"
        elif days_left is not None and days_left <= probe.tls_fail_days:
            status, error = "fail", f"TLS certificate expires in {days_left:.1f} days ({expires:%Y-%m-%d})"
        elif latency >= probe.latency_warn_s:
            status = "warn"
            error = f"answered in {latency:.2f}s, warning at {probe.latency_warn_s:.2f}s"
        elif days_left is not None and days_left <= probe.tls_warn_days:
            status, error = "warn", f"TLS certificate expires in {days_left:.1f} days ({expires:%Y-%m-%d})"
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
                "tls_expires_at": expires.isoformat() if expires else None,
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
    if expires is not None:
        samples.append(
            MetricSample(
                "hypercare_probe_tls_certificate_expiry_timestamp_seconds",
                expires.timestamp(),
                labels,
                finished,
            )
        )
    return result, samples


def certificate_expiry(response: httpx.Response) -> datetime | None:
    """When the server certificate of a verified https response expires (None for http or unverified)."""
    stream: Any = response.extensions.get("network_stream")
    if stream is None:
        return None
    ssl_object = stream.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    cert = ssl_object.getpeercert()  # {} when the client did not verify the certificate
    not_after = cert.get("notAfter") if isinstance(cert, dict) else None
    if not not_after:
        return None
    return datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), tz=UTC)
