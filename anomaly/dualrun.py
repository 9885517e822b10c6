"""Dual-run differences as events: one per comparison, entity and period, with the differing rows as
evidence, so the ticket queue gets one ticket per thing to reconcile, not one per row.

Identity: the check id is ``dualrun.<comparison>.<entity>``, the source the new system's source, and the
entity ``{"period": ...}`` (empty for a run over everything): the fingerprint says *what* differs, never
*when*, so tomorrow's run of the same entity and period is an occurrence on today's ticket, and a run in
which it matches resolves it. An entity that could not be compared is a technical event of its own
(``dualrun-error``), resolved the same way.

Severity: ``settings.dualrun.severity`` as declared, adjusted by :mod:`anomaly.severity` with the money
affected against the comparison's materiality (else ``anomaly.materiality``) and the number of
differences; an entity whose every difference is classified *timing* (cut-off, expected to clear by
itself) is lowered one level. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from anomaly.events import Event, fingerprint
from anomaly.settings import AnomalyConfig
from anomaly.severity import Exposure, SeverityContext, adjust, money, threshold
from core.vocabulary import Category, Priority
from monitor import check_ids
from monitor.dualrun.model import AggregateResult, ComparisonResult, EntityResult, RowDifference

RUNBOOK = "dualrun-difference"
ERROR_RUNBOOK = "collector-error"
EVIDENCE_ROWS = 50
"""Rows of the differences table kept in one event's evidence."""
ERROR_SEVERITY = Priority.P3
_CENT = Decimal("0.01")
_KIND_TEXT = {"changed": "changed", "missing_in_new": "missing in new", "extra_in_new": "extra in new"}

OpenFingerprints = Mapping[tuple[str, str], set[str]]
"""Fingerprints with an open ticket per (check id, source), as ``hypercare.pipeline.open_fingerprints``."""


def check_id(comparison: str, entity: str) -> str:
    """``dualrun.<comparison>.<entity>``: what runbooks' ``applies_to`` and routing rules match on."""
    return check_ids.dualrun(comparison, entity)[:128]


def event_entity(period: str | None) -> dict[str, str]:
    return {"period": period} if period else {}


def difference_fingerprint(comparison: str, entity: str, period: str | None, source: str) -> str:
    """The identity of "entity E of comparison C differs in period P" (never a time)."""
    return fingerprint(check_id(comparison, entity), source, entity=event_entity(period))


def error_fingerprint(comparison: str, entity: str, period: str | None, source: str) -> str:
    return fingerprint("dualrun-error", check_id(comparison, entity), source, entity=event_entity(period))


def _source(result: ComparisonResult) -> str:
    return (result.new_source or result.comparison)[:64]


def _key_text(key: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in key.items())


def _row_text(row: Mapping[str, str | None] | None) -> str:
    if not row:
        return ""
    return "; ".join(f"{k}={'NULL' if v is None else v}" for k, v in row.items())


def difference_rows(diff: RowDifference, prefix: str = "") -> list[dict[str, Any]]:
    """A difference as rows of the evidence table: one per differing column (or one for a whole row),
    then its lines'."""
    key = f"{prefix}{_key_text(diff.key)}"
    base = {
        "key": key,
        "difference": _KIND_TEXT.get(diff.kind, diff.kind),
        "classification": diff.classification,
    }
    rows: list[dict[str, Any]] = []
    if diff.kind == "changed" and diff.columns:
        for col in diff.columns:
            rows.append(
                {
                    **base,
                    "column": col.column,
                    "legacy": col.legacy,
                    "new": col.new,
                    "delta": None if col.delta is None else str(col.delta),
                    "money": str(diff.money_affected),
                    "rule": diff.rule,
                }
            )
    elif diff.kind != "changed" or not diff.lines:
        rows.append(
            {
                **base,
                "column": "(row)" if diff.kind != "changed" else "",
                "legacy": _row_text(diff.legacy_row),
                "new": _row_text(diff.new_row),
                "delta": None,
                "money": str(diff.money_affected),
                "rule": diff.rule,
            }
        )
    for line in diff.lines:
        rows.extend(difference_rows(line, prefix=f"{key} / "))
    return rows


def aggregate_rows(aggregates: Iterable[AggregateResult]) -> list[dict[str, Any]]:
    return [
        {
            "group": _key_text(a.group),
            "measure": a.measure,
            "legacy": None if a.legacy is None else str(a.legacy),
            "new": None if a.new is None else str(a.new),
            "delta": str(a.delta),
        }
        for a in aggregates
        if not a.within_tolerance
    ]


def _amount(value: Decimal) -> Decimal:
    return abs(value).quantize(_CENT)


def _summary(result: ComparisonResult, entity: EntityResult, currency: str) -> str:
    where = f" ({entity.period})" if entity.period else ""
    unit = "groups" if entity.kind == "aggregate" else "objects" if entity.kind == "object" else "rows"
    counts = ", ".join(
        (
            f"{entity.changed} changed",
            f"{entity.missing_in_new} missing in new",
            f"{entity.extra_in_new} extra in new",
        )
    )
    amount = f"; {money(_amount(entity.money_affected))} {currency} affected" if entity.money_affected else ""
    return f"Dual run {result.comparison}: {entity.entity}{where} differs — {counts} {unit}{amount}"[:300]


def _dominant(entity: EntityResult) -> str:
    """The classification with the most money (then the most differences): the ticket's label."""
    if not entity.by_classification:
        return "defect"
    return max(
        entity.by_classification,
        key=lambda c: (entity.money_by_classification.get(c, Decimal(0)), entity.by_classification[c]),
    )


def _severity(
    result: ComparisonResult,
    entity: EntityResult,
    settings: AnomalyConfig,
    context: SeverityContext | None,
) -> tuple[Priority, tuple[str, ...]]:
    declared: Priority = settings.dualrun.severity
    anomaly = settings.anomaly
    if result.materiality > 0:
        anomaly = anomaly.model_copy(update={"materiality": result.materiality})
    exposure = Exposure(
        check_id=check_id(result.comparison, entity.entity),
        when=result.finished_at,
        amount=_amount(entity.money_affected),
        affected=entity.differences,
    )
    severity, reasons = adjust(declared, exposure, anomaly, context)
    reasons = (f"{declared} as declared for dual-run differences (dualrun.severity)", *reasons)
    classes = {c for c, n in entity.by_classification.items() if n}
    if classes == {"timing"} and sum(entity.by_classification.values()) >= entity.differences:
        lowered = severity.step(+1)
        why = "every difference is a timing (cut-off) difference, expected to clear in a later run"
        reasons = (*reasons, f"lowered to {lowered}: {why}" if lowered != severity else f"stays P4: {why}")
        severity = lowered
    return severity, reasons


def _evidence(result: ComparisonResult, entity: EntityResult, currency: str) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for diff in entity.samples:
        rows.extend(difference_rows(diff))
        if len(rows) >= EVIDENCE_ROWS:
            break
    evidence: dict[str, Any] = {
        "comparison": result.comparison,
        "legacy_source": result.legacy_source,
        "new_source": result.new_source,
        "period": entity.period or "all",
        "as_of": result.as_of.isoformat() if result.as_of else None,
        "matched": entity.matched,
        "changed": entity.changed,
        "missing_in_new": entity.missing_in_new,
        "extra_in_new": entity.extra_in_new,
        "match_rate": f"{entity.match_rate:.4%}",
        "money_affected": f"{_amount(entity.money_affected)} {currency}",
        "materiality": f"{threshold(result.materiality)} {currency}",
        "classification": {c: entity.by_classification.get(c, 0) for c in sorted(entity.by_classification)},
    }
    if rows:
        evidence["differences"] = rows[:EVIDENCE_ROWS]
    groups = aggregate_rows(entity.aggregates)
    if groups:
        evidence["totals"] = groups[:EVIDENCE_ROWS]
    shown = min(len(entity.samples), entity.differences)
    if entity.differences > shown:
        evidence["not_shown"] = f"{entity.differences - shown} more difference(s): hypercare dualrun report"
    return evidence


def _trigger(
    result: ComparisonResult,
    entity: EntityResult,
    settings: AnomalyConfig,
    context: SeverityContext | None,
) -> Event:
    source = _source(result)
    severity, reasons = _severity(result, entity, settings, context)
    currency = settings.anomaly.currency
    return Event(
        fingerprint=difference_fingerprint(result.comparison, entity.entity, entity.period, source),
        severity=severity,
        category=Category.DATA,
        summary=_summary(result, entity, currency),
        source=source,
        check_id=check_id(result.comparison, entity.entity),
        producer="dualrun",
        labels={
            "kind": "dualrun",
            "comparison": result.comparison[:64],
            "entity": entity.entity[:64],
            "classification": _dominant(entity),
        },
        entity=event_entity(entity.period),
        evidence=_evidence(result, entity, currency),
        amount_at_risk=_amount(entity.money_affected),
        runbook=RUNBOOK,
        severity_reasons=reasons,
        occurred_at=result.finished_at,
    )


def _error(result: ComparisonResult, entity: EntityResult) -> Event:
    source = _source(result)
    where = f" ({entity.period})" if entity.period else ""
    return Event(
        fingerprint=error_fingerprint(result.comparison, entity.entity, entity.period, source),
        severity=ERROR_SEVERITY,
        category=Category.TECHNICAL,
        summary=f"Dual run {result.comparison}: {entity.entity}{where} could not be compared: {entity.error}"[
            :300
        ],
        source=source,
        check_id=check_id(result.comparison, entity.entity),
        producer="dualrun",
        labels={"kind": "dualrun-error", "comparison": result.comparison[:64], "entity": entity.entity[:64]},
        entity=event_entity(entity.period),
        evidence={"error": entity.error, "legacy_source": result.legacy_source, "new_source": source},
        runbook=ERROR_RUNBOOK,
        occurred_at=result.finished_at,
    )


def _resolve(result: ComparisonResult, entity: EntityResult, fp: str, what: str) -> Event:
    where = f" ({entity.period})" if entity.period else ""
    return Event(
        fingerprint=fp,
        action="resolve",
        severity=Priority.P4,
        category=Category.DATA if what == "matches" else Category.TECHNICAL,
        summary=f"Dual run {result.comparison}: {entity.entity}{where} {what} again"[:300],
        source=_source(result),
        check_id=check_id(result.comparison, entity.entity),
        producer="dualrun",
        occurred_at=result.finished_at,
        evidence={
            "proof": f"run finished at {result.finished_at.isoformat()}: {entity.matched} matched, "
            f"{entity.differences} differences",
        },
    )


def events_for_comparison(
    result: ComparisonResult,
    settings: AnomalyConfig,
    *,
    open_fingerprints: OpenFingerprints | None = None,
    context: SeverityContext | None = None,
) -> list[Event]:
    """Triggers for entities that differ (or could not be compared); resolves for open ones that match.

    ``open_fingerprints``: fingerprints with an open ticket per (check id, source); a resolve is raised
    only for those, so a clean run of a clean entity writes nothing.
    """
    source = _source(result)
    opened = open_fingerprints or {}
    events: list[Event] = []
    for entity in result.entities:
        open_now = opened.get((check_id(result.comparison, entity.entity), source), set())
        diff_fp = difference_fingerprint(result.comparison, entity.entity, entity.period, source)
        error_fp = error_fingerprint(result.comparison, entity.entity, entity.period, source)
        if entity.error is not None:
            events.append(_error(result, entity))
            continue  # says nothing about the differences: their ticket stays as it is
        if error_fp in open_now:
            events.append(_resolve(result, entity, error_fp, "can be compared"))
        if entity.differences:
            events.append(_trigger(result, entity, settings, context))
        elif diff_fp in open_now:
            events.append(_resolve(result, entity, diff_fp, "matches"))
    return events
