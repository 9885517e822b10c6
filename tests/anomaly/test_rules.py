from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from anomaly.events import fingerprint
from anomaly.rules import events_for_result, events_for_results
from monitor.results import CheckResult

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def result(status: str = "fail", entities: list[dict[str, str]] | None = None, **kw: object) -> CheckResult:
    entities = entities if entities is not None else [{"entry": "JE-1"}]
    args: dict[str, object] = {
        "check_id": "gl.unbalanced",
        "source": "erp",
        "status": status,
        "title": "Unbalanced entries",
        "category": "data",
        "severity": "P1",
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=1),
        "violations": len(entities) if status == "fail" else 0,
        "entities": entities if status == "fail" else [],
        "sample": [{"entry": e["entry"], "difference": "5.00"} for e in entities] if status == "fail" else [],
        "runbook": "gl-unbalanced-entries",
    }
    args.update(kw)
    return CheckResult(**args)  # type: ignore[arg-type]


def test_fingerprint_is_about_what_not_when_and_ignores_key_order() -> None:
    a = fingerprint("c", "erp", entity={"company": "SH01", "entry": "JE-1"})
    b = fingerprint("c", "erp", entity={"entry": "JE-1", "company": "SH01"})
    assert a == b
    assert a != fingerprint("c", "erp", entity={"entry": "JE-2", "company": "SH01"})
    assert a != fingerprint("c", "legacy", entity={"entry": "JE-1", "company": "SH01"})
    assert len(a) == 32


def test_a_failed_check_raises_one_event_per_entity_with_evidence_and_money() -> None:
    r = result(entities=[{"entry": "JE-1"}, {"entry": "JE-2"}], amounts=[Decimal("5.00"), Decimal("7.50")])
    events = events_for_result(r, group_threshold=5)
    assert [e.entity for e in events] == [{"entry": "JE-1"}, {"entry": "JE-2"}]
    assert [e.amount_at_risk for e in events] == [Decimal("5.00"), Decimal("7.50")]
    assert events[0].summary == "Unbalanced entries: entry=JE-1"
    assert events[0].evidence["row"] == {"entry": "JE-1", "difference": "5.00"}
    assert {e.severity for e in events} == {"P1"} and {e.category for e in events} == {"data"}
    assert events[0].runbook == "gl-unbalanced-entries"
    assert events[0].occurred_at == r.finished_at


def test_many_offending_entities_raise_one_grouped_event() -> None:
    r = result(entities=[{"entry": f"JE-{i}"} for i in range(8)], amount_at_risk=Decimal("40.00"))
    (event,) = events_for_result(r, group_threshold=5)
    assert event.fingerprint == fingerprint("gl.unbalanced", "erp")
    assert event.labels["grouped"] == "true"
    assert "8 offending rows" in event.summary
    assert event.amount_at_risk == Decimal("40.00")


def test_a_check_that_passes_again_resolves_what_was_open() -> None:
    open_fp = fingerprint("gl.unbalanced", "erp", entity={"entry": "JE-1"})
    (event,) = events_for_result(result("pass"), group_threshold=5, open_fingerprints={open_fp})
    assert (event.action, event.fingerprint) == ("resolve", open_fp)


def test_an_entity_that_stops_offending_is_resolved_while_others_stay_open() -> None:
    fixed = fingerprint("gl.unbalanced", "erp", entity={"entry": "JE-1"})
    still = fingerprint("gl.unbalanced", "erp", entity={"entry": "JE-2"})
    events = events_for_result(
        result(entities=[{"entry": "JE-2"}]), group_threshold=5, open_fingerprints={fixed, still}
    )
    assert [(e.action, e.fingerprint) for e in events] == [("trigger", still), ("resolve", fixed)]


def test_a_check_that_cannot_run_is_a_technical_exception_and_resolves_nothing() -> None:
    open_fp = fingerprint("gl.unbalanced", "erp", entity={"entry": "JE-1"})
    (event,) = events_for_result(
        result("error", error="connection refused"), group_threshold=5, open_fingerprints={open_fp}
    )
    assert event.action == "trigger"
    assert event.category == "technical"
    assert "could not run" in event.summary and "connection refused" in event.summary


def test_results_are_matched_with_their_own_open_fingerprints() -> None:
    open_fp = fingerprint("gl.unbalanced", "erp", entity={"entry": "JE-1"})
    other = result("pass", check_id="ar.drift")
    events = events_for_results(
        [other], group_threshold=5, open_fingerprints={("gl.unbalanced", "erp"): {open_fp}}
    )
    assert events == []
