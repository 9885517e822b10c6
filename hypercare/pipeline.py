"""One pass of the pipeline: monitor -> anomaly -> tickets -> notifications.

Collection runs outside any store transaction (it talks to monitored systems, which may be slow); storing
results, raising events and updating tickets is one transaction, so a crash leaves either all of a pass or
none of it; notifications go out afterwards from the durable outbox, so none is lost if sending fails.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from anomaly.rules import events_for_results
from hypercare.config import Settings
from hypercare.store import session_scope
from monitor.checks import CheckSpec
from monitor.collect import Progress, collect, store_collection
from monitor.results import CheckResult
from tickets.models import Ticket
from tickets.notify import AppriseNotifier, DispatchReport, Notifier, dispatch_pending
from tickets.service import TicketService

log = logging.getLogger(__name__)


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
) -> PipelineReport:
    now = now or datetime.now(UTC)
    collection = collect(settings, checks, now=now, http_client=http_client, progress=progress)
    with session_scope(factory) as session:
        run = store_collection(session, collection, trigger=trigger)
        events = events_for_results(
            collection.results,
            group_threshold=settings.tickets.group_threshold,
            open_fingerprints=open_fingerprints(session),
        )
        report = PipelineReport(run_id=run.id, results=collection.results, events=len(events))
        service = TicketService(session, settings)
        for event in events:
            outcome = service.ingest(event)
            report.outcomes[outcome.outcome] += 1
            if outcome.outcome == "opened" and outcome.ticket is not None:
                report.opened.append(outcome.ticket.id)
    report.notifications = dispatch_pending(
        factory, notifier or AppriseNotifier(settings.notifications.targets), settings
    )
    log.info(
        "pipeline pass done",
        extra={"run_id": report.run_id, "events": report.events, **dict(report.outcomes)},
    )
    return report
