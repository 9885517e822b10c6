"""Cutover readiness over HTTP, read-only: the dual run's go/no-go with each exit criterion's current value
and the match rate per entity over time (``/readiness``), and the comparison runs (``/runs``).

Any role that may read tickets may read these (viewer and up). The data comes from
:mod:`monitor.dualrun.readiness` and :mod:`monitor.dualrun.store`; this module only shapes it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict

from hypercare.config import Settings
from monitor.dualrun import readiness as ready
from monitor.dualrun.store import list_runs
from tickets.api.deps import SessionDep, require_scope
from tickets.api.schemas import Problem
from tickets.api.state import app_state

router = APIRouter(
    prefix="/api/v1/dualrun",
    tags=["dual run"],
    dependencies=[Depends(require_scope("tickets:read"))],
    responses={
        401: {"model": Problem, "description": "Missing, invalid or revoked bearer token."},
        403: {"model": Problem, "description": "The token's role may not read (reporter)."},
    },
)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class CriterionPublic(_Out):
    name: str
    description: str
    kind: str
    comparison: str | None
    entity: str | None
    passed: bool
    value: float | None
    target: str
    detail: str


class RatePointPublic(_Out):
    run_id: int
    started_at: datetime
    as_of: date | None
    period: str | None
    match_rate: float
    differences: int
    status: str


class EntityReadinessPublic(_Out):
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
    history: list[RatePointPublic]


class ComparisonStatePublic(_Out):
    comparison: str
    runs: int
    last_run_at: datetime | None
    last_status: str | None
    last_error: str | None


class ReadinessPublic(_Out):
    status: Literal["go", "no-go"]
    evaluated_at: datetime
    reasons: list[str]
    criteria: list[CriterionPublic]
    comparisons: list[ComparisonStatePublic]
    entities: list[EntityReadinessPublic]


class EntityResultPublic(_Out):
    entity: str
    period: str | None
    kind: str
    status: str
    matched: int
    changed: int
    missing_in_new: int
    extra_in_new: int
    match_rate: float
    money_affected: Decimal
    unexplained: int
    unexplained_money: Decimal
    error: str | None


class RunPublic(_Out):
    id: int
    comparison: str
    as_of: date | None
    started_at: datetime
    finished_at: datetime | None
    status: str
    error: str | None
    trigger: str
    legacy_source: str
    new_source: str
    materiality: Decimal
    money_affected: Decimal
    entities: list[EntityResultPublic]


class RunList(BaseModel):
    total: int
    items: list[RunPublic]


@router.get("/readiness", response_model=ReadinessPublic, summary="Cutover go/no-go and exit criteria")
def get_readiness(session: SessionDep, request: Request) -> ReadinessPublic:
    settings = app_state(request).settings
    if not isinstance(settings, Settings):  # the wiring mounts this router only on apps it built
        raise TypeError("the dual-run API needs the app built with Hypercare's full settings")
    return ReadinessPublic.model_validate(ready.evaluate(session, settings))


@router.get("/runs", response_model=RunList, summary="Dual-run comparison runs, newest first")
def get_runs(
    session: SessionDep,
    comparison: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> RunList:
    runs, by_run, total = list_runs(session, comparison=comparison, limit=limit, offset=offset)
    items = [
        RunPublic.model_validate(
            {
                **{c: getattr(run, c) for c in RunPublic.model_fields if c != "entities"},
                "entities": [EntityResultPublic.model_validate(row) for row in by_run[run.id]],
            }
        )
        for run in runs
    ]
    return RunList(total=total, items=items)
