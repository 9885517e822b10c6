"""The check-id syntax, owned by monitor/check_ids.py: what the builders write the readers read back."""

from __future__ import annotations

import pytest

from hypercare.config import Settings
from monitor import check_ids
from monitor.metrics import check_catalog, collector_kind, labels_for


def test_builders_write_the_documented_ids() -> None:
    assert check_ids.probe("erp-login") == "probe.erp-login"
    assert check_ids.host("disk_usage") == "host.disk_usage"
    assert check_ids.db("lock_waits") == "db.lock_waits"
    assert check_ids.integration("edi", "backlog") == "integration.edi.backlog"
    assert check_ids.job("nightly", "stale") == "job.nightly.stale"
    assert check_ids.collector("db_health") == "collector.db_health"
    assert check_ids.collector("integration", "edi") == "collector.integration.edi"
    assert check_ids.dualrun("gl") == "dualrun.gl"
    assert check_ids.dualrun("gl", "invoices") == "dualrun.gl.invoices"


def test_readers() -> None:
    assert check_ids.kind("ar.duplicate_invoice") == "ar"
    assert check_ids.kind("probe") == "probe"
    assert check_ids.probe_name("probe.erp.api") == "erp.api"
    assert check_ids.probe_name("probes.x") is None
    assert check_ids.collector_kind("collector.job.nightly") == "job"
    assert check_ids.collector_kind("collector") is None
    assert check_ids.collector_kind("job.nightly.stale") is None


@pytest.mark.parametrize(
    ("check_id", "unit"),
    [
        ("host.memory", "host"),
        ("db.connections", "db_health:erp"),
        ("collector.db_health", "db_health:erp"),
        ("collector.db_health.erp", "db_health:erp"),
        ("integration.edi.failed", "integration:edi"),
        ("job.nightly.duration", "job:nightly"),
        ("collector.integration.edi", "integration:edi"),
        ("integration.edi", None),
        ("integration.edi.v2.backlog", None),  # a dotted name: not the three-segment form
        ("probe.erp-login", None),
        ("ar.duplicate_invoice", None),
    ],
)
def test_collector_unit(check_id: str, unit: str | None) -> None:
    assert check_ids.collector_unit(check_id, "erp") == unit


@pytest.mark.parametrize(
    ("example", "check_id", "same"),
    [
        ("integration.example.backlog", "integration.edi.backlog", True),
        ("integration.example.backlog", "integration.edi.failed", False),
        ("integration.example.backlog", "job.edi.backlog", False),
        ("integration.example.backlog", "integration.edi", False),
        ("job.example.stale", "job.nightly.stale", True),
        ("probe.example", "probe.erp-login", True),
        ("collector.db_health", "collector.job.nightly", True),
        ("host.memory", "host.memory", True),
        ("host.memory", "host.disk_usage", False),
    ],
)
def test_a_family_stands_for_every_configured_name(example: str, check_id: str, same: bool) -> None:
    assert (check_ids.family(example) == check_ids.family(check_id)) is same


def test_every_id_the_catalog_lists_is_labelled_by_its_kind_alike() -> None:
    settings = Settings.model_validate(
        {
            "probes": [{"name": "erp-login", "url": "https://erp.example/login"}],
            "collectors": {
                "integrations": [{"name": "edi", "source": "erp", "backlog_sql": "SELECT 1"}],
                "jobs": [{"name": "nightly", "source": "erp", "sql": "SELECT 1", "expected_interval_s": 60}],
            },
        }
    )
    catalog = check_catalog(settings)
    assert {check_ids.kind(c) for c in catalog} == check_ids.BUILTIN_KINDS
    for check_id, labels in catalog.items():
        assert labels_for(check_id, {}).category in {labels.category, "technical"}
    assert collector_kind("collector.integration.edi") == "integration"
    assert collector_kind("probe.erp-login") == "probe"
    assert collector_kind("ar.duplicate_invoice") == "checks"
