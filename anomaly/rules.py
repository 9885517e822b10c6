"""Business-exception rules over check results: which failures become events, with what identity.

Pure functions, no I/O. A failing check becomes one event per offending entity, or one grouped event per
check and source when the offending entities are more than ``group_threshold``. A check that cannot run
becomes a technical event of its own (a blind spot is an exception too). Recovery: fingerprints that were
open for a check and are no longer offending get a ``resolve`` event, so tickets close only when a re-run
proves the fix.

Severity: without ``settings`` an event carries the check's declared severity (the pipeline's behaviour
until it passes ``settings.anomaly``); with them, :mod:`anomaly.severity` raises or lowers it by money at
risk, documents affected, the close window and external parties, recording every reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from anomaly.events import Event, fingerprint
from anomaly.settings import AnomalySettings
from anomaly.severity import Exposure, SeverityContext, adjust
from core.vocabulary import Category, Priority, parse
from monitor.results import CheckResult

OpenFingerprints = Mapping[tuple[str, str], set[str]]
"""Fingerprints with an open exception, per (check id, source)."""

COLLECTOR_ERROR_SEVERITY = Priority.P3


def _describe_entity(entity: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in entity.items())


def _row_amount(result: CheckResult, index: int) -> Decimal | None:
    return result.amounts[index] if index < len(result.amounts) else None


def _severity(
    result: CheckResult,
    amount: Decimal | None,
    settings: AnomalySettings | None,
    context: SeverityContext | None,
) -> dict[str, Any]:
    declared = f"{result.severity} as declared by check {result.check_id}"
    declared_priority = parse(Priority, result.severity)
    if settings is None or declared_priority is None:
        return {"severity": result.severity, "severity_reasons": (declared,)}
    exposure = Exposure(
        check_id=result.check_id,
        when=result.finished_at,
        amount=amount,
        affected=max(result.violations, len(result.entities)),
        tags=result.tags,
    )
    severity, reasons = adjust(declared_priority, exposure, settings, context)
    return {"severity": severity, "severity_reasons": (declared, *reasons)}


def _base(result: CheckResult) -> dict[str, Any]:
    return {
        "category": result.category,
        "source": result.source,
        "check_id": result.check_id,
        "runbook": result.runbook,
        "occurred_at": result.finished_at,
        "labels": {"owner": result.owner} if result.owner else {},
    }


def events_for_result(
    result: CheckResult,
    *,
    group_threshold: int,
    open_fingerprints: set[str] | None = None,
    settings: AnomalySettings | None = None,
    context: SeverityContext | None = None,
) -> list[Event]:
    """The events one check result raises (triggers, and resolves for what is no longer offending).

    ``settings`` (``Settings.anomaly``) switch the severity rules on; ``context`` gives them the calendar.
    """
    open_now = set(open_fingerprints or ())
    if result.status == "error":
        return [
            Event(
                fingerprint=fingerprint("collector-error", result.check_id, result.source),
                severity=COLLECTOR_ERROR_SEVERITY,
                category=Category.TECHNICAL,
                summary=f"Check {result.check_id} could not run on {result.source}: {result.error}"[:300],
                source=result.source,
                check_id=result.check_id,
                runbook="collector-error",
                evidence={"error": result.error},
                occurred_at=result.finished_at,
                labels={"kind": "collector-error"},
            )
        ]
    events: list[Event] = []
    raised: set[str] = set()
    if result.status == "fail":
        base = _base(result)
        if len(result.entities) > group_threshold:
            fp = fingerprint(result.check_id, result.source)
            raised.add(fp)
            events.append(
                Event(
                    fingerprint=fp,
                    summary=f"{result.title}: {result.violations} offending rows on {result.source}"[:300],
                    entity={},
                    amount_at_risk=result.amount_at_risk,
                    evidence={
                        "violations": result.violations,
                        "sample": result.sample,
                        "entities": result.entities[:200],
                    },
                    **{**base, "labels": {**base["labels"], "grouped": "true"}},
                    **_severity(result, result.amount_at_risk, settings, context),
                )
            )
        else:
            for index, entity in enumerate(result.entities):
                fp = fingerprint(result.check_id, result.source, entity=entity)
                raised.add(fp)
                sample = result.sample[index] if index < len(result.sample) else {}
                amount = _row_amount(result, index)
                described = _describe_entity(entity)
                summary = f"{result.title}: {described}" if described else result.title
                events.append(
                    Event(
                        fingerprint=fp,
                        summary=summary[:300],
                        entity=entity,
                        amount_at_risk=amount,
                        evidence={
                            "row": sample,
                            "violations": result.violations,
                            "measured_value": result.measured_value,
                        },
                        **base,
                        **_severity(result, amount, settings, context),
                    )
                )
    # "warn" raises nothing yet: a warning alone is not worth a person's time (anomaly/ detectors decide).
    if result.status in {"pass", "fail"}:
        for fp in sorted(open_now - raised):
            events.append(
                Event(
                    fingerprint=fp,
                    action="resolve",
                    severity=result.severity,
                    category=result.category,
                    summary=f"{result.title}: passes again on {result.source}"[:300],
                    source=result.source,
                    check_id=result.check_id,
                    occurred_at=result.finished_at,
                    evidence={
                        "proof": f"re-run at {result.finished_at.isoformat()} found it no longer offending"
                    },
                )
            )
    return events


def events_for_results(
    results: Iterable[CheckResult],
    *,
    group_threshold: int,
    open_fingerprints: OpenFingerprints,
    settings: AnomalySettings | None = None,
    context: SeverityContext | None = None,
) -> list[Event]:
    return [
        event
        for result in results
        for event in events_for_result(
            result,
            group_threshold=group_threshold,
            open_fingerprints=open_fingerprints.get((result.check_id, result.source)),
            settings=settings,
            context=context,
        )
    ]
