from __future__ import annotations

from datetime import UTC, datetime

import psutil
import pytest

from hypercare.config import Settings
from monitor.collectors import collector_names, run_collector
from monitor.collectors.host import collect_host
from monitor.settings import HostCollectorSettings

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def by_name(samples: list, name: str) -> list:  # type: ignore[type-arg]
    return [s for s in samples if s.name == name]


def test_host_metrics_are_read_from_the_machine_in_base_units() -> None:
    results, samples = collect_host(HostCollectorSettings(mounts=("/",)), now=NOW)
    names = {s.name for s in samples}
    assert {
        "hypercare_host_cpu_usage_ratio",
        "hypercare_host_load1",
        "hypercare_host_memory_total_bytes",
        "hypercare_host_memory_usage_ratio",
        "hypercare_host_swap_total_bytes",
        "hypercare_host_disk_usage_ratio",
        "hypercare_host_network_receive_bytes_total",
    } <= names
    (total,) = by_name(samples, "hypercare_host_memory_total_bytes")
    assert total.value == psutil.virtual_memory().total
    (disk,) = by_name(samples, "hypercare_host_disk_usage_ratio")
    assert disk.labels == {"mount": "/"} and 0 < disk.value < 1
    assert all(0 <= s.value <= 1 for s in samples if s.name.endswith("_ratio"))
    assert all(s.ts == NOW for s in samples)
    assert {r.check_id for r in results} == {"host.disk_usage", "host.memory"}
    assert all(r.category == "technical" and r.source == "host" for r in results)


def test_disk_over_threshold_fails_naming_the_mount() -> None:
    usage = psutil.disk_usage("/").used / psutil.disk_usage("/").total
    tight = HostCollectorSettings(mounts=("/",), disk_warn_ratio=usage / 3, disk_fail_ratio=usage / 2)
    results, _ = collect_host(tight, now=NOW)
    (disk,) = [r for r in results if r.check_id == "host.disk_usage"]
    assert disk.status == "fail" and disk.violations == 1
    assert disk.entities == [{"mount": "/"}]
    assert abs((disk.measured_value or 0) - usage) < 0.05


def test_missing_mount_fails_with_the_reason() -> None:
    results, _ = collect_host(HostCollectorSettings(mounts=("/", "/no/such/mount")), now=NOW)
    (disk,) = [r for r in results if r.check_id == "host.disk_usage"]
    assert disk.status == "fail"
    assert disk.sample[0]["mount"] == "/no/such/mount" and "cannot read" in disk.sample[0]["problem"]


def test_configured_processes_are_measured_and_a_missing_one_fails() -> None:
    me = psutil.Process().name()
    settings = HostCollectorSettings(processes=(me, "no-such-erp-daemon"))
    results, samples = collect_host(settings, now=NOW)
    counts = {s.labels["process"]: s.value for s in by_name(samples, "hypercare_process_instances")}
    assert counts[me] >= 1 and counts["no-such-erp-daemon"] == 0
    (rss,) = by_name(samples, "hypercare_process_resident_memory_bytes")
    # this process is among those summed; its RSS moves a little between the two readings
    assert rss.labels == {"process": me} and rss.value >= 0.9 * psutil.Process().memory_info().rss
    (threads,) = by_name(samples, "hypercare_process_threads")
    assert threads.value >= 1
    (proc,) = [r for r in results if r.check_id == "host.process"]
    assert proc.status == "fail" and proc.entities == [{"process": "no-such-erp-daemon"}]


def test_collector_names_follow_the_settings_and_host_runs_by_name() -> None:
    settings = Settings(
        sources={"erp": {"url": "sqlite:///erp.db"}},  # type: ignore[dict-item]
        collectors={  # type: ignore[arg-type]
            "db_health": {"sources": ["erp"]},
            "integrations": [{"name": "finance-outbox", "source": "erp", "backlog_sql": "SELECT 1"}],
            "jobs": [
                {"name": "nightly-close", "source": "erp", "sql": "SELECT 1", "expected_interval_s": 90000}
            ],
        },
    )
    assert collector_names(settings) == [
        "host",
        "db_health:erp",
        "integration:finance-outbox",
        "job:nightly-close",
    ]
    results, samples = run_collector("host", settings, now=NOW)
    assert results and samples


def test_unknown_collector_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown collector 'job:nope'; configured: host"):
        run_collector("job:nope", Settings(), now=NOW)
