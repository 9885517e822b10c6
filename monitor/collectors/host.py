"""Host metrics through psutil: CPU, load, memory, swap, disks, network, and the ERP's processes.

Metrics (labels are bounded: ``mount`` and ``process`` come from the settings, ``interface`` from the
host's network interfaces):

* ``hypercare_host_cpu_usage_ratio``, ``hypercare_host_load1|5|15``
* ``hypercare_host_memory_total_bytes``, ``..._memory_available_bytes``, ``..._memory_usage_ratio``,
  ``..._swap_total_bytes``, ``..._swap_used_bytes``
* ``hypercare_host_disk_usage_ratio{mount}``, ``..._disk_free_bytes{mount}``, ``..._disk_total_bytes{mount}``
* counters ``hypercare_host_disk_read_bytes_total``, ``..._disk_written_bytes_total``,
  ``hypercare_host_network_receive_bytes_total{interface}``, ``..._network_transmit_bytes_total{interface}``
* per configured process name: ``hypercare_process_instances``, ``..._resident_memory_bytes``,
  ``..._cpu_seconds_total``, ``..._open_files``, ``..._threads``

Checks (source ``host``, category technical): ``host.disk_usage`` (worst mount against
disk_warn/fail_ratio), ``host.memory`` (usage ratio against memory_warn/fail_ratio), ``host.process``
(a configured process that is not running fails).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psutil

from monitor import check_ids
from monitor.collectors.base import CollectorOutput, check, grade, sample
from monitor.results import CheckResult, MetricSample
from monitor.settings import HostCollectorSettings

SOURCE = "host"


@dataclass
class _ProcessTotals:
    count: int = 0
    rss: float = 0.0
    cpu_seconds: float = 0.0
    open_files: int = 0
    threads: int = 0


def collect_host(settings: HostCollectorSettings, *, now: datetime) -> CollectorOutput:
    started = datetime.now(UTC)
    samples: list[MetricSample] = []

    def add(name: str, value: float, **labels: str) -> None:
        samples.append(sample(name, value, labels, now))

    add("hypercare_host_cpu_usage_ratio", psutil.cpu_percent(interval=0.1) / 100.0)
    for minutes, load in zip((1, 5, 15), os.getloadavg(), strict=True):
        add(f"hypercare_host_load{minutes}", load)
    memory = psutil.virtual_memory()
    memory_ratio = 1.0 - memory.available / memory.total if memory.total else 0.0
    add("hypercare_host_memory_total_bytes", memory.total)
    add("hypercare_host_memory_available_bytes", memory.available)
    add("hypercare_host_memory_usage_ratio", memory_ratio)
    swap = psutil.swap_memory()
    add("hypercare_host_swap_total_bytes", swap.total)
    add("hypercare_host_swap_used_bytes", swap.used)

    disks: list[dict[str, Any]] = []
    for mount in settings.mounts:
        try:
            usage = psutil.disk_usage(mount)
        except OSError as exc:
            disks.append({"mount": mount, "usage_ratio": None, "problem": f"cannot read: {exc.strerror}"})
            continue
        ratio = usage.used / usage.total if usage.total else 0.0
        add("hypercare_host_disk_usage_ratio", ratio, mount=mount)
        add("hypercare_host_disk_free_bytes", usage.free, mount=mount)
        add("hypercare_host_disk_total_bytes", usage.total, mount=mount)
        disks.append({"mount": mount, "usage_ratio": ratio, "free_bytes": usage.free})
    io = psutil.disk_io_counters(perdisk=False)
    if io is not None:
        add("hypercare_host_disk_read_bytes_total", io.read_bytes)
        add("hypercare_host_disk_written_bytes_total", io.write_bytes)
    for interface, counters in sorted(psutil.net_io_counters(pernic=True).items()):
        add("hypercare_host_network_receive_bytes_total", counters.bytes_recv, interface=interface)
        add("hypercare_host_network_transmit_bytes_total", counters.bytes_sent, interface=interface)

    totals = _processes(settings.processes)
    for name, t in totals.items():
        add("hypercare_process_instances", t.count, process=name)
        if t.count:
            add("hypercare_process_resident_memory_bytes", t.rss, process=name)
            add("hypercare_process_cpu_seconds_total", t.cpu_seconds, process=name)
            add("hypercare_process_open_files", t.open_files, process=name)
            add("hypercare_process_threads", t.threads, process=name)

    finished = datetime.now(UTC)
    results = [
        _disk_check(settings, disks, started, finished),
        _memory_check(settings, memory_ratio, memory.available, started, finished),
    ]
    if settings.processes:
        results.append(_process_check(settings, totals, started, finished))
    return results, samples


def _processes(names: tuple[str, ...]) -> dict[str, _ProcessTotals]:
    totals = {name: _ProcessTotals() for name in names}
    if not names:
        return totals
    for proc in psutil.process_iter(["name"]):
        name = proc.info.get("name")
        if name not in totals:
            continue
        t = totals[name]
        try:
            with proc.oneshot():
                rss = proc.memory_info().rss
                cpu = proc.cpu_times()
                threads = proc.num_threads()
                try:
                    files = len(proc.open_files())
                except psutil.AccessDenied:
                    files = 0  # another user's process: the rest is still readable
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue  # ended or forbidden between listing and reading
        t.count += 1
        t.rss += rss
        t.cpu_seconds += cpu.user + cpu.system
        t.threads += threads
        t.open_files += files
    return totals


def _disk_check(
    settings: HostCollectorSettings, disks: list[dict[str, Any]], started: datetime, finished: datetime
) -> CheckResult:
    worst = max((d["usage_ratio"] for d in disks if d["usage_ratio"] is not None), default=0.0)
    offending = [
        d
        for d in disks
        if d["usage_ratio"] is None
        or grade(d["usage_ratio"], settings.disk_warn_ratio, settings.disk_fail_ratio) != "pass"
    ]
    unreadable = any(d["usage_ratio"] is None for d in offending)
    status = "fail" if unreadable else grade(worst, settings.disk_warn_ratio, settings.disk_fail_ratio)
    return check(
        check_ids.host("disk_usage"),
        SOURCE,
        "Disk usage of the watched mounts",
        status=status,
        started=started,
        finished=finished,
        severity=settings.severity,
        measured=worst,
        offending=offending,
    )


def _memory_check(
    settings: HostCollectorSettings, ratio: float, available: int, started: datetime, finished: datetime
) -> CheckResult:
    return check(
        check_ids.host("memory"),
        SOURCE,
        "Memory usage of the host",
        status=grade(ratio, settings.memory_warn_ratio, settings.memory_fail_ratio),
        started=started,
        finished=finished,
        severity=settings.severity,
        measured=ratio,
        offending=[{"metric": "memory_usage_ratio", "usage_ratio": ratio, "available_bytes": available}],
    )


def _process_check(
    settings: HostCollectorSettings, totals: dict[str, _ProcessTotals], started: datetime, finished: datetime
) -> CheckResult:
    missing = [{"process": name, "problem": "not running"} for name, t in totals.items() if t.count == 0]
    return check(
        check_ids.host("process"),
        SOURCE,
        "ERP processes are running",
        status="fail" if missing else "pass",
        started=started,
        finished=finished,
        severity=settings.severity,
        measured=float(len(missing)),
        offending=missing,
    )
