from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from hypercare.config import Settings
from hypercare.demo.builder import DemoErp
from monitor.collectors import run_collector, trace_document
from tests.demo_erp import DemoErpFactory, sources_of

OUTBOX = {
    "name": "finance-outbox",
    "source": "erp",
    "backlog_sql": "SELECT count(*) FROM integration_outbox WHERE status = 'pending'",
    "oldest_sql": "SELECT min(created_at) FROM integration_outbox WHERE status = 'pending'",
    "failed_sql": "SELECT count(*) FROM integration_outbox WHERE status = 'failed' AND created_at >= :since",
    "window_s": 31 * 86400,  # the demo breaks a message 6 hours to 3 days old, up to 30 after a weekend
    "backlog_warn": 1,
    "backlog_fail": 50,
    "oldest_age_warn_s": 600,
    "oldest_age_fail_s": 3600,
}
TRACE = [
    {
        "name": "erp-outbox",
        "source": "erp",
        "sql": "SELECT id AS message_id, status, created_at, processed_at, error "
        "FROM integration_outbox WHERE doc_ref = :key",
    },
    {
        "name": "finance-inbox",
        "source": "finance",
        "sql": "SELECT source_message_id AS message_id, amount, received_at FROM finance_inbox WHERE doc_ref = :key",
    },
]


@pytest.fixture(scope="module")
def demo(demo_erp: DemoErpFactory) -> DemoErp:
    return demo_erp("demo", scale=0.02)


def settings_for(demo: DemoErp, **integration: object) -> Settings:
    return Settings(
        sources=sources_of(demo),  # type: ignore[arg-type]
        collectors={  # type: ignore[arg-type]
            "host": {"enabled": False},
            "integrations": [{**OUTBOX, **integration}],
            "trace": TRACE,
        },
    )


def test_stuck_and_failed_messages_of_the_demo_erp_are_found(demo: DemoErp) -> None:
    results, samples = run_collector("integration:finance-outbox", settings_for(demo), now=demo.as_of)
    metrics = {s.name: s for s in samples}
    backlog = metrics["hypercare_integration_backlog_messages"]
    assert backlog.value == 1 and backlog.labels == {"integration": "finance-outbox", "source": "erp"}
    age = metrics["hypercare_integration_oldest_message_age_seconds"].value
    assert age > 6 * 3600  # the stuck message is older than 6 hours by construction
    assert metrics["hypercare_integration_failed_messages"].value == 1
    status = {r.check_id: r.status for r in results}
    assert status == {
        "integration.finance-outbox.backlog": "warn",
        "integration.finance-outbox.oldest_age": "fail",
        "integration.finance-outbox.failed": "fail",
    }
    oldest = next(r for r in results if r.check_id.endswith("oldest_age"))
    assert oldest.runbook == "integration-message-stuck" and oldest.category == "technical"
    assert abs((oldest.measured_value or 0) - age) < 1e-6


def test_failures_outside_the_window_are_not_counted(demo: DemoErp) -> None:
    # The failed message is at least 6 hours old: a one-hour window sees none.
    results, _ = run_collector(
        "integration:finance-outbox", settings_for(demo, window_s=3600), now=demo.as_of
    )
    failed = next(r for r in results if r.check_id.endswith(".failed"))
    assert failed.status == "pass" and failed.measured_value == 0
    later = demo.as_of + timedelta(days=32)  # its 31-day window starts after every message the demo made
    results, _ = run_collector("integration:finance-outbox", settings_for(demo), now=later)
    assert next(r for r in results if r.check_id.endswith(".failed")).status == "pass"


def test_broken_query_is_an_error_result_naming_the_integration(demo: DemoErp) -> None:
    settings = settings_for(demo, backlog_sql="SELECT count(*) FROM no_such_outbox")
    results, samples = run_collector("integration:finance-outbox", settings, now=demo.as_of)
    (err,) = results
    assert err.status == "error" and err.check_id == "collector.integration.finance-outbox"
    assert "no such table: no_such_outbox" in (err.error or "") and samples == []


def test_integration_query_cannot_write_to_the_erp(demo: DemoErp) -> None:
    """Refused when the settings load; and a query that got past them is judged again before it runs."""
    from core.errors import ConfigError
    from hypercare.config import load_settings

    sneaky = "WITH x AS (SELECT 1) SELECT count(*) FROM integration_outbox; DELETE FROM integration_outbox"
    with pytest.raises(ConfigError, match=r"backlog_sql': Value error, must be one statement \(found ';'\)"):
        load_settings(None, collectors={"integrations": [{**OUTBOX, "backlog_sql": sneaky}]})
    settings = settings_for(demo)
    probe = settings.collectors.integrations[0].model_copy(update={"backlog_sql": sneaky})
    unchecked = settings.model_copy(
        update={"collectors": settings.collectors.model_copy(update={"integrations": (probe,)})}
    )
    results, _ = run_collector("integration:finance-outbox", unchecked, now=demo.as_of)
    assert results[0].status == "error"
    assert "refused query: must be one statement" in (results[0].error or "")
    engine = create_engine(demo.erp_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM integration_outbox")).scalar_one() > 0
    engine.dispose()


def test_select_only_is_enforced_when_settings_load(demo: DemoErp) -> None:
    from core.errors import ConfigError
    from hypercare.config import load_settings

    with pytest.raises(ConfigError, match=r"collectors\.integrations\.0\.backlog_sql"):
        load_settings(None, collectors={"integrations": [{**OUTBOX, "backlog_sql": "DELETE FROM x"}]})


def test_trace_finds_a_document_in_both_systems_and_the_stuck_one_only_in_the_erp(demo: DemoErp) -> None:
    settings = settings_for(demo)
    engine = create_engine(demo.erp_url)
    with engine.connect() as conn:
        sent_ref = conn.execute(
            text("SELECT doc_ref FROM integration_outbox WHERE status = 'sent' ORDER BY id LIMIT 1")
        ).scalar_one()
        stuck_ref = conn.execute(
            text("SELECT doc_ref FROM integration_outbox WHERE status = 'pending'")
        ).scalar_one()
    engine.dispose()
    sent = trace_document(settings, sent_ref)
    assert [row["trace"] for row in sent] == ["erp-outbox", "finance-inbox"]
    assert sent[0]["message_id"] == sent[1]["message_id"] and sent[0]["status"] == "sent"
    stuck = trace_document(settings, stuck_ref)
    assert [(row["trace"], row["status"]) for row in stuck] == [("erp-outbox", "pending")]
    assert trace_document(settings, "NO/SUCH/DOC") == []


def test_trace_reports_a_down_system_and_still_shows_the_other(demo: DemoErp, tmp_path: Path) -> None:
    settings = Settings(
        sources={  # type: ignore[dict-item]
            "erp": {"url": demo.erp_url},
            "finance": {"url": f"sqlite:///{tmp_path / 'missing.db'}"},
        },
        collectors={"trace": TRACE},  # type: ignore[arg-type]
    )
    engine = create_engine(demo.erp_url)
    with engine.connect() as conn:
        ref = conn.execute(text("SELECT doc_ref FROM integration_outbox ORDER BY id LIMIT 1")).scalar_one()
    engine.dispose()
    rows = trace_document(settings, ref)
    assert rows[0]["trace"] == "erp-outbox" and "trace_error" not in rows[0]
    assert rows[-1]["trace"] == "finance-inbox" and "does not exist" in rows[-1]["trace_error"]
