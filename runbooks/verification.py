"""`Verify` on a ticket: re-run the check its runbook names (by default the ticket's own check) against
its source, record the proof in the ticket's audit trail, and resolve the ticket when it passes (where
configured: ``runbooks.verify_resolves`` and the runbook's ``verification.resolve_on_pass``).

The check runs outside any store transaction (it talks to the monitored system); its result is stored
with the other check results (``trigger = verify``), and the audit row ``verified`` carries the result id,
the time, the status and the measured values. Pass or fail is judged for this ticket, the way the pipeline
judges it: the ticket passes when the re-run no longer raises its fingerprint (other offending rows of the
same check are other tickets).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from anomaly.rules import events_for_result
from core.session import session_scope
from monitor import check_ids
from monitor.checks import CheckDefinitionError, configured_checks
from monitor.collect import Collection, run_configured_check, store_collection
from monitor.collectors import run_collector
from monitor.models import CheckResultRow
from monitor.probes import run_probe
from monitor.results import CheckResult
from monitor.volumes import load_volumes
from runbooks.library import RunbookError, load_runbooks
from runbooks.settings import RunbooksConfig
from tickets.errors import TicketNotFound
from tickets.models import Ticket
from tickets.ports import CannotVerify, Verdict
from tickets.service import TicketService

log = logging.getLogger(__name__)


def _watch_ids(settings: RunbooksConfig) -> set[str]:
    try:
        return {w.id for w in load_volumes(settings.checks.packs, settings.checks.paths)}
    except CheckDefinitionError:
        return set()


def run_signal(  # noqa: PLR0912 - one branch per kind of check, flat on purpose
    settings: RunbooksConfig,
    check_id: str,
    source: str,
    *,
    now: datetime,
    http_client: httpx.Client | None = None,
) -> CheckResult:
    """Run one check id once: a check of the configured packs or files, a probe, or a collector's check."""
    try:
        specs = {s.id: s for s in configured_checks(settings)}
    except CheckDefinitionError as exc:
        raise CannotVerify(f"the check definitions do not load: {exc}") from None
    if check_id in specs:
        engines: dict[str, Engine] = {}
        try:
            return run_configured_check(settings, specs[check_id], now=now, engines=engines)
        finally:
            for engine in engines.values():
                engine.dispose()
    probe_name = check_ids.probe_name(check_id)
    if probe_name is not None:
        probe = next((p for p in settings.probes if p.name == probe_name), None)
        if probe is None:
            raise CannotVerify(f"probe {check_id} is not configured any more")
        client = http_client or httpx.Client(follow_redirects=False)
        try:
            return run_probe(probe, client)[0]
        finally:
            if http_client is None:
                client.close()
    name = check_ids.collector_unit(check_id, source)
    if name is None and check_id in _watch_ids(settings):
        raise CannotVerify(
            f"{check_id} is a volume watch: a past day's volume does not change, so there is nothing to "
            "re-run; the watch resolves the ticket itself after its normal business days (runbook: Verify)"
        )
    if name is None:
        raise CannotVerify(f"no check, probe or collector produces {check_id}")
    try:
        results, _ = run_collector(name, settings, now=now)
    except ValueError as exc:
        raise CannotVerify(str(exc)) from None
    errors = [r for r in results if r.status == "error"]
    if check_ids.kind(check_id) == check_ids.COLLECTOR or errors:
        if errors:
            return errors[0]
        first = results[0]  # the collector works again: its first check stands for it
        return CheckResult(
            check_id=check_id,
            source=source,
            status="pass",
            title=f"{name} collector runs",
            category="technical",
            severity=first.severity,
            started_at=first.started_at,
            finished_at=first.finished_at,
        )
    found = next((r for r in results if r.check_id == check_id), None)
    if found is None:
        raise CannotVerify(f"collector {name} no longer produces {check_id}")
    return found


def judge(ticket: Ticket, result: CheckResult, group_threshold: int) -> str:
    """pass / fail / warn / error of a re-run, for this ticket."""
    if (ticket.labels or {}).get("kind") == "collector-error":
        return "pass" if result.status != "error" else "error"
    if result.status == "error":
        return "error"
    events = events_for_result(
        result, group_threshold=group_threshold, open_fingerprints={ticket.fingerprint}
    )
    mine = [e for e in events if e.fingerprint == ticket.fingerprint]
    if any(e.action == "resolve" for e in mine):
        return "pass"
    if any(e.action == "trigger" for e in mine):
        return "fail"
    return "pass" if result.status == "pass" else result.status


def verify_ticket(
    settings: RunbooksConfig,
    factory: sessionmaker[Session],
    ticket_id: int,
    actor: str,
    *,
    http_client: httpx.Client | None = None,
) -> Verdict:
    """Re-run the ticket's verification check; record the proof; resolve on a pass where configured."""
    with factory() as session:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            raise TicketNotFound(ticket_id)
        session.expunge(ticket)
    try:
        runbook = load_runbooks(settings.runbooks_dir).get(ticket.runbook_id or "")
    except RunbookError:
        runbook = None
    wanted = runbook.verification.check if runbook is not None else "ticket"
    check_id = ticket.check_id if wanted == "ticket" else wanted
    if not check_id:
        raise CannotVerify(f"ticket #{ticket_id} names no check to re-run; verify it by hand")
    result = run_signal(settings, check_id, ticket.source, now=datetime.now(UTC), http_client=http_client)
    status = judge(ticket, result, settings.tickets.group_threshold)
    resolve = (
        status == "pass"
        and settings.runbooks.verify_resolves
        and (runbook is None or runbook.verification.resolve_on_pass)
    )
    with session_scope(factory) as session:
        run = store_collection(session, Collection(results=[result]), trigger="verify")
        result_id = session.scalar(
            select(CheckResultRow.id)
            .where(CheckResultRow.run_id == run.id)
            .order_by(CheckResultRow.id)
            .limit(1)
        )
        service = TicketService(session, settings)
        locked = service.locked(ticket_id)
        resolved = resolve and locked.is_open
        now = service.now()
        service.audit(
            locked,
            actor,
            "verified",
            now,
            check_id=check_id,
            source=result.source,
            status=status,
            check_status=result.status,
            result_id=result_id,
            checked_at=result.finished_at.isoformat(),
            measured_value=result.measured_value,
            violations=result.violations,
            error=result.error,
            resolves=resolved,
        )
        locked.updated_at = now
        if resolved:
            service.resolve(ticket_id, actor, f"verified: {check_id} passes (check result #{result_id})")
    log.info(
        "ticket verified",
        extra={"ticket_id": ticket_id, "check_id": check_id, "status": status, "result_id": result_id},
    )
    return Verdict(
        check_id=check_id,
        status=status,
        result_id=result_id,
        measured_value=result.measured_value,
        violations=result.violations,
        error=result.error,
        checked_at=result.finished_at,
        resolved=resolved,
    )
