"""Writing the audit trail's chains: a keyed chain per ticket, and one store-wide chain of seals.

**Per ticket** (as since migration 0006): each row stores ``prev_hash`` (the ticket's previous row's hash,
or :data:`GENESIS`) and ``hash = HMAC-SHA256(key, canonical JSON of the row + prev_hash + "|" + key_id)``,
with ``key_id`` naming the keyring's key (tickets/audit_keys.py). Rows written before migration 0013 carry
a plain sha256 and no ``key_id``: they verify as legacy, unkeyed; a ticket's first keyed row chains on from
its last legacy one. The ticket keeps its chain's last hash (``ticket.audit_hash``).

Rows are chained in id order as they are flushed, whoever creates them (a ``before_flush`` hook on every
session), so no writer can forget. Before chaining, the hook locks the tickets concerned: ``SELECT ...
FOR UPDATE`` on PostgreSQL (a second writer of the same ticket waits for the first to commit, then reads
its hash: a chain cannot fork); on SQLite a no-op ``UPDATE`` of those tickets first takes the database's
write lock, which serialises writers.

**Store-wide** (migration 0013): when a session commits, the audit rows it wrote get one *seal* each in
``ticket_audit_seal``: a gap-free ``seq`` and ``mac = HMAC(key, seq|audit_id|ticket_id|row hash|prev
seal mac)``, the previous seal's MAC being the head in ``audit_chain_head`` row 2. A deleted row leaves its
seal behind; a deleted seal leaves a gap in ``seq`` or breaks the next seal's ``prev_mac``; only the last
seals can go unnoticed in the store, which is what the checkpoints written outside it are for.

Why seals at commit rather than a global ``seq`` on each row at flush: one global head locked at the first
flush would be held to the end of every writing transaction (an alert storm's pass would hold every other
writer up), as the single chain head did before migration 0006. Taken in ``before_commit``, after the last
flush, the lock lasts the commit; writers of different tickets still never wait for each other's work. A
sequence (PostgreSQL ``SEQUENCE``) would not: its numbers survive a rollback, and a gap could not be told
from a deletion. The cost is one locked read, one multi-row INSERT and one UPDATE per committing
transaction that wrote audit rows, never a round trip per row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC
from typing import Any

from sqlalchemy import bindparam, event, insert, inspect, select, update
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction
from sqlalchemy.orm.attributes import set_committed_value

from core.db import utcnow
from core.errors import ConfigError
from tickets.audit_keys import Keyring
from tickets.cache import pages_named_by_caller
from tickets.models import AuditChainHead, Ticket, TicketAudit, TicketAuditSeal

GENESIS = "0" * 64
HEAD_ID = 1
"""The ``audit_chain_head`` row of the global chain of rows written before migration 0006."""
SEAL_HEAD_ID = 2
"""The ``audit_chain_head`` row holding the last seal: ``last_id`` its seq, ``last_hash`` its MAC."""
_UNSEALED = "hypercare.audit_unsealed"


class _Keys:
    """The process's keyring, loaded on first use (a command that writes no audit row never reads it)."""

    loader: Callable[[], Keyring] | None = None
    loaded: Keyring | None = None


_keys = _Keys()


def use_keyring(keyring: Keyring | Callable[[], Keyring]) -> None:
    """The keyring this process chains and seals audit rows with, or how to load it (the wiring calls it
    at start-up: the flush listener is process-wide, and so is its key)."""
    if isinstance(keyring, Keyring):
        _keys.loader, _keys.loaded = None, keyring
    else:
        _keys.loader, _keys.loaded = keyring, None


def current_keyring() -> Keyring:
    if _keys.loaded is None and _keys.loader is not None:
        _keys.loaded = _keys.loader()
    if _keys.loaded is None:
        raise ConfigError(
            "no audit key loaded: the process must call tickets.audit_chain.use_keyring() before writing"
        )
    return _keys.loaded


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
    """The legacy, unkeyed hash (rows written before migration 0013)."""
    return hashlib.sha256((canonical(row) + prev_hash).encode("utf-8")).hexdigest()


def row_mac(keyring: Keyring, kid: str, row: TicketAudit, prev_hash: str) -> str:
    return keyring.mac(kid, canonical(row) + prev_hash + "|" + kid)


def seal_mac(keyring: Keyring, kid: str, seal: tuple[int, int, int, str, str]) -> str:
    """``seal``: (seq, audit_id, ticket_id, the row's hash, the previous seal's MAC)."""
    return keyring.mac(kid, "seal|" + "|".join(str(part) for part in seal))


def _lock(session: Session, table_name: str, ids: list[int], column: str, keep: tuple[str, ...]) -> list[Any]:
    """``(id, column)`` of these rows, locked for this transaction (in id order: no deadlock)."""
    table = Ticket.metadata.tables[table_name]
    if session.get_bind().dialect.name == "sqlite":
        # A write first: it takes the database's write lock (a deferred transaction would otherwise read
        # outside it, and two writers would chain to the same row).
        return list(
            session.execute(
                update(table)
                .where(table.c.id.in_(ids))
                .values({name: table.c[name] for name in keep})
                .returning(table.c.id, table.c[column])
            )
        )
    return list(
        session.execute(
            select(table.c.id, table.c[column])
            .where(table.c.id.in_(ids))
            .order_by(table.c.id)
            .with_for_update()
        )
    )


def _chain_new_rows(session: Session, _ctx: UOWTransaction, _instances: object) -> None:
    pending = [obj for obj in session.new if isinstance(obj, TicketAudit) and obj.hash is None]
    if not pending:
        return
    keyring = current_keyring()
    kid = keyring.current
    pending.sort(key=lambda obj: inspect(obj).insert_order or 0)
    ticket_ids = sorted({row.ticket_id for row in pending})
    with session.no_autoflush, pages_named_by_caller(session) as pages:
        pages.update(ticket_ids)  # the chain's statements write these tickets' rows (their audit hash)
        rows = _lock(session, "ticket", ticket_ids, "audit_hash", ("audit_hash", "updated_at"))
        heads: dict[int, str | None] = {int(ticket_id): head for ticket_id, head in rows}
        for row in pending:
            if row.at is None:
                row.at = utcnow()
            if row.detail is None:
                row.detail = {}
            prev = heads.get(row.ticket_id) or GENESIS
            row.prev_hash = prev
            row.key_id = kid
            row.hash = heads[row.ticket_id] = row_mac(keyring, kid, row, prev)
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
    session.info.setdefault(_UNSEALED, []).extend(pending)


def _seal(session: Session) -> None:
    """Seal the audit rows this transaction wrote, in id order, on the store-wide chain."""
    if session.in_nested_transaction():
        return  # a SAVEPOINT ends: the outer transaction seals at its commit
    session.flush()  # rows still pending are chained now, and sealed below with the others
    rows = sorted(
        (row for row in session.info.pop(_UNSEALED, []) if inspect(row).persistent), key=lambda r: r.id
    )
    if not rows:
        return
    keyring = current_keyring()
    kid = keyring.current
    with session.no_autoflush:
        locked = _lock(session, "audit_chain_head", [SEAL_HEAD_ID], "last_id", ("last_id",))
        if not locked:
            raise ConfigError(
                "the store has no audit seal head (audit_chain_head row 2): run `hypercare db upgrade`"
            )
        head = session.execute(
            select(AuditChainHead.last_id, AuditChainHead.last_hash).where(AuditChainHead.id == SEAL_HEAD_ID)
        ).one()
        seq, prev = int(head.last_id or 0), str(head.last_hash)
        seals = []
        for row in rows:
            seq += 1
            mac = seal_mac(keyring, kid, (seq, row.id, row.ticket_id, str(row.hash), prev))
            seals.append(
                {
                    "seq": seq,
                    "audit_id": row.id,
                    "ticket_id": row.ticket_id,
                    "key_id": kid,
                    "prev_mac": prev,
                    "mac": mac,
                }
            )
            prev = mac
        session.execute(insert(TicketAuditSeal), seals)
        session.execute(
            update(AuditChainHead)
            .where(AuditChainHead.id == SEAL_HEAD_ID)
            .values(last_id=seq, last_hash=prev)
            .execution_options(synchronize_session=False)
        )


def _forget(session: Session, previous: SessionTransaction) -> None:
    """The whole transaction rolled back: its rows are gone, and so is the need to seal them."""
    if previous.parent is None:
        session.info.pop(_UNSEALED, None)


def install() -> None:
    """Chain audit rows on every session's flush and seal them at its commit (idempotent)."""
    if not event.contains(Session, "before_flush", _chain_new_rows):
        event.listen(Session, "before_flush", _chain_new_rows)
        event.listen(Session, "before_commit", _seal)
        event.listen(Session, "after_soft_rollback", _forget)


install()
