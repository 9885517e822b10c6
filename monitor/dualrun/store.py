"""Dual-run history in the Hypercare store: one ``dualrun_run`` row per run of a comparison and one
``dualrun_entity_result`` row per entity (and period) it compared.

The dashboards' cutover page and :mod:`monitor.dualrun.readiness` read these tables; the ticket evidence
comes from the result itself (:mod:`anomaly.dualrun`). Counts are complete; ``samples`` and
``aggregates`` are bounded (:data:`SAMPLE_LIMIT` differences, :data:`SAMPLE_BYTES` of JSON per entity) so a
run with a million differences stores a few kilobytes, not a copy of the ledger.

Statuses: an entity result is ``match`` (no difference beyond tolerance), ``differ`` or ``error`` (could not
be compared); a run is ``error`` when it failed as a whole or any entity could not be compared, else
``differ`` when any entity differs, else ``match``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Date, Float, ForeignKey, Index, Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from core.db import Base, JSONType, Money, UTCDateTime, utcnow
from monitor.dualrun.model import CLASSIFICATIONS, ComparisonResult, EntityResult, RowDifference

RunStatus = Literal["match", "differ", "error"]
SAMPLE_LIMIT = 20
"""Differences (and aggregate groups) kept per entity result."""
SAMPLE_BYTES = 64_000
"""Upper bound of one entity result's ``samples`` + ``aggregates`` JSON; samples are dropped beyond it."""
LINE_LIMIT = 10
"""Differing lines kept per business-object difference."""
EXPLAINED: tuple[str, ...] = ("timing", "mapping")
"""Classifications that explain a difference (the rest — data, defect — is *unexplained* variance)."""


class DualRunRun(Base):
    """One run of one comparison (``hypercare dualrun run``, the scheduler, the demo)."""

    __tablename__ = "dualrun_run"
    __table_args__ = (Index("ix_dualrun_run_comparison_started", "comparison", "started_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    comparison: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[date | None] = mapped_column(Date)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(8))  # match | differ | error
    error: Mapped[str | None] = mapped_column(Text)
    trigger: Mapped[str] = mapped_column(String(32), default="manual")
    legacy_source: Mapped[str] = mapped_column(String(64), default="")
    new_source: Mapped[str] = mapped_column(String(64), default="")
    materiality: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    money_affected: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    entities: Mapped[list[DualRunEntityResult]] = relationship(
        back_populates="run", lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )


class DualRunEntityResult(Base):
    """What one entity's comparison found in one run."""

    __tablename__ = "dualrun_entity_result"
    __table_args__ = (Index("ix_dualrun_entity_result_entity_period", "entity", "period"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("dualrun_run.id", ondelete="CASCADE"), index=True)
    entity: Mapped[str] = mapped_column(String(64))
    period: Mapped[str | None] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(16), default="rows")  # rows | object | aggregate
    matched: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    missing_in_new: Mapped[int] = mapped_column(Integer, default=0)
    extra_in_new: Mapped[int] = mapped_column(Integer, default=0)
    money_affected: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    match_rate: Mapped[float] = mapped_column(Float, default=1.0)
    status: Mapped[str] = mapped_column(String(8))  # match | differ | error
    unexplained: Mapped[int] = mapped_column(Integer, default=0)
    """Differences not classified timing or mapping (:data:`EXPLAINED`)."""
    unexplained_money: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    by_classification: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    money_by_classification: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    samples: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    aggregates: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    rows_legacy: Mapped[int] = mapped_column(Integer, default=0)
    rows_new: Mapped[int] = mapped_column(Integer, default=0)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    normalised: Mapped[dict[str, dict[str, int]]] = mapped_column(JSONType, default=dict)
    """Normalisation rule -> side -> matched rows it changed (:attr:`EntityResult.normalised`)."""
    plan: Mapped[str] = mapped_column(Text, default="")
    """How the rows were segmented, and why a slower plan was used."""
    error: Mapped[str | None] = mapped_column(Text)
    run: Mapped[DualRunRun] = relationship(back_populates="entities")


# --- writing ---------------------------------------------------------------------------------------------


def entity_status(entity: EntityResult) -> RunStatus:
    if entity.error is not None:
        return "error"
    return "match" if entity.differences == 0 else "differ"


def run_status(result: ComparisonResult) -> RunStatus:
    statuses = {entity_status(e) for e in result.entities}
    if "error" in statuses:
        return "error"
    return "differ" if "differ" in statuses else "match"


def unexplained(entity: EntityResult, explained: Sequence[str] = EXPLAINED) -> tuple[int, Decimal]:
    """Count and money of the entity's differences that no timing/mapping rule explains.

    Unclassified differences (counted but absent from ``by_classification``) are unexplained too.
    """
    classified = sum(entity.by_classification.values())
    count = sum(n for c, n in entity.by_classification.items() if c not in explained)
    count += max(entity.differences - classified, 0)
    money = sum((m for c, m in entity.money_by_classification.items() if c not in explained), Decimal("0.00"))
    if not entity.money_by_classification and count:
        money = entity.money_affected
    return count, money


def _bounded_difference(diff: RowDifference) -> dict[str, Any]:
    data = diff.to_dict()
    if len(diff.lines) > LINE_LIMIT:
        data["lines"] = data["lines"][:LINE_LIMIT]
        data["lines_omitted"] = len(diff.lines) - LINE_LIMIT
    return data


def bounded_samples(entity: EntityResult) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The entity's samples and aggregate groups as JSON-safe dicts, within the bounds above."""
    samples = [_bounded_difference(d) for d in entity.samples[:SAMPLE_LIMIT]]
    aggregates = [a.to_dict() for a in entity.aggregates[:SAMPLE_LIMIT]]
    while samples or aggregates:
        size = len(json.dumps([samples, aggregates], ensure_ascii=False, default=str))
        if size <= SAMPLE_BYTES:
            break
        if len(samples) >= len(aggregates):
            samples.pop()
        else:
            aggregates.pop()
    return samples, aggregates


def _entity_row(entity: EntityResult, explained: Sequence[str]) -> DualRunEntityResult:
    samples, aggregates = bounded_samples(entity)
    count, money = unexplained(entity, explained)
    return DualRunEntityResult(
        entity=entity.entity[:64],
        period=entity.period,
        kind=entity.kind,
        matched=entity.matched,
        changed=entity.changed,
        missing_in_new=entity.missing_in_new,
        extra_in_new=entity.extra_in_new,
        money_affected=entity.money_affected,
        match_rate=entity.match_rate,
        status=entity_status(entity),
        unexplained=count,
        unexplained_money=money,
        by_classification=dict(entity.by_classification),
        money_by_classification={k: str(v) for k, v in entity.money_by_classification.items()},
        samples=samples,
        aggregates=aggregates,
        rows_legacy=entity.rows_legacy,
        rows_new=entity.rows_new,
        duration_s=entity.duration_s,
        normalised={rule: dict(sides) for rule, sides in entity.normalised.items()},
        plan=entity.plan,
        error=entity.error[:2000] if entity.error else None,
    )


def store_result(
    session: Session,
    result: ComparisonResult,
    *,
    trigger: str = "manual",
    explained: Sequence[str] = EXPLAINED,
) -> DualRunRun:
    """Persist one comparison run with its entity results. Flushes; the caller commits.

    ``explained``: the classifications that explain a difference (``settings.dualrun.explained``).
    """
    run = DualRunRun(
        comparison=result.comparison[:64],
        as_of=result.as_of,
        started_at=result.started_at,
        finished_at=result.finished_at,
        status=run_status(result),
        error=None,
        trigger=trigger[:32],
        legacy_source=result.legacy_source[:64],
        new_source=result.new_source[:64],
        materiality=result.materiality,
        money_affected=result.money_affected,
    )
    run.entities = [_entity_row(e, explained) for e in result.entities]
    session.add(run)
    session.flush()
    return run


def store_failure(
    session: Session,
    comparison: str,
    error: str,
    *,
    started_at: datetime,
    finished_at: datetime,
    as_of: date | None = None,
    trigger: str = "manual",
) -> DualRunRun:
    """Record a run that could not compare at all (a source down, a broken configuration)."""
    run = DualRunRun(
        comparison=comparison[:64],
        as_of=as_of,
        started_at=started_at,
        finished_at=finished_at,
        status="error",
        error=error[:2000],
        trigger=trigger[:32],
    )
    run.entities = []
    session.add(run)
    session.flush()
    return run


# --- reading ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntityPoint:
    """One entity result with its run's identity: a point of the match rate over time."""

    run_id: int
    comparison: str
    as_of: date | None
    started_at: datetime
    entity: str
    period: str | None
    kind: str
    status: str
    matched: int
    changed: int
    missing_in_new: int
    extra_in_new: int
    differences: int
    match_rate: float
    money_affected: Decimal
    unexplained: int
    unexplained_money: Decimal
    aggregates: tuple[dict[str, Any], ...]


def history(session: Session, comparison: str | None = None, *, limit_runs: int = 400) -> list[EntityPoint]:
    """Entity results of the latest ``limit_runs`` runs (of one comparison, or all), oldest first.

    Two queries whatever the number of runs (the runs, then their entity results).
    """
    runs_q = select(DualRunRun).order_by(DualRunRun.started_at.desc(), DualRunRun.id.desc())
    if comparison is not None:
        runs_q = runs_q.where(DualRunRun.comparison == comparison)
    runs = {r.id: r for r in session.scalars(runs_q.limit(limit_runs))}
    if not runs:
        return []
    rows = session.scalars(
        select(DualRunEntityResult)
        .where(DualRunEntityResult.run_id.in_(list(runs)))
        .order_by(DualRunEntityResult.id)
    )
    points = []
    for row in rows:
        run = runs[row.run_id]
        points.append(
            EntityPoint(
                run_id=run.id,
                comparison=run.comparison,
                as_of=run.as_of,
                started_at=run.started_at,
                entity=row.entity,
                period=row.period,
                kind=row.kind,
                status=row.status,
                matched=row.matched,
                changed=row.changed,
                missing_in_new=row.missing_in_new,
                extra_in_new=row.extra_in_new,
                differences=row.changed + row.missing_in_new + row.extra_in_new,
                match_rate=row.match_rate,
                money_affected=row.money_affected,
                unexplained=row.unexplained,
                unexplained_money=row.unexplained_money,
                aggregates=tuple(row.aggregates or ()),
            )
        )
    points.sort(key=lambda p: (p.started_at, p.run_id))
    return points


def list_runs(
    session: Session, *, comparison: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[DualRunRun], dict[int, list[DualRunEntityResult]], int]:
    """Runs newest first with their entity results (three queries: count, runs, entity results)."""
    base = select(DualRunRun)
    count_q = select(func.count()).select_from(DualRunRun)
    if comparison is not None:
        base = base.where(DualRunRun.comparison == comparison)
        count_q = count_q.where(DualRunRun.comparison == comparison)
    total = int(session.scalar(count_q) or 0)
    runs = list(
        session.scalars(
            base.order_by(DualRunRun.started_at.desc(), DualRunRun.id.desc()).limit(limit).offset(offset)
        )
    )
    by_run: dict[int, list[DualRunEntityResult]] = {r.id: [] for r in runs}
    if runs:
        for row in session.scalars(
            select(DualRunEntityResult)
            .where(DualRunEntityResult.run_id.in_(list(by_run)))
            .order_by(DualRunEntityResult.id)
        ):
            by_run[row.run_id].append(row)
    return runs, by_run, total


def load_result(session: Session, run_id: int) -> ComparisonResult | None:
    """A stored run back as a :class:`ComparisonResult` (samples as stored, i.e. bounded)."""
    run = session.get(DualRunRun, run_id)
    if run is None:
        return None
    rows = session.scalars(
        select(DualRunEntityResult)
        .where(DualRunEntityResult.run_id == run_id)
        .order_by(DualRunEntityResult.id)
    )
    entities = tuple(
        EntityResult.from_dict(
            {
                "entity": row.entity,
                "kind": row.kind,
                "period": row.period,
                "matched": row.matched,
                "changed": row.changed,
                "missing_in_new": row.missing_in_new,
                "extra_in_new": row.extra_in_new,
                "money_affected": str(row.money_affected),
                "by_classification": row.by_classification or {},
                "money_by_classification": row.money_by_classification or {},
                "samples": row.samples or [],
                "aggregates": row.aggregates or [],
                "duration_s": row.duration_s,
                "rows_legacy": row.rows_legacy,
                "rows_new": row.rows_new,
                "normalised": row.normalised or {},
                "plan": row.plan or "",
                "error": row.error,
            }
        )
        for row in rows
    )
    return ComparisonResult(
        comparison=run.comparison,
        as_of=run.as_of,
        started_at=run.started_at,
        finished_at=run.finished_at or run.started_at,
        entities=entities,
        legacy_source=run.legacy_source,
        new_source=run.new_source,
        materiality=run.materiality,
    )


__all__ = [
    "CLASSIFICATIONS",
    "EXPLAINED",
    "DualRunEntityResult",
    "DualRunRun",
    "EntityPoint",
    "bounded_samples",
    "entity_status",
    "history",
    "list_runs",
    "load_result",
    "run_status",
    "store_failure",
    "store_result",
    "unexplained",
]
