"""A ticket's runbook diagnostics: linked and run once when the ticket opens, read-only and bounded,
against the ticket's source; the results are kept with the ticket (``ticket_diagnostic``) and shown on its
page, failures included.

:func:`attach_runbooks` runs after the intake transaction has committed (``hypercare/pipeline.py`` calls it
with the ids of the tickets a pass opened or reopened): the ticket rows are not locked while a diagnostic
waits on a slow ERP. Tickets whose runbook has no diagnostics cost one read and no write. A diagnostic runs
once per ticket and fingerprint (a unique key), so a repeat or a second worker does not run it again.

SQL runs through the check engine's read-only execution (:func:`monitor.checks.fetch_rows`: read-only
transaction, statement timeout, row cap) after the lint's parse says it is one SELECT; HTTP diagnostics
are GET/HEAD requests to the server of the ticket's probe, with the probe's headers, never following
redirects.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core.db import utcnow
from core.jsonable import jsonable
from core.session import session_scope
from monitor import check_ids
from monitor.checks import CheckDefinitionError, fetch_rows, reason
from monitor.settings import ProbeSettings
from monitor.sources import source_engine
from runbooks.library import (
    Diagnostic,
    Param,
    Runbook,
    RunbookError,
    Subject,
    best_runbook,
    load_runbooks,
    lookup,
)
from runbooks.lint import read_only_problem
from runbooks.models import TicketDiagnostic
from runbooks.settings import RunbooksConfig
from tickets.models import Occurrence, Ticket, TicketAudit

log = logging.getLogger(__name__)
SYSTEM_ACTOR = "system"


class MissingParameter(ValueError):
    pass


def subject_of(ticket: Ticket, evidence: Mapping[str, Any]) -> Subject:
    return Subject(ticket.check_id, ticket.category, dict(ticket.labels or {}), dict(evidence))


def parameter(param: Param, ticket: Ticket, evidence: Mapping[str, Any]) -> Any:
    """The value of one parameter from the ticket's event, typed; MissingParameter when it carries none."""
    root, _, path = param.from_.partition(".")
    if root == "ticket":
        value: Any = getattr(ticket, path, None)
    elif root == "entity":
        value = lookup(ticket.entity or {}, path)
    elif root == "labels":
        value = lookup(ticket.labels or {}, path)
    else:
        value = lookup(evidence, path)
    if value is None or value == "":
        raise MissingParameter(f"the ticket's event carries no {param.from_}")
    try:
        if param.type == "int":
            return int(str(value))
        if param.type == "decimal":
            return Decimal(str(value))
        if param.type == "date":
            return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    except (ValueError, InvalidOperation):
        raise MissingParameter(f"{param.from_} = {value!r} is not a {param.type}") from None
    return value if isinstance(value, str | int | float | Decimal) else str(value)


def _cell(value: Any) -> Any:
    return jsonable(value, float_digits=9)


@dataclass
class DiagnosticRun:
    """The outcome of one diagnostic, before it is stored."""

    diagnostic: Diagnostic
    source: str
    status: str = "error"
    params: dict[str, Any] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    truncated: bool = False
    error: str | None = None
    duration_s: float = 0.0


class Runner:
    """Runs diagnostics for one batch of tickets, keeping one engine per source and one HTTP client."""

    def __init__(self, settings: RunbooksConfig, http_client: httpx.Client | None = None) -> None:
        self.settings = settings
        self._engines: dict[str, Engine] = {}
        self._client = http_client
        self._own_client = http_client is None

    def close(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()
        if self._own_client and self._client is not None:
            self._client.close()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def run(self, diagnostic: Diagnostic, ticket: Ticket, evidence: Mapping[str, Any]) -> DiagnosticRun:
        source = diagnostic.source or ticket.source
        out = DiagnosticRun(diagnostic, source)
        started = time.perf_counter()
        try:
            out.params = {name: parameter(p, ticket, evidence) for name, p in diagnostic.params.items()}
        except MissingParameter as exc:
            out.status, out.error = "skipped", str(exc)
            return out
        try:
            if diagnostic.sql is not None:
                self._sql(diagnostic.sql, out, f"runbook diagnostic {diagnostic.name}", diagnostic.engines)
            else:
                self._http(diagnostic, ticket, out)
        finally:
            out.duration_s = time.perf_counter() - started
        out.params = {k: _cell(v) for k, v in out.params.items()}
        return out

    def _sql(self, sql: str, out: DiagnosticRun, label: str, engines: tuple[str, ...] = ()) -> None:
        refused = read_only_problem(sql)
        if refused:
            out.error = f"refused: {refused}"
            return
        source = self.settings.sources.get(out.source)
        if source is None:  # e.g. a ticket from an external producer (Alertmanager, a report, the API)
            out.status, out.error = (
                "skipped",
                f"source '{out.source}' is not configured under 'sources:' in Hypercare's settings, "
                "so there is no database to run this query on",
            )
            return
        try:
            if out.source not in self._engines:
                self._engines[out.source] = source_engine(source.url.get_secret_value())
            engine_name = self._engines[out.source].dialect.name
            if engine_name == "mysql" and getattr(self._engines[out.source].dialect, "is_mariadb", False):
                engine_name = "mariadb"
            if (
                engines
                and engine_name not in engines
                and not (engine_name == "mariadb" and "mysql" in engines)
            ):
                out.status, out.error = (
                    "skipped",
                    f"written for {', '.join(engines)}; {out.source} is {engine_name}",
                )
                return
            timeout = min(self.settings.runbooks.diagnostic_timeout_s, source.statement_timeout_s)
            rows = fetch_rows(
                self._engines[out.source],
                label,
                sql,
                out.params,
                timeout,
                cap=self.settings.runbooks.diagnostic_row_cap,
            )
        except (SQLAlchemyError, CheckDefinitionError, FileNotFoundError, ValueError) as exc:
            out.error = reason(exc)
            return
        out.status = "ok"
        out.columns = rows.columns
        out.rows = [[_cell(v) for v in row] for row in rows.rows]
        out.truncated = rows.truncated

    def _probe(self, diagnostic: Diagnostic, ticket: Ticket) -> ProbeSettings | None:
        check_id = ticket.check_id or ""
        wanted = diagnostic.probe or check_ids.probe_name(check_id) or check_id
        return next((p for p in self.settings.probes if p.name == wanted), None)

    def _http(self, diagnostic: Diagnostic, ticket: Ticket, out: DiagnosticRun) -> None:
        probe = self._probe(diagnostic, ticket)
        if probe is None:
            out.error = "no configured probe to take the server from (name one with 'probe:')"
            return
        method, _, template = (diagnostic.http or "GET /").partition(" ")
        try:
            path = template.format_map({k: quote(str(v), safe="/") for k, v in out.params.items()})
        except (KeyError, ValueError) as exc:
            out.error = f"path template {template!r}: {exc}"
            return
        if not path.startswith("/"):
            out.error = f"path {path!r} does not start with '/'"
            return
        base = httpx.URL(probe.url)
        url = base.copy_with(raw_path=path.encode("ascii", "strict"), query=None, fragment=None)
        out.source = f"{base.scheme}://{base.netloc.decode('ascii')}"
        if self._client is None:
            self._client = httpx.Client(follow_redirects=False)
        headers = {name: value.get_secret_value() for name, value in probe.headers.items()}
        started = time.perf_counter()
        try:
            response = self._client.request(
                method, url, headers=headers, timeout=self.settings.runbooks.diagnostic_timeout_s
            )
        except httpx.HTTPError as exc:
            out.error = f"{type(exc).__name__}: {exc}"[:500]
            return
        latency = time.perf_counter() - started
        out.status = "ok"
        out.columns = ["request", "status_code", "latency_s", "content_type", "bytes", "retry_after"]
        out.rows = [
            [
                f"{method} {path}",
                response.status_code,
                round(latency, 3),
                response.headers.get("content-type", ""),
                len(response.content),
                response.headers.get("retry-after", ""),
            ]
        ]


# --- linking and running on ticket intake ------------------------------------------------------------


@dataclass
class AttachReport:
    linked: dict[int, str] = field(default_factory=dict)
    """Ticket id -> runbook id, for tickets whose runbook was (re)linked here."""
    ran: int = 0
    failed: int = 0


def _latest_evidence(session: Session, ticket_ids: list[int]) -> dict[int, dict[str, Any]]:
    latest = (
        select(Occurrence.ticket_id, Occurrence.evidence)
        .where(Occurrence.ticket_id.in_(ticket_ids))
        .order_by(Occurrence.ticket_id, Occurrence.id.desc())
    )
    found: dict[int, dict[str, Any]] = {}
    for ticket_id, evidence in session.execute(latest):
        found.setdefault(ticket_id, dict(evidence or {}))
    return found


def _already_ran(session: Session, ticket_ids: list[int]) -> set[tuple[int, str, str]]:
    rows = session.execute(
        select(TicketDiagnostic.ticket_id, TicketDiagnostic.fingerprint, TicketDiagnostic.name).where(
            TicketDiagnostic.ticket_id.in_(ticket_ids)
        )
    )
    return {(t, f, n) for t, f, n in rows}


@dataclass
class _Work:
    ticket: Ticket
    evidence: dict[str, Any]
    runbook: Runbook
    diagnostics: list[Diagnostic]


def attach_runbooks(
    settings: RunbooksConfig,
    factory: sessionmaker[Session],
    ticket_ids: Iterable[int],
    *,
    http_client: httpx.Client | None = None,
) -> AttachReport:
    """Link each ticket's most fitting runbook and run its diagnostics once; store the results.

    Call it after the transaction that opened the tickets committed. Never raises for a failing
    diagnostic (it is stored as an error); a broken runbook directory is logged and skips the batch.
    """
    report = AttachReport()
    ids = sorted(set(ticket_ids))
    if not ids:
        return report
    try:
        runbooks = load_runbooks(settings.runbooks_dir)
    except RunbookError as exc:
        log.warning("runbooks unreadable; none linked: %s", exc, extra={"tickets": len(ids)})
        return report
    work = _plan(settings, factory, ids, runbooks, report)
    if not work:
        return report
    results: list[tuple[_Work, DiagnosticRun]] = []
    with Runner(settings, http_client) as runner:
        for item in work:
            for diagnostic in item.diagnostics:
                results.append((item, runner.run(diagnostic, item.ticket, item.evidence)))
    _store(factory, results, report)
    return report


def attach_runbooks_quietly(
    settings: RunbooksConfig, factory: sessionmaker[Session], ticket_ids: list[int]
) -> None:
    """:func:`attach_runbooks` for a background task after a request committed (the API, Alertmanager's
    webhook, a report): nobody waits on it, so a store failure is logged, not raised."""
    try:
        report = attach_runbooks(settings, factory, ticket_ids)
    except SQLAlchemyError as exc:
        log.warning(
            "runbook diagnostics not run: the store failed: %s",
            reason(exc),
            extra={"ticket_ids": ticket_ids[:20], "tickets": len(ticket_ids)},
        )
        return
    if report.ran or report.linked:
        log.info(
            "runbooks linked after intake",
            extra={"tickets": len(ticket_ids), "linked": len(report.linked), "ran": report.ran},
        )


def _plan(
    settings: RunbooksConfig,
    factory: sessionmaker[Session],
    ids: list[int],
    runbooks: Mapping[str, Runbook],
    report: AttachReport,
) -> list[_Work]:
    """(Re)link runbooks in one short transaction and list the diagnostics still to run."""
    work: list[_Work] = []
    with session_scope(factory) as session:
        tickets = list(session.scalars(select(Ticket).where(Ticket.id.in_(ids)).order_by(Ticket.id)))
        evidence = _latest_evidence(session, ids)
        done = _already_ran(session, ids) if settings.runbooks.diagnostics else set()
        now = utcnow()
        for ticket in tickets:
            facts = evidence.get(ticket.id, {})
            chosen = best_runbook(subject_of(ticket, facts), runbooks, ticket.runbook_id)
            if chosen is not None and chosen != ticket.runbook_id:
                before = ticket.runbook_id
                ticket.runbook_id = chosen
                session.add(
                    TicketAudit(
                        ticket_id=ticket.id,
                        at=now,
                        actor=SYSTEM_ACTOR,
                        action="runbook_linked",
                        detail={"before": {"runbook_id": before}, "after": {"runbook_id": chosen}},
                    )
                )
                report.linked[ticket.id] = chosen
            runbook = runbooks.get(ticket.runbook_id) if ticket.runbook_id else None
            if runbook is None or not settings.runbooks.diagnostics:
                continue
            todo = [
                d
                for d in runbook.diagnostics
                if d.runs_for(ticket.check_id) and (ticket.id, ticket.fingerprint, d.name) not in done
            ]
            if todo:
                work.append(_Work(ticket, facts, runbook, todo))
        session.flush()
        session.expunge_all()  # read after the commit; nothing lazy-loads
    return work


def _store(
    factory: sessionmaker[Session], results: list[tuple[_Work, DiagnosticRun]], report: AttachReport
) -> None:
    by_ticket: dict[int, tuple[str, list[DiagnosticRun]]] = {}
    with session_scope(factory) as session:
        now = utcnow()
        for item, run in results:
            row = TicketDiagnostic(
                ticket_id=item.ticket.id,
                fingerprint=item.ticket.fingerprint,
                runbook_id=item.runbook.id,
                name=run.diagnostic.name,
                title=run.diagnostic.title,
                kind=run.diagnostic.kind,
                source=run.source[:64],
                status=run.status,
                params=run.params,
                columns=run.columns,
                rows=run.rows,
                truncated=run.truncated,
                error=run.error,
                duration_s=run.duration_s,
                ran_at=now,
            )
            try:
                with session.begin_nested():  # another worker may have stored it meanwhile
                    session.add(row)
            except IntegrityError:
                continue
            by_ticket.setdefault(item.ticket.id, (item.runbook.id, []))[1].append(run)
        for ticket_id, (runbook_id, runs) in by_ticket.items():
            failed = [r.diagnostic.name for r in runs if r.status != "ok"]
            report.ran += len(runs)
            report.failed += len(failed)
            session.add(
                TicketAudit(
                    ticket_id=ticket_id,
                    at=now,
                    actor=SYSTEM_ACTOR,
                    action="diagnosed",
                    detail={
                        "runbook_id": runbook_id,
                        "ran": [r.diagnostic.name for r in runs],
                        "failed": failed,
                    },
                )
            )
            log.info(
                "runbook diagnostics ran",
                extra={"ticket_id": ticket_id, "ran": len(runs), "failed": len(failed)},
            )
