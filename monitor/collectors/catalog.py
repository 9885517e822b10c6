"""Every metric the technical collectors produce, with its help text: /metrics describes them from here.

Names end in ``_total`` for counters (exposed as Prometheus counters) and are gauges otherwise.
"""

from __future__ import annotations

PREFIXES = (
    "hypercare_host_",
    "hypercare_process_",
    "hypercare_db_",
    "hypercare_integration_",
    "hypercare_job_",
    "hypercare_probe_tls_",
    "hypercare_probe_success",
    "hypercare_business_volume",
)
"""Stored samples whose names start with these are exposed on /metrics as the latest value per label set."""

METRIC_HELP: dict[str, str] = {
    "hypercare_business_volume": (
        "Business volume of the last complete bucket (day or hour) of a volume watch, per key and measure"
    ),
    "hypercare_host_cpu_usage_ratio": "CPU busy ratio of the host over a 0.1 s sample",
    "hypercare_host_load1": "Host load average over 1 minute",
    "hypercare_host_load5": "Host load average over 5 minutes",
    "hypercare_host_load15": "Host load average over 15 minutes",
    "hypercare_host_memory_total_bytes": "Physical memory of the host",
    "hypercare_host_memory_available_bytes": "Memory available without swapping",
    "hypercare_host_memory_usage_ratio": "1 - available / total memory",
    "hypercare_host_swap_total_bytes": "Swap space of the host",
    "hypercare_host_swap_used_bytes": "Swap space in use",
    "hypercare_host_disk_usage_ratio": "Used / total space of a watched mount",
    "hypercare_host_disk_free_bytes": "Free space of a watched mount",
    "hypercare_host_disk_total_bytes": "Size of a watched mount",
    "hypercare_host_disk_read_bytes_total": "Bytes read from all disks since boot",
    "hypercare_host_disk_written_bytes_total": "Bytes written to all disks since boot",
    "hypercare_host_network_receive_bytes_total": "Bytes received on a network interface since boot",
    "hypercare_host_network_transmit_bytes_total": "Bytes sent on a network interface since boot",
    "hypercare_process_instances": "Running processes with a watched ERP process name",
    "hypercare_process_resident_memory_bytes": "Resident memory of the watched ERP processes",
    "hypercare_process_cpu_seconds_total": "CPU time (user + system) of the running watched ERP processes",
    "hypercare_process_open_files": "Open files of the watched ERP processes",
    "hypercare_process_threads": "Threads of the watched ERP processes",
    "hypercare_db_up": "1 when the database health collector could query the source, else 0",
    "hypercare_db_connections": "Client connections to the database server",
    "hypercare_db_max_connections": "The server's max_connections",
    "hypercare_db_connections_usage_ratio": "Connections / max_connections",
    "hypercare_db_running_threads": "MySQL/MariaDB threads running a statement",
    "hypercare_db_active_queries": "Statements executing now (other than Hypercare's)",
    "hypercare_db_long_running_queries": "Statements running longer than long_query_s",
    "hypercare_db_oldest_query_age_seconds": "Run time of the oldest executing statement",
    "hypercare_db_idle_in_transaction_sessions": "Sessions idle inside a transaction longer than the limit",
    "hypercare_db_lock_waiting_sessions": "Sessions waiting on a lock",
    "hypercare_db_lock_blocking_sessions": "Sessions holding a lock another session waits for",
    "hypercare_db_deadlocks_total": "Deadlocks detected by the database since its statistics reset",
    "hypercare_db_cache_hit_ratio": "Buffer cache hits / (hits + reads)",
    "hypercare_db_size_bytes": "Size of the monitored database",
    "hypercare_db_replication_lag_seconds": "Replay lag of a replica",
    "hypercare_db_wal_size_bytes": "Size of the SQLite write-ahead log",
    "hypercare_integration_backlog_messages": "Unprocessed messages of an integration interface",
    "hypercare_integration_oldest_message_age_seconds": "Age of the oldest unprocessed message",
    "hypercare_integration_failed_messages": "Failed messages within the integration's window",
    "hypercare_job_last_run_timestamp_seconds": "When the job's latest run started",
    "hypercare_job_last_duration_seconds": "Duration of the job's latest run (so far, if running)",
    "hypercare_job_median_duration_seconds": "Median duration of the job's previous successful runs",
    "hypercare_job_last_success": "1 when the job's latest finished run succeeded, else 0",
    "hypercare_job_running": "1 while the job's latest run has not finished",
    "hypercare_job_failed_runs": "Failed runs of the job within the lookback",
    "hypercare_probe_success": "1 when the HTTP probe's latest run passed, else 0",
    "hypercare_probe_tls_certificate_expiry_timestamp_seconds": "Expiry of the probed server's certificate",
}


def metric_help(name: str) -> str:
    return METRIC_HELP.get(name, "Collected by Hypercare (see docs/operator-guide.md)")
