"""The audit trail's hash chains: one chain per ticket. Each row stores ``prev_hash`` and
``hash = sha256(canonical JSON of (ticket_id, at, actor, action, detail) + prev_hash)``; a ticket's first
row chains to :data:`GENESIS` and the ticket keeps its chain's last hash (``ticket.audit_hash``).

Rows are chained in id order as they are flushed, whoever creates them (a ``before_flush`` hook on every
session), so no writer can forget. Before chaining, the hook locks the tickets concerned: ``SELECT ...
FOR UPDATE`` on PostgreSQL and MariaDB (a second writer of the same ticket waits for the first to commit,
then reads its hash: a chain cannot fork); on SQLite a no-op ``UPDATE`` of those tickets first takes the
database's write lock, which serialises writers. Writers of different tickets no longer queue on one row
(the single global chain head did that until migration 0006), so the chain costs no concurrency.

:func:`verify` recomputes every chain and names the first row (lowest id) that does not match: an edited
row (its hash differs), a deleted, inserted or reordered one (the next row's ``prev_hash`` differs), a row
moved to another ticket (its hash covers ``ticket_id``), a truncated tail or a whole chain deleted (the
ticket's ``audit_hash`` names a hash that is no longer its last row's).

Rows written before migration 0006 form one global chain ending at ``audit_chain_head`` (``last_id`` is
the last of them): they are verified as that chain, as before. Rows from before any chain existed (hash
NULL, written before migration 0003) are counted as unchained, not as tampering, if they come first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlalchemy import bindparam, event, inspect, select, tuple_, update
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.orm.attributes import set_committed_value

from core.db import utcnow
from tickets.models import AuditChainHead, Ticket, TicketAudit

GENESIS = "0" * 64
HEAD_ID = 1
"""The ``audit_chain_head`` row of the global chain of rows written before migration 0006."""


def canonical(row: TicketAudit) -> str:
    """The text a row's hash covers (its id excluded: the chain order is the id order)."""
    at = row.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields: dict[str, Any] = {
        "ticket_id": row.ticket_id,
        "at": at,
        "actor": row.actor,
        "action": row.action,
        "detail": row.detail or {},
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def row_hash(row: TicketAudit, prev_hash: str) -> str:
    return hashlib.sha256((canonical(row) + prev_hash).encode("utf-8")).hexdigest()


def _lock_heads(session: Session, ticket_ids: list[int]) -> dict[int, str | None]:
    """The chain heads of these tickets, locked for this transaction (in id order: no deadlock)."""
    table = Ticket.metadata.tables["ticket"]
    if session.get_bind().dialect.name == "sqlite":
        # A write first: it takes the database's write lock (a deferred transaction would otherwise read
        # the heads outside it, and two writers would chain to the same row).
        rows = session.execute(
            update(table)
            .where(table.c.id.in_(ticket_ids))
            .values(audit_hash=table.c.audit_hash, updated_at=table.c.updated_at)
            .returning(table.c.id, table.c.audit_hash)
        ).all()
    else:
        rows = session.execute(
            select(table.c.id, table.c.audit_hash)
            .where(table.c.id.in_(ticket_ids))
            .order_by(table.c.id)
            .with_for_update()
        ).all()
    return {int(ticket_id): head for ticket_id, head in rows}


def _chain_new_rows(session: Session, _ctx: UOWTransaction, _instances: object) -> None:
    pending = [obj for obj in session.new if isinstance(obj, TicketAudit) and obj.hash is None]
    if not pending:
        return
    pending.sort(key=lambda obj: inspect(obj).insert_order or 0)
    ticket_ids = sorted({row.ticket_id for row in pending})
    with session.no_autoflush:
        heads = _lock_heads(session, ticket_ids)
        for row in pending:
            if row.at is None:
                row.at = utcnow()
            if row.detail is None:
                row.detail = {}
            prev = heads.get(row.ticket_id) or GENESIS
            row.prev_hash = prev
            row.hash = heads[row.ticket_id] = row_hash(row, prev)
        table = Ticket.metadata.tables["ticket"]
        session.execute(
            update(table)
            .where(table.c.id == bindparam("ticket_id"))
            .values(audit_hash=bindparam("head"), updated_at=table.c.updated_at)
            .execution_options(synchronize_session=False),
            [{"ticket_id": ticket_id, "head": heads[ticket_id]} for ticket_id in ticket_ids],
        )
        for ticket_id in ticket_ids:  # keep loaded tickets in step without marking them changed
            loaded = session.identity_map.get(session.identity_key(Ticket, (ticket_id,)))
            if loaded is not None:
                set_committed_value(loaded, "audit_hash", heads[ticket_id])


def install() -> None:
    """Chain audit rows on every session's flush (idempotent)."""
    if not event.contains(Session, "before_flush", _chain_new_rows):
        event.listen(Session, "before_flush", _chain_new_rows)


install()


@dataclass(frozen=True, slots=True)
class VerifyReport:
    checked: int
    unchained: int
    broken_id: int | None
    reason: str | None
    chains: int = 0
    """Per-ticket chains verified (the pre-0006 global chain not counted)."""
    broken_chains: int = 0

    @property
    def ok(self) -> bool:
        return self.broken_id is None and self.reason is None


@dataclass(slots=True)
class _Finding:
    row_id: int | None
    reason: str


def _batches(
    session: Session, stmt: Any, key: Any, key_of: Callable[[TicketAudit], Any], batch: int
) -> Iterable[list[TicketAudit]]:
    """``stmt`` ordered by ``key``, page by page (keyset on ``key_of`` the last row), rows detached."""
    last: Any = None
    while True:
        page = stmt if last is None else stmt.where(key > last)
        rows = list(session.scalars(page.limit(batch)))
        if not rows:
            return
        yield rows
        last = key_of(rows[-1])
        for row in rows:
            session.expunge(row)


def _verify_legacy(
    session: Session, last_id: int, head_hash: str | None, batch: int
) -> tuple[int, int, _Finding | None]:
    """The global chain of rows written before migration 0006 (ids up to ``last_id``)."""
    prev = GENESIS
    checked = unchained = 0
    chained = False
    stmt = select(TicketAudit).where(TicketAudit.id <= last_id).order_by(TicketAudit.id)
    for rows in _batches(session, stmt, TicketAudit.id, lambda row: row.id, batch):
        for row in rows:
            if row.hash is None and not chained:
                unchained += 1
                continue
            chained = True
            checked += 1
            if row.prev_hash != prev:
                return checked, unchained, _Finding(row.id, "prev_hash does not match the previous row")
            if row.hash != row_hash(row, prev):
                return checked, unchained, _Finding(row.id, "hash does not match the row's content")
            prev = row.hash
    if head_hash is not None and head_hash != prev:
        return checked, unchained, _Finding(None, "the chain head names a row that is missing (truncated)")
    return checked, unchained, None


def verify(session: Session, *, batch: int = 5000) -> VerifyReport:
    """Recompute every chain; report the first row (lowest id) that breaks one, or a truncated chain."""
    head = session.get(AuditChainHead, HEAD_ID)
    legacy_end = (head.last_id if head is not None else None) or 0
    findings: list[_Finding] = []
    checked = unchained = 0
    legacy_broken = False
    if legacy_end:
        checked, unchained, found = _verify_legacy(
            session, legacy_end, head.last_hash if head is not None else None, batch
        )
        if found is not None:
            findings.append(found)
            legacy_broken = True
    heads = {
        int(ticket_id): str(audit_hash)
        for ticket_id, audit_hash in session.execute(
            select(Ticket.id, Ticket.audit_hash).where(Ticket.audit_hash.is_not(None))
        )
    }
    broken: set[int] = set()
    seen: set[int] = set()
    current: int | None = None
    prev = GENESIS

    def close(ticket_id: int | None, last_hash: str) -> None:
        if ticket_id is None or ticket_id in broken:
            return
        if heads.get(ticket_id) != last_hash:
            broken.add(ticket_id)
            findings.append(
                _Finding(None, f"ticket {ticket_id}'s chain head names a missing row (truncated)")
            )

    key = tuple_(TicketAudit.ticket_id, TicketAudit.id)
    stmt = (
        select(TicketAudit).where(TicketAudit.id > legacy_end).order_by(TicketAudit.ticket_id, TicketAudit.id)
    )
    for rows in _batches(session, stmt, key, lambda row: (row.ticket_id, row.id), batch):
        for row in rows:
            if row.ticket_id != current:
                close(current, prev)
                current, prev = row.ticket_id, GENESIS
                seen.add(row.ticket_id)
            if row.ticket_id in broken:
                continue
            checked += 1
            if row.prev_hash != prev:
                broken.add(row.ticket_id)
                findings.append(_Finding(row.id, "prev_hash does not match the previous row"))
            elif row.hash != row_hash(row, prev):
                broken.add(row.ticket_id)
                findings.append(_Finding(row.id, "hash does not match the row's content"))
            prev = row.hash or ""
    close(current, prev)
    for ticket_id in sorted(set(heads) - seen):
        broken.add(ticket_id)
        findings.append(
            _Finding(None, f"ticket {ticket_id}'s chain head names rows that are missing (deleted)")
        )
    if not findings:
        return VerifyReport(checked, unchained, None, None, len(seen), 0)
    with_row = [f for f in findings if f.row_id is not None]
    first = min(with_row, key=lambda f: f.row_id or 0) if with_row else findings[0]
    return VerifyReport(
        checked, unchained, first.row_id, first.reason, len(seen), len(broken) + int(legacy_broken)
    )
