"""The audit trail's hash chain: each row stores ``prev_hash`` and
``hash = sha256(canonical JSON of (ticket_id, at, actor, action, detail) + prev_hash)``.

Rows are chained in id order as they are flushed, whoever creates them (a ``before_flush`` hook on every
session), so no writer can forget. The chain head (``audit_chain_head``, one row) is first updated in
place, then read ``FOR UPDATE``: on PostgreSQL a second writer waits for the first to commit, and its
rows get later ids and the first's hash as their ``prev_hash`` - the chain cannot fork. On SQLite the
same statement takes the database's write lock before the head is read, which serialises chain writers.

:func:`verify` recomputes the chain and names the first row that does not match: an edited row (its hash
differs), a deleted or inserted one (the next row's ``prev_hash`` differs), a truncated tail (the head
names a hash that is no longer the last row's). Rows from before the chain existed (hash NULL, written
before migration 0003) are counted as unchained, not as tampering, if they come first.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlalchemy import event, inspect, select, update
from sqlalchemy.orm import Session, UOWTransaction

from hypercare.db import utcnow
from tickets.models import AuditChainHead, TicketAudit

GENESIS = "0" * 64
HEAD_ID = 1


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


def _head(session: Session) -> AuditChainHead:
    # Write to the head first: on SQLite that takes the database's write lock (a deferred transaction
    # would otherwise read the head outside it, and two writers would chain to the same row); on
    # PostgreSQL it row-locks the head like FOR UPDATE.
    session.execute(
        update(AuditChainHead).where(AuditChainHead.id == HEAD_ID).values(last_hash=AuditChainHead.last_hash)
    )
    head = session.scalars(
        select(AuditChainHead)
        .where(AuditChainHead.id == HEAD_ID)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if head is None:  # a store created without migration 0003's seed row
        head = AuditChainHead(id=HEAD_ID, last_id=None, last_hash=GENESIS)
        session.add(head)
    return head


def _chain_new_rows(session: Session, _ctx: UOWTransaction, _instances: object) -> None:
    pending = [obj for obj in session.new if isinstance(obj, TicketAudit) and obj.hash is None]
    if not pending:
        return
    pending.sort(key=lambda obj: inspect(obj).insert_order or 0)
    with session.no_autoflush:
        head = _head(session)
        prev = head.last_hash
        for row in pending:
            if row.at is None:
                row.at = utcnow()
            if row.detail is None:
                row.detail = {}
            row.prev_hash = prev
            row.hash = prev = row_hash(row, prev)
        head.last_hash = prev


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

    @property
    def ok(self) -> bool:
        return self.broken_id is None and self.reason is None


def verify(session: Session, *, batch: int = 5000) -> VerifyReport:
    """Recompute the chain in id order; report the first row that breaks it."""
    prev = GENESIS
    checked = unchained = 0
    last_id = 0
    chained = False
    while True:
        rows = list(
            session.scalars(
                select(TicketAudit).where(TicketAudit.id > last_id).order_by(TicketAudit.id).limit(batch)
            )
        )
        if not rows:
            break
        for row in rows:
            last_id = row.id
            if row.hash is None and not chained:
                unchained += 1
                continue
            chained = True
            checked += 1
            if row.prev_hash != prev:
                return VerifyReport(checked, unchained, row.id, "prev_hash does not match the previous row")
            if row.hash != row_hash(row, prev):
                return VerifyReport(checked, unchained, row.id, "hash does not match the row's content")
            prev = row.hash
            session.expunge(row)
    head = session.get(AuditChainHead, HEAD_ID)
    if head is not None and head.last_hash != prev:
        return VerifyReport(
            checked, unchained, None, "the chain head names a row that is missing (truncated)"
        )
    return VerifyReport(checked, unchained, None, None)
