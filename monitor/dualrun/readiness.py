"""Cutover readiness: the dual run's exit criteria (``settings.dualrun.exit_criteria``) evaluated on the
stored runs, the match rate per entity over time, and one go/no-go.

Go needs every criterion passed and the latest run of every comparison complete (a comparison whose last
run failed is a blind spot, not a green light). Each criterion reports its current value in words and as a
number, so the dashboard and the API show *why* it is no-go ("2 of 3 consecutive daily matches").

:class:`ReadinessCollector` exposes the same on ``/metrics`` (labels: comparison, entity, criterion — all
bounded by the configuration).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from monitor.dualrun.store import DualRunRun, EntityPoint, history
from monitor.settings import DualRunCriterion, MonitorConfig

log = logging.getLogger(__name__)

Status = Literal["go", "no-go"]
HISTORY_RUNS = 400
"""Runs read to evaluate the criteria and draw the match rate over time."""


@dataclass(frozen=True, slots=True)
class CriterionResult:
    name: str
    description: str
    kind: str
    comparison: str | None
    entity: str | None
    passed: bool
    value: float | None
    """The criterion's current measure (streak, money, match rate, count); None without data."""
    target: str
    detail: str
    """The current value in words."""


@dataclass(frozen=True, slots=True)
class RatePoint:
    run_id: int
    started_at: datetime
    as_of: date | None
    period: str | None
    match_rate: float
    differences: int
    status: str


@dataclass(frozen=True, slots=True)
class EntityReadiness:
    comparison: str
    entity: str
    kind: str
    latest_status: str
    latest_match_rate: float
    latest_differences: int
    changed: int
    missing_in_new: int
    extra_in_new: int
    money_affected: Decimal
    unexplained: int
    unexplained_money: Decimal
    last_run_at: datetime
    history: tuple[RatePoint, ...]
    """Oldest first: the match rate over time."""


@dataclass(frozen=True, slots=True)
class ComparisonState:
    comparison: str
    runs: int
    last_run_at: datetime | None
    last_status: str | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Readiness:
    status: Status
    evaluated_at: datetime
    criteria: tuple[CriterionResult, ...]
    entities: tuple[EntityReadiness, ...]
    comparisons: tuple[ComparisonState, ...]
    reasons: tuple[str, ...] = field(default=())
    """Why it is no-go, one line per failed criterion or incomplete comparison."""


# --- evaluation ------------------------------------------------------------------------------------------


def _selected(points: Sequence[EntityPoint], criterion: DualRunCriterion) -> list[EntityPoint]:
    return [
        p
        for p in points
        if (criterion.comparison is None or p.comparison == criterion.comparison)
        and (criterion.entity is None or p.entity == criterion.entity)
    ]


def _latest(points: Sequence[EntityPoint], *, per_period: bool) -> list[EntityPoint]:
    """The newest point per (comparison, entity) — or per (comparison, entity, period)."""
    newest: dict[tuple[str, str, str | None], EntityPoint] = {}
    for p in points:  # oldest first, so later ones win
        newest[(p.comparison, p.entity, p.period if per_period else None)] = p
    return list(newest.values())


def _day(p: EntityPoint) -> date:
    return p.started_at.astimezone(UTC).date()


def _consecutive(points: Sequence[EntityPoint], criterion: DualRunCriterion) -> CriterionResult:
    """Matching daily runs in a row, newest backwards; the latest run of each day counts."""
    runs: dict[int, list[EntityPoint]] = defaultdict(list)
    for p in points:
        runs[p.run_id].append(p)
    by_day: dict[date, list[EntityPoint]] = {}
    for run_points in sorted(runs.values(), key=lambda ps: (ps[0].started_at, ps[0].run_id)):
        by_day[_day(run_points[0])] = run_points  # the day's latest run replaces earlier ones
    streak = 0
    for day in sorted(by_day, reverse=True):
        if all(p.status == "match" for p in by_day[day]):
            streak += 1
        else:
            break
    target = f">= {criterion.runs} consecutive daily matching runs"
    if not by_day:
        return _result(criterion, False, None, target, "no run yet")
    last = max(by_day)
    detail = f"{streak} of {criterion.runs} consecutive daily matching runs (last run {last.isoformat()})"
    return _result(criterion, streak >= criterion.runs, float(streak), target, detail)


def _within(points: Sequence[EntityPoint], criterion: DualRunCriterion) -> CriterionResult:
    latest = _latest(points, per_period=True)
    limit = f"money affected <= {criterion.max_money}"
    if criterion.max_differences is not None:
        limit += f" and differences <= {criterion.max_differences}"
    if not latest:
        return _result(criterion, False, None, limit, "no run yet")
    newest_run = max(p.run_id for p in latest)
    current = [p for p in latest if p.run_id == newest_run]
    money = sum((p.money_affected for p in current), Decimal("0.00"))
    differences = sum(p.differences for p in current)
    errors = [p for p in current if p.status == "error"]
    passed = not errors and money <= criterion.max_money
    if criterion.max_differences is not None:
        passed = passed and differences <= criterion.max_differences
    detail = f"{differences} difference(s), money affected {money:,.2f}"
    if errors:
        detail += f"; {len(errors)} could not be compared"
    return _result(criterion, passed, float(money), limit, detail)


def _match_rate(points: Sequence[EntityPoint], criterion: DualRunCriterion) -> CriterionResult:
    latest = _latest(points, per_period=False)
    target = f"match rate >= {criterion.min_match_rate:.2%} for every entity"
    if not latest:
        return _result(criterion, False, None, target, "no run yet")
    worst = min(latest, key=lambda p: (p.status != "error", p.match_rate))
    lowest = 0.0 if worst.status == "error" else worst.match_rate
    passed = lowest >= criterion.min_match_rate
    detail = f"lowest {lowest:.2%} ({worst.comparison}/{worst.entity})"
    return _result(criterion, passed, lowest, target, detail)


def _unexplained(
    points: Sequence[EntityPoint], criterion: DualRunCriterion, materiality: dict[int, Decimal]
) -> CriterionResult:
    latest = _latest(points, per_period=True)
    qualifier = " above materiality" if criterion.above_materiality else ""
    target = f"<= {criterion.max_count} unexplained difference(s){qualifier}"
    if not latest:
        return _result(criterion, False, None, target, "no run yet")
    count, money, entities = 0, Decimal("0.00"), []
    for p in latest:
        limit = criterion.materiality
        if limit is None:
            limit = materiality.get(p.run_id, Decimal(0))
        if p.unexplained and (not criterion.above_materiality or p.unexplained_money > limit):
            count += p.unexplained
            money += p.unexplained_money
            entities.append(p.entity if p.period is None else f"{p.entity} {p.period}")
    detail = f"{count} unexplained difference(s), {money:,.2f}"
    if entities:
        detail += f" in {', '.join(sorted(entities))}"
    return _result(criterion, count <= criterion.max_count, float(count), target, detail)


def _result(
    criterion: DualRunCriterion, passed: bool, value: float | None, target: str, detail: str
) -> CriterionResult:
    return CriterionResult(
        name=criterion.name,
        description=criterion.description or target,
        kind=criterion.kind,
        comparison=criterion.comparison,
        entity=criterion.entity,
        passed=passed,
        value=value,
        target=target,
        detail=detail,
    )


def evaluate_criterion(
    criterion: DualRunCriterion, points: Sequence[EntityPoint], materiality: dict[int, Decimal]
) -> CriterionResult:
    chosen = _selected(points, criterion)
    if criterion.kind == "consecutive_matches":
        return _consecutive(chosen, criterion)
    if criterion.kind == "within_tolerance":
        return _within(chosen, criterion)
    if criterion.kind == "match_rate":
        return _match_rate(chosen, criterion)
    return _unexplained(chosen, criterion, materiality)


def _rate_point(p: EntityPoint) -> RatePoint:
    return RatePoint(p.run_id, p.started_at, p.as_of, p.period, p.match_rate, p.differences, p.status)


def _entities(points: Sequence[EntityPoint]) -> list[EntityReadiness]:
    grouped: dict[tuple[str, str], list[EntityPoint]] = defaultdict(list)
    for p in points:
        grouped[(p.comparison, p.entity)].append(p)
    out = []
    for (comparison, entity), series in sorted(grouped.items()):
        last = series[-1]
        out.append(
            EntityReadiness(
                comparison=comparison,
                entity=entity,
                kind=last.kind,
                latest_status=last.status,
                latest_match_rate=last.match_rate,
                latest_differences=last.differences,
                changed=last.changed,
                missing_in_new=last.missing_in_new,
                extra_in_new=last.extra_in_new,
                money_affected=last.money_affected,
                unexplained=last.unexplained,
                unexplained_money=last.unexplained_money,
                last_run_at=last.started_at,
                history=tuple(_rate_point(p) for p in series),
            )
        )
    return out


def _comparisons(session: Session, names: Sequence[str]) -> list[ComparisonState]:
    """Run count and latest run of each comparison that ran or is named by a criterion."""
    counts = dict(
        session.execute(select(DualRunRun.comparison, func.count()).group_by(DualRunRun.comparison)).all()
    )
    states = []
    for name in sorted(set(counts) | set(names)):
        last = session.scalars(
            select(DualRunRun)
            .where(DualRunRun.comparison == name)
            .order_by(DualRunRun.started_at.desc(), DualRunRun.id.desc())
            .limit(1)
        ).first()
        states.append(
            ComparisonState(
                comparison=name,
                runs=int(counts.get(name, 0)),
                last_run_at=last.started_at if last else None,
                last_status=last.status if last else None,
                last_error=last.error if last else None,
            )
        )
    return states


def evaluate(session: Session, settings: MonitorConfig, *, now: datetime | None = None) -> Readiness:
    """The readiness of the cutover as the store shows it now."""
    now = now or datetime.now(UTC)
    points = history(session, limit_runs=HISTORY_RUNS)
    run_ids = sorted({p.run_id for p in points})
    materiality: dict[int, Decimal] = {}
    if run_ids:
        materiality = dict(
            session.execute(
                select(DualRunRun.id, DualRunRun.materiality).where(DualRunRun.id.in_(run_ids))
            ).all()
        )
    criteria = tuple(evaluate_criterion(c, points, materiality) for c in settings.dualrun.exit_criteria)
    named = [c.comparison for c in settings.dualrun.exit_criteria if c.comparison]
    comparisons = tuple(_comparisons(session, named))
    reasons = [f"{c.name}: {c.detail} (needs {c.target})" for c in criteria if not c.passed]
    for state in comparisons:
        if state.last_status is None:
            reasons.append(f"comparison {state.comparison} has not run yet")
        elif state.last_status == "error":
            why = state.last_error or "an entity could not be compared"
            reasons.append(f"comparison {state.comparison}: latest run incomplete ({why})"[:300])
    if not comparisons:
        reasons.append("no dual-run comparison has run yet")
    return Readiness(
        status="go" if not reasons else "no-go",
        evaluated_at=now,
        criteria=criteria,
        entities=tuple(_entities(points)),
        comparisons=comparisons,
        reasons=tuple(reasons),
    )


# --- metrics ---------------------------------------------------------------------------------------------


class ReadinessCollector(Collector):
    """``hypercare_dualrun_*`` at scrape time: per entity its latest match rate, differences, money
    affected and unexplained differences; per comparison the last run time; per criterion pass/fail; and
    ``hypercare_dualrun_ready`` (1 go, 0 no-go)."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: MonitorConfig,
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._factory = factory
        self._settings = settings
        if registry is not None:
            registry.register(self)

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        entity = ["comparison", "entity"]
        return {
            "rate": GaugeMetricFamily(
                "hypercare_dualrun_match_ratio",
                "Share of rows/objects/groups matching in the entity's latest dual-run comparison",
                labels=entity,
            ),
            "diff": GaugeMetricFamily(
                "hypercare_dualrun_differences",
                "Differences found by the entity's latest comparison, by kind",
                labels=[*entity, "kind"],
            ),
            "money": GaugeMetricFamily(
                "hypercare_dualrun_money_affected",
                "Money affected by the entity's latest differences, in the company currency",
                labels=entity,
            ),
            "unexplained": GaugeMetricFamily(
                "hypercare_dualrun_unexplained_differences",
                "Differences of the entity's latest comparison classified neither timing nor mapping",
                labels=entity,
            ),
            "last": GaugeMetricFamily(
                "hypercare_dualrun_last_run_timestamp_seconds",
                "When the comparison last ran (Unix time)",
                labels=["comparison"],
            ),
            "criterion": GaugeMetricFamily(
                "hypercare_dualrun_exit_criterion_passed",
                "1 when the cutover exit criterion is met, else 0",
                labels=["criterion"],
            ),
            "ready": GaugeMetricFamily(
                "hypercare_dualrun_ready", "1 when every cutover exit criterion is met (go), else 0"
            ),
        }

    def describe(self) -> Iterator[Metric]:
        yield from self._families().values()  # without touching the store

    def collect(self) -> Iterator[Metric]:
        try:
            with self._factory() as session:
                readiness = evaluate(session, self._settings)
        except SQLAlchemyError as exc:
            log.warning(
                "cannot read the store for dual-run metrics: %s",
                type(exc).__name__,
                extra={"error": str(exc).splitlines()[0][:300]},
            )
            return
        f = self._families()
        for e in readiness.entities:
            labels = [e.comparison, e.entity]
            f["rate"].add_metric(labels, e.latest_match_rate)
            f["money"].add_metric(labels, float(e.money_affected))
            f["unexplained"].add_metric(labels, float(e.unexplained))
            for kind, count in (
                ("changed", e.changed),
                ("missing_in_new", e.missing_in_new),
                ("extra_in_new", e.extra_in_new),
            ):
                f["diff"].add_metric([*labels, kind], float(count))
        for c in readiness.comparisons:
            if c.last_run_at is not None:
                f["last"].add_metric([c.comparison], c.last_run_at.timestamp())
        for crit in readiness.criteria:
            f["criterion"].add_metric([crit.name], 1.0 if crit.passed else 0.0)
        f["ready"].add_metric([], 1.0 if readiness.status == "go" else 0.0)
        yield from f.values()
