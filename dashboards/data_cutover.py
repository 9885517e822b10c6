"""Cutover readiness from the dual run: the match rate of every compared entity over time and the go/no-go of
the cutover gate.

The gate is the dual run's own (:func:`monitor.dualrun.readiness.evaluate` over ``dualrun.exit_criteria``),
not a second definition. :func:`load_dualrun` is the one seam between the dashboards and the dual-run store:
when its tables or module are missing, or no comparison has run, it answers :data:`NO_DUALRUN`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from dashboards.data import Filters
from dashboards.settings import DashboardsConfig
from monitor.dualrun.readiness import evaluate

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EntityMatch:
    """One entity result of one run: a point of the match rate over time."""

    at: datetime
    comparison: str
    entity: str
    period: str | None
    status: str
    match_rate: float
    differences: int
    run_id: int


@dataclass(frozen=True, slots=True)
class EntityLatest:
    comparison: str
    entity: str
    status: str
    match_rate: float
    differences: int
    unexplained: int
    money_affected: float
    last_run_at: datetime


@dataclass(frozen=True, slots=True)
class GateCriterion:
    name: str
    passed: bool
    detail: str
    target: str


@dataclass(frozen=True, slots=True)
class DualRunStatus:
    ran: bool
    go: bool | None
    """True go, False no-go, None: nothing to judge by (no comparison has run)."""
    summary: str
    reasons: tuple[str, ...] = ()
    criteria: tuple[GateCriterion, ...] = ()
    entities: tuple[EntityLatest, ...] = ()
    history: tuple[EntityMatch, ...] = field(default=())


NO_DUALRUN = DualRunStatus(False, None, "no dual-run comparison has run yet")


def load_dualrun(conn: Connection, settings: DashboardsConfig, f: Filters, now: datetime) -> DualRunStatus:
    """The cutover gate as the dual-run store shows it now, with the entity history in the range."""
    if not inspect(conn).has_table("dualrun_run"):
        return NO_DUALRUN
    try:
        readiness = evaluate(Session(bind=conn), settings, now=now)
    except SQLAlchemyError as exc:
        log.warning("dual-run readiness unavailable", extra={"error": type(exc).__name__})
        return NO_DUALRUN
    if not readiness.entities:
        return NO_DUALRUN
    history = tuple(
        EntityMatch(
            p.started_at, e.comparison, e.entity, p.period, p.status, p.match_rate, p.differences, p.run_id
        )
        for e in readiness.entities
        for p in e.history
        if f.start_at <= p.started_at < f.end_at
    )
    entities = tuple(
        EntityLatest(
            e.comparison,
            e.entity,
            e.latest_status,
            e.latest_match_rate,
            e.latest_differences,
            e.unexplained,
            float(e.money_affected),
            e.last_run_at,
        )
        for e in readiness.entities
    )
    criteria = tuple(GateCriterion(c.name, c.passed, c.detail, c.target) for c in readiness.criteria)
    go = readiness.status == "go"
    summary = "GO" if go else f"NO-GO: {len(readiness.reasons)} open point(s)"
    return DualRunStatus(True, go, summary, tuple(readiness.reasons), criteria, entities, history)
