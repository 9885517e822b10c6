"""Run a comparison: every (selected) entity, both sides at once, each entity's failure its own error."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from monitor.checks import reason
from monitor.dualrun.aggregate import AggregateDiff
from monitor.dualrun.checkpoint import Checkpoint
from monitor.dualrun.keyed import KeyedDiff
from monitor.dualrun.model import ComparisonConfig, ComparisonResult, EntityConfig, EntityResult
from monitor.dualrun.normalise import NormaliseError, needs_zone_tables
from monitor.dualrun.objects import ObjectDiff
from monitor.dualrun.sql import DualRunError, Source, entity_query, period_of
from monitor.readonly import ReadOnlyRefusal

log = logging.getLogger(__name__)

Progress = Callable[[str, str], None]
"""``progress(entity, step)``: called as each entity moves on."""


def run_entity(
    entity: EntityConfig,
    legacy: Source,
    new: Source,
    *,
    as_of: date | None = None,
    pool: ThreadPoolExecutor | None = None,
    progress: Progress | None = None,
    checkpoint: Checkpoint | None = None,
) -> EntityResult:
    """Compare one entity; a failure to run is an :class:`EntityResult` with ``error`` set, never a raise."""
    period = period_of(entity.period, as_of)
    label = period.label if period else None
    t0 = time.perf_counter()
    owned = pool is None
    pool = pool or ThreadPoolExecutor(max_workers=2, thread_name_prefix="dualrun")

    def step(message: str) -> None:
        if progress is not None:
            progress(entity.name, message)

    try:
        _zone_tables(entity, legacy)
        _zone_tables(entity, new)
        lq = entity_query(entity, legacy, as_of, period)
        nq = entity_query(entity, new, as_of, period)
        if entity.kind == "aggregate":
            result = AggregateDiff(entity, lq, nq, pool, step).run(label)
            return replace(result, duration_s=time.perf_counter() - t0)
        if entity.kind == "object":
            tally = ObjectDiff(entity, lq, nq, pool, step, as_of=as_of, period=period).run()
        else:
            tally = KeyedDiff(entity, lq, nq, pool, step, checkpoint=checkpoint).run()
        return tally.result(entity.kind, label, time.perf_counter() - t0)
    except (SQLAlchemyError, DualRunError, NormaliseError, ReadOnlyRefusal) as exc:
        message = reason(exc)
        log.warning(
            "dual-run entity failed", extra={"entity": entity.name, "error": message, "legacy": legacy.name}
        )
        return EntityResult(
            entity=entity.name,
            kind=entity.kind,
            period=label,
            duration_s=time.perf_counter() - t0,
            error=message,
        )
    finally:
        if owned:
            pool.shutdown(wait=True)


def _zone_tables(entity: EntityConfig, source: Source) -> None:
    """MariaDB converts zones with DST only with its time zone tables loaded: say so instead of NULLs."""
    if source.dialect != "mysql":
        return
    lines = [c for ln in entity.lines for c in ln.columns]
    columns = [*entity.key, *entity.columns, *entity.group_by, *lines]
    for zone in needs_zone_tables(columns, source.role):
        with source.connect() as conn:
            value = conn.exec_driver_sql(
                "SELECT CONVERT_TZ('2001-01-01 00:00:00', %s, '+00:00')", (zone,)
            ).scalar()
        if value is None:
            raise DualRunError(
                f"entity {entity.name}: {source.role} source {source.name} cannot convert time zone {zone}: "
                "load MariaDB's time zone tables (mysql_tzinfo_to_sql /usr/share/zoneinfo | mysql mysql)"
            )


def run_comparison(
    config: ComparisonConfig,
    legacy: Source,
    new: Source,
    *,
    as_of: date | None = None,
    only: Sequence[str] = (),
    progress: Progress | None = None,
    checkpoint: Path | None = None,
) -> ComparisonResult:
    """Compare every enabled entity (or only the named ones) and return the whole result.

    ``checkpoint``: a file recording the progress of keyed diffs with an integer leading key (see
    :mod:`monitor.dualrun.checkpoint`); an interrupted run given the same file resumes, a run that completes
    removes it."""
    unknown = sorted(set(only) - {e.name for e in config.entities})
    if unknown:
        raise DualRunError(
            f"comparison {config.name} has no entity {', '.join(unknown)}; "
            f"it has {', '.join(e.name for e in config.entities)}"
        )
    chosen = [e for e in config.entities if (e.name in only if only else e.enabled)]
    started = datetime.now(UTC)
    results = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="dualrun") as pool:
        for entity in chosen:
            result = run_entity(
                entity,
                legacy,
                new,
                as_of=as_of,
                pool=pool,
                progress=progress,
                checkpoint=Checkpoint(checkpoint) if checkpoint is not None else None,
            )
            log.info(
                "dual-run entity compared",
                extra={
                    "comparison": config.name,
                    "entity": entity.name,
                    "matched": result.matched,
                    "differences": result.differences,
                    "error": result.error,
                    "duration_s": round(result.duration_s, 3),
                },
            )
            results.append(result)
    for source in (legacy, new):
        source.engine.dispose()  # let go of the comparison's pooled connections (monitor.dualrun.sql)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)  # complete: the next run starts over
    return ComparisonResult(
        comparison=config.name,
        as_of=as_of,
        started_at=started,
        finished_at=datetime.now(UTC),
        entities=tuple(results),
        legacy_source=legacy.name,
        new_source=new.name,
        materiality=config.materiality,
    )
