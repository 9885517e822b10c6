"""Verifying the audit trail (``hypercare audit verify``); how it is written is in tickets/audit_chain.py.

:func:`verify` checks, and names the first place that breaks (ticket, row, seq, what is wrong):

1. **each ticket's chain** (keyed HMAC since migration 0013, plain sha256 before, reported as legacy,
   unkeyed): an edited row (its MAC differs), a deleted, inserted or reordered one (the next row's
   ``prev_hash`` differs), a row moved to another ticket (the MAC covers ``ticket_id``), a tail cut off
   (the ticket's ``audit_hash`` names a row no longer there), an unkeyed row after keyed ones (a chain
   recomputed with plain sha256 by someone without the key);
2. **the seals**, the store-wide chain in commit order: a seal whose row is gone (a row deleted, or a
   whole ticket with its trail), a gap in ``seq`` or a broken ``prev_mac`` (seals deleted), a seal that no
   longer matches its row's hash (a chain rewritten and re-hashed), a seal head naming a seal that is gone;
3. **checkpoints** kept outside the store (tickets/audit_checkpoints.py): the last seals deleted with their
   rows and the head moved back.

A key that verifies none of the rows it is said to have chained is reported as the wrong key, not as that
many tampered rows. Rows written before migration 0006 form one global chain ending at ``audit_chain_head``
row 1 and are verified as that chain; rows from before any chain existed (hash NULL, before migration 0003)
are counted as unchained, not as tampering, if they come first.
"""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import and_, exists, func, select, tuple_
from sqlalchemy.orm import Session

from tickets.audit_chain import (
    GENESIS,
    HEAD_ID,
    SEAL_HEAD_ID,
    current_keyring,
    install,
    row_hash,
    row_mac,
    seal_mac,
)
from tickets.audit_checkpoints import check as check_checkpoints
from tickets.audit_keys import Keyring
from tickets.models import AuditChainHead, Ticket, TicketAudit, TicketAuditSeal

__all__ = ["GENESIS", "Finding", "VerifyReport", "install", "row_hash", "verify"]


@dataclass(frozen=True, slots=True)
class Finding:
    reason: str
    ticket_id: int | None = None
    row_id: int | None = None
    seq: int | None = None
    rank: int = 3
    """Which is named first: 0 the wrong key, 1 a row (lowest id), 2 a seal (lowest seq), 3 the rest."""

    def where(self) -> str:
        parts = []
        if self.ticket_id is not None:
            parts.append(f"ticket {self.ticket_id}")
        if self.row_id is not None:
            parts.append(f"row {self.row_id}")
        if self.seq is not None:
            parts.append(f"seq {self.seq}")
        return ", ".join(parts) or "chain head"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    checked: int
    unchained: int
    broken_id: int | None
    reason: str | None
    chains: int = 0
    """Per-ticket chains verified (the pre-0006 global chain not counted)."""
    broken_chains: int = 0
    legacy: int = 0
    """Rows verified as legacy, unkeyed (plain sha256, written before migration 0013)."""
    sealed: int = 0
    unsealed: int = 0
    """Keyed rows without a seal yet (written by a transaction that has not committed)."""
    keys: tuple[str, ...] = ()
    """The key ids that chained the rows verified."""
    checkpoints: int = 0
    """Checkpoints that hold."""
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first(self) -> Finding | None:
        return self.findings[0] if self.findings else None


def _batches(
    session: Session, stmt: Any, key: Any, key_of: Callable[[Any], Any], batch: int, *, rows: bool = False
) -> Iterable[list[Any]]:
    """``stmt`` ordered by ``key``, page by page (keyset on ``key_of`` the last row), ORM rows detached."""
    last: Any = None
    while True:
        page = stmt if last is None else stmt.where(key > last)
        found = list(session.execute(page.limit(batch)) if rows else session.scalars(page.limit(batch)))
        if not found:
            return
        yield found
        last = key_of(found[-1])
        if not rows:
            for row in found:
                session.expunge(row)


def _verify_legacy(
    session: Session, last_id: int, head_hash: str | None, batch: int
) -> tuple[int, int, Finding | None]:
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
                return (
                    checked,
                    unchained,
                    Finding("prev_hash does not match the previous row", row.ticket_id, row.id, rank=1),
                )
            if row.hash != row_hash(row, prev):
                return (
                    checked,
                    unchained,
                    Finding("hash does not match the row's content", row.ticket_id, row.id, rank=1),
                )
            prev = row.hash
    if head_hash is not None and head_hash != prev:
        return checked, unchained, Finding("the chain head names a row that is missing (truncated)")
    return checked, unchained, None


class _Chains:
    """The per-ticket scan's state."""

    def __init__(self, keyring: Keyring, heads: dict[int, str]) -> None:
        self.keyring = keyring
        self.heads = heads
        self.findings: list[Finding] = []
        self.broken: set[int] = set()
        self.seen: set[int] = set()
        self.checked = self.legacy = 0
        self.good: Counter[str] = Counter()
        self.bad: Counter[str] = Counter()

    def fail(self, row: TicketAudit, reason: str) -> None:
        self.broken.add(row.ticket_id)
        self.findings.append(Finding(reason, row.ticket_id, row.id, rank=1))

    def close(self, ticket_id: int | None, last_hash: str) -> None:
        if ticket_id is None or ticket_id in self.broken:
            return
        if self.heads.get(ticket_id) != last_hash:
            self.broken.add(ticket_id)
            self.findings.append(
                Finding("the ticket's chain head names a missing row (truncated)", ticket_id)
            )

    def check(self, row: TicketAudit, prev: str, keyed_before: bool) -> None:
        self.checked += 1
        kid = row.key_id
        if row.prev_hash != prev:
            self.fail(row, "prev_hash does not match the previous row")
        elif kid is None:
            self.legacy += 1
            if keyed_before:
                self.fail(row, "an unkeyed row after keyed ones: the chain was recomputed without the key")
            elif row.hash != row_hash(row, prev):
                self.fail(row, "hash does not match the row's content (legacy, unkeyed row)")
        elif kid not in self.keyring.keys:
            self.fail(
                row, f"chained with key '{kid}', which the keyring ({self.keyring.source}) does not hold"
            )
        elif hmac.compare_digest(row.hash or "", row_mac(self.keyring, kid, row, prev)):
            self.good[kid] += 1
        else:
            self.bad[kid] += 1
            self.fail(row, "MAC does not match the row's content")


def _verify_chains(session: Session, keyring: Keyring, legacy_end: int, batch: int) -> _Chains:
    heads = {
        int(ticket_id): str(audit_hash)
        for ticket_id, audit_hash in session.execute(
            select(Ticket.id, Ticket.audit_hash).where(Ticket.audit_hash.is_not(None))
        )
    }
    chains = _Chains(keyring, heads)
    current: int | None = None
    prev = GENESIS
    keyed = False
    key = tuple_(TicketAudit.ticket_id, TicketAudit.id)
    stmt = (
        select(TicketAudit).where(TicketAudit.id > legacy_end).order_by(TicketAudit.ticket_id, TicketAudit.id)
    )
    for rows in _batches(session, stmt, key, lambda row: (row.ticket_id, row.id), batch):
        for row in rows:
            if row.ticket_id != current:
                chains.close(current, prev)
                current, prev, keyed = row.ticket_id, GENESIS, False
                chains.seen.add(row.ticket_id)
            if row.ticket_id in chains.broken:
                continue
            chains.check(row, prev, keyed)
            keyed = keyed or row.key_id is not None
            prev = row.hash or ""
    chains.close(current, prev)
    for ticket_id in sorted(set(heads) - chains.seen):
        chains.broken.add(ticket_id)
        chains.findings.append(
            Finding("the ticket's chain head names rows that are missing (deleted)", ticket_id)
        )
    return chains


def _verify_seals(session: Session, keyring: Keyring, batch: int) -> tuple[int, list[Finding], Counter[str]]:
    """The store-wide chain of seals, in seq order, each against the row it sealed; and how many seals
    each key verified."""
    findings: list[Finding] = []
    good: Counter[str] = Counter()
    seq, prev = 0, GENESIS
    stmt = (
        select(TicketAuditSeal, TicketAudit.id, TicketAudit.ticket_id, TicketAudit.hash)
        .outerjoin(TicketAudit, TicketAudit.id == TicketAuditSeal.audit_id)
        .order_by(TicketAuditSeal.seq)
    )
    for page in _batches(session, stmt, TicketAuditSeal.seq, lambda r: r[0].seq, batch, rows=True):
        for seal, row_id, row_ticket, row_hash_ in page:
            if seal.seq != seq + 1:
                gap = f"seq {seq + 1}" if seal.seq == seq + 2 else f"seqs {seq + 1} to {seal.seq - 1}"
                findings.append(Finding(f"{gap} missing: seals deleted", seq=seq + 1, rank=2))
            elif seal.prev_mac != prev:
                findings.append(
                    Finding(
                        "prev_mac does not match the previous seal",
                        seal.ticket_id,
                        seal.audit_id,
                        seal.seq,
                        2,
                    )
                )
            elif row_id is None:
                findings.append(
                    Finding(
                        f"audit row {seal.audit_id} of ticket {seal.ticket_id} is missing (deleted)",
                        seal.ticket_id,
                        seal.audit_id,
                        seal.seq,
                        2,
                    )
                )
            elif seal.key_id not in keyring.keys:
                findings.append(
                    Finding(
                        f"sealed with key '{seal.key_id}', which the keyring ({keyring.source}) "
                        "does not hold",
                        seal.ticket_id,
                        seal.audit_id,
                        seal.seq,
                        2,
                    )
                )
            elif row_ticket != seal.ticket_id or not hmac.compare_digest(
                seal.mac,
                seal_mac(
                    keyring,
                    seal.key_id,
                    (seal.seq, seal.audit_id, seal.ticket_id, str(row_hash_), seal.prev_mac),
                ),
            ):
                findings.append(
                    Finding(
                        "the row is not the one that was sealed (rewritten and re-hashed), "
                        "or the seal was edited",
                        seal.ticket_id,
                        seal.audit_id,
                        seal.seq,
                        2,
                    )
                )
            else:
                good[seal.key_id] += 1
            seq, prev = seal.seq, seal.mac
    head = session.get(AuditChainHead, SEAL_HEAD_ID)
    if head is not None and (int(head.last_id or 0), head.last_hash) != (seq, prev):
        findings.append(
            Finding(
                f"the seal head names seq {head.last_id}, but the store's seals end at seq {seq} "
                "(seals deleted, or the head moved)",
                seq=seq + 1 if int(head.last_id or 0) > seq else None,
            )
        )
    return seq, findings, good


def verify(
    session: Session, keyring: Keyring | None = None, *, checkpoints: Path | None = None, batch: int = 5000
) -> VerifyReport:
    """Recompute every chain and the seals, check the checkpoints; findings first-broken first."""
    keyring = keyring or current_keyring()
    head = session.get(AuditChainHead, HEAD_ID)
    legacy_end = (head.last_id if head is not None else None) or 0
    findings: list[Finding] = []
    checked = unchained = 0
    legacy_broken = False
    if legacy_end:
        checked, unchained, found = _verify_legacy(
            session, legacy_end, head.last_hash if head is not None else None, batch
        )
        if found is not None:
            findings.append(found)
            legacy_broken = True
    chains = _verify_chains(session, keyring, legacy_end, batch)
    findings += chains.findings
    sealed, seal_findings, sealed_by = _verify_seals(session, keyring, batch)
    findings += seal_findings
    for kid in sorted(set(chains.bad) - set(chains.good) - set(sealed_by)):
        findings.append(
            Finding(
                f"key '{kid}' from {keyring.source} verifies none of the rows and seals said to be made "
                "with it: it is the wrong key (or every one of them was rewritten)",
                rank=0,
            )
        )
    unsealed = int(
        session.scalar(
            select(func.count())
            .select_from(TicketAudit)
            .where(
                TicketAudit.key_id.is_not(None),
                ~exists().where(and_(TicketAuditSeal.audit_id == TicketAudit.id)),
            )
        )
        or 0
    )
    held = 0
    if checkpoints is not None:
        held, found_cps = check_checkpoints(session, keyring, checkpoints)
        findings += [Finding(f.reason, seq=f.seq) for f in found_cps]
    findings.sort(key=lambda f: (f.rank, f.row_id if f.rank == 1 else f.seq or 0))
    first = _with_seq(session, findings[0]) if findings else None
    ordered = (first, *findings[1:]) if first is not None else ()
    return VerifyReport(
        checked=checked + chains.checked,
        unchained=unchained,
        broken_id=first.row_id if first is not None and first.rank == 1 else None,
        reason=first.reason if first is not None else None,
        chains=len(chains.seen),
        broken_chains=len(chains.broken) + int(legacy_broken),
        legacy=chains.legacy,
        sealed=sealed,
        unsealed=unsealed,
        keys=tuple(sorted(chains.good)),
        checkpoints=held,
        findings=ordered,
    )


def _with_seq(session: Session, finding: Finding) -> Finding:
    """The first finding, with the seq of its row's seal when it names a row but no seq."""
    if finding.row_id is None or finding.seq is not None:
        return finding
    seq = session.scalar(select(TicketAuditSeal.seq).where(TicketAuditSeal.audit_id == finding.row_id))
    if seq is None:
        return finding
    return Finding(finding.reason, finding.ticket_id, finding.row_id, int(seq), finding.rank)
