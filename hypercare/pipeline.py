"""One pass of the pipeline: monitor -> anomaly -> tickets -> notifications.

Collection runs outside any store transaction (it talks to monitored systems, which may be slow); storing
results, raising events and updating tickets is one transaction, so a crash leaves either all of a pass or
none of it; notifications go out afterwards from the durable outbox, so none is lost if sending fails.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from anomaly.dualrun import events_for_comparison
from anomaly.events import Event, fingerprint
from anomaly.rules import events_for_results
from anomaly.state import MetricWatch, severity_context
from anomaly.volumes import VolumeWatch
from core.session import session_scope
from core.vocabulary import Category, Priority
from hypercare.config import Settings
from monitor.checks import CheckSpec
from monitor.collect import Collection, Progress, collect, store_collection
from monitor.dualrun.model import ComparisonResult
from monitor.dualrun.schedule import DualRunCollection, record_dualrun_failure
from monitor.dualrun.store import store_result as store_dualrun
from monitor.leases import SourceChange
from monitor.results import CheckResult
from monitor.scheduler import UnitOutcome
from monitor.volumes import VolumeSpec
from runbooks.diagnostics import attach_runbooks_quietly
from tickets.models import Ticket
from tickets.notify import AppriseNotifier, DispatchReport, Notifier, dispatch_pending
from tickets.service import TicketService

log = logging.getLogger(__name__)
SOURCE_DOWN_SEVERITY = Priority.P2


@dataclass
class PipelineReport:
    run_id: int
    results: list[CheckResult]
    events: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    opened: list[int] = field(default_factory=list)
    notifications: DispatchReport | None = None


def open_fingerprints(session: Session) -> dict[tuple[str, str], set[str]]:
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    rows = session.execute(
        select(Ticket.check_id, Ticket.source, Ticket.fingerprint).where(
            Ticket.open_fingerprint.is_not(None), Ticket.check_id.is_not(None)
        )
    )
    for check_id, source, fp in rows:
        if check_id is not None:
            found[(check_id, source)].add(fp)
    return found


def run_pipeline(
    settings: Settings,
    factory: sessionmaker[Session],
    checks: Sequence[CheckSpec],
    *,
    now: datetime | None = None,
    http_client: httpx.Client | None = None,
    notifier: Notifier | None = None,
    progress: Progress | None = None,
    trigger: str = "manual",
    volumes: Sequence[VolumeSpec] = (),
) -> PipelineReport:
    """Collect every check, volume watch and probe once, then process the whole pass (see
    :func:`process_collection`)."""
    now = now or datetime.now(UTC)
    collection = collect(
        settings, checks, now=now, http_client=http_client, progress=progress, volumes=volumes
    )
    return process_collection(settings, factory, collection, trigger=trigger, notifier=notifier)


def process_collection(
    settings: Settings,
    factory: sessionmaker[Session],
    collection: Collection,
    *,
    trigger: str = "manual",
    notifier: Notifier | None = None,
    dispatch: bool = True,
    quiet_errors: bool = False,
    in_transaction: Callable[[Session], Sequence[Event]] | None = None,
) -> PipelineReport:
    """Store a collection's results, raise its events and update tickets in one transaction; then send
    due notifications (unless ``dispatch`` is False: the caller dispatches).

    ``quiet_errors``: error results are stored but raise no event of their own (their source is down,
    and that outage is one event). ``in_transaction`` runs inside the same transaction (the scheduler
    releases its lease there) and may return more events to ingest.
    """
    with session_scope(factory) as session:
        run = store_collection(session, collection, trigger=trigger)
        raising = [r for r in collection.results if not (quiet_errors and r.status == "error")]
        context = severity_context(settings.anomaly)
        events = events_for_results(
            raising,
            group_threshold=settings.tickets.group_threshold,
            open_fingerprints=open_fingerprints(session),
            settings=settings.anomaly,
            context=context,
        )
        watch = MetricWatch(settings.anomaly, context)
        events = [*events, *watch.observe(session, collection.samples, collection.results)]
        events = [*events, *VolumeWatch(settings.anomaly, context).observe(session, collection.volumes)]
        if in_transaction is not None:
            events = [*events, *in_transaction(session)]
        report = PipelineReport(run_id=run.id, results=collection.results, events=len(events))
        runbook_tickets = _ingest(TicketService(session, settings), events, report)
    _after_commit(settings, factory, report, runbook_tickets, dispatch=dispatch, notifier=notifier)
    log.info(
        "pipeline pass done",
        extra={"run_id": report.run_id, "events": report.events, "trigger": trigger, **dict(report.outcomes)},
    )
    return report


def _ingest(
    service: TicketService, events: Sequence[Event], report: PipelineReport | DualRunReport
) -> list[int]:
    """Ingest events into tickets, counting outcomes on the report; returns the tickets opened or reopened
    (their runbook diagnostics run after the commit)."""
    runbook_tickets: list[int] = []
    for event in events:
        outcome = service.ingest(event)
        report.outcomes[outcome.outcome] += 1
        if outcome.ticket is None:
            continue
        if outcome.outcome == "opened":
            report.opened.append(outcome.ticket.id)
        if outcome.outcome in {"opened", "reopened"}:
            runbook_tickets.append(outcome.ticket.id)
    return runbook_tickets


def _after_commit(
    settings: Settings,
    factory: sessionmaker[Session],
    report: PipelineReport | DualRunReport,
    runbook_tickets: list[int],
    *,
    dispatch: bool,
    notifier: Notifier | None,
) -> None:
    """Pages first (from the durable outbox), then runbook diagnostics: no ticket row is locked while
    either talks to the outside world."""
    if dispatch:
        report.notifications = dispatch_pending(
            factory, notifier or AppriseNotifier(settings.notifications.targets), settings
        )
    if runbook_tickets:  # after the commit: a store failure here is logged, the pass is not redone
        attach_runbooks_quietly(settings, factory, runbook_tickets)


def source_event(change: SourceChange) -> Event:
    """The one technical event of a source outage (trigger when it goes down, resolve when it is back)."""
    fp = fingerprint("source-down", change.source)
    if change.state == "up":
        return Event(
            fingerprint=fp,
            action="resolve",
            severity=SOURCE_DOWN_SEVERITY,
            category=Category.TECHNICAL,
            summary=f"Source {change.source} answers again after {change.failures} failed attempt(s)",
            source=change.source,
            occurred_at=change.at,
            labels={"kind": "source-down"},
            evidence={"proof": f"connected at {change.at.isoformat()}"},
        )
    return Event(
        fingerprint=fp,
        severity=SOURCE_DOWN_SEVERITY,
        category=Category.TECHNICAL,
        summary=f"Source {change.source} is unreachable: {change.reason}"[:300],
        source=change.source,
        runbook="collector-error",
        occurred_at=change.at,
        labels={"kind": "source-down"},
        evidence={
            "error": change.reason,
            "next_retry_at": change.retry_at.isoformat() if change.retry_at else None,
        },
        severity_reasons=("P2: no check can run on this source while it is down",),
    )


@dataclass
class DualRunReport:
    """What one dual-run comparison did to the store and the queue."""

    run_id: int
    events: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    opened: list[int] = field(default_factory=list)
    notifications: DispatchReport | None = None


def _dualrun_events(
    session: Session, settings: Settings, result: ComparisonResult, trigger: str
) -> tuple[int, list[Event]]:
    """Store a comparison run and derive its events (triggers for differences, resolves for matches)."""
    run = store_dualrun(session, result, trigger=trigger, explained=settings.dualrun.explained)
    events = events_for_comparison(
        result,
        settings,
        open_fingerprints=open_fingerprints(session),
        context=severity_context(settings.anomaly),
    )
    return run.id, events


def process_dualrun(
    settings: Settings,
    factory: sessionmaker[Session],
    result: ComparisonResult,
    *,
    trigger: str = "manual",
    notifier: Notifier | None = None,
    dispatch: bool = True,
    extra: Callable[[Session], Sequence[Event]] | None = None,
) -> DualRunReport:
    """Store a dual-run comparison and turn its differences into tickets, in one transaction; then send
    due notifications (unless ``dispatch`` is False). ``extra`` runs in the same transaction and may
    return more events (the scheduler's lease release and source changes)."""
    with session_scope(factory) as session:
        run_id, events = _dualrun_events(session, settings, result, trigger)
        if extra is not None:
            events = [*extra(session), *events]
        report = DualRunReport(run_id=run_id, events=len(events))
        runbook_tickets = _ingest(TicketService(session, settings), events, report)
    _after_commit(settings, factory, report, runbook_tickets, dispatch=dispatch, notifier=notifier)
    log.info(
        "dual-run comparison processed",
        extra={"run_id": run_id, "comparison": result.comparison, "events": len(events), "trigger": trigger},
    )
    return report


def scheduler_processor(
    settings: Settings, factory: sessionmaker[Session]
) -> Callable[[UnitOutcome, Callable[[Session], Sequence[SourceChange]]], None]:
    """How `hypercare collect` hands each unit's outcome to the pipeline (monitor/ knows no tickets)."""
    severity_context(settings.anomaly)  # a bad calendar file is a one-line error at start-up

    def process(outcome: UnitOutcome, finish: Callable[[Session], Sequence[SourceChange]]) -> None:
        collection = outcome.collection
        if isinstance(collection, DualRunCollection) and collection.comparison is not None:
            process_dualrun(
                settings,
                factory,
                collection.comparison,
                trigger="scheduler",
                dispatch=False,
                extra=lambda session: [source_event(c) for c in finish(session)],
            )
            return
        if isinstance(collection, DualRunCollection) and collection.failure is not None:
            failure = collection.failure

            def failed(session: Session) -> list[Event]:
                record_dualrun_failure(session, failure)  # its error result raises the event
                return [source_event(c) for c in finish(session)]

            process_collection(
                settings, factory, collection, trigger="scheduler", dispatch=False, in_transaction=failed
            )
            return
        process_collection(
            settings,
            factory,
            outcome.collection,
            trigger="scheduler",
            dispatch=False,
            quiet_errors=outcome.source_down is not None,
            in_transaction=lambda session: [source_event(c) for c in finish(session)],
        )

    return process
