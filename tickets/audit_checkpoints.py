"""Signed checkpoints of the audit trail, kept outside the store.

A checkpoint is one JSON line ``{"seq", "mac", "rows", "at", "kid", "sig"}``: the last seal's ``seq`` and
MAC, the number of audit rows, when, and an HMAC (``sig``) of the rest with the keyring's key ``kid``.
``hypercare audit checkpoint`` appends one to a file (default ``<data_dir>/audit-checkpoints.jsonl``) and to
the structured log. Seals chain every audit row store-wide, but someone who deletes the *last* rows with
their seals and moves the head back leaves a shorter chain that is whole; a checkpoint taken before says
how far it went: :func:`check` finds the seal at each checkpoint's ``seq`` gone, or different.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tickets.audit_chain import GENESIS
from tickets.audit_keys import Keyring
from tickets.models import TicketAudit, TicketAuditSeal

log = logging.getLogger(__name__)

FIELDS = ("seq", "mac", "rows", "at", "kid")


@dataclass(frozen=True, slots=True)
class CheckpointFinding:
    line: int
    seq: int | None
    reason: str


def _signed_text(payload: dict[str, Any]) -> str:
    return json.dumps({name: payload[name] for name in FIELDS}, sort_keys=True, separators=(",", ":"))


def take(session: Session, keyring: Keyring, now: datetime | None = None) -> dict[str, Any]:
    """The store's checkpoint now, signed with the newest key (one transaction: a consistent view)."""
    last = session.execute(
        select(TicketAuditSeal.seq, TicketAuditSeal.mac).order_by(TicketAuditSeal.seq.desc()).limit(1)
    ).first()
    rows = int(session.scalar(select(func.count()).select_from(TicketAudit)) or 0)
    kid = keyring.current
    payload: dict[str, Any] = {
        "seq": int(last.seq) if last is not None else 0,
        "mac": str(last.mac) if last is not None else GENESIS,
        "rows": rows,
        "at": (now or datetime.now(UTC)).astimezone(UTC).isoformat(),
        "kid": kid,
    }
    payload["sig"] = keyring.mac(kid, _signed_text(payload))
    return payload


def append(path: Path, checkpoint: dict[str, Any]) -> None:
    """One line, appended (``O_APPEND``: concurrent writers never interleave within a line), and logged."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(checkpoint, sort_keys=True) + "\n")
    log.info("audit checkpoint", extra={"audit_checkpoint": checkpoint, "path": str(path)})


def write(factory: sessionmaker[Session], keyring: Keyring, path: Path) -> dict[str, Any]:
    """Take a checkpoint and append it (``hypercare audit checkpoint``, the server's periodic one)."""
    with factory() as session, session.begin():
        point = take(session, keyring)
    append(path, point)
    return point


def _parse(line: str) -> dict[str, Any] | None:
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or any(name not in data for name in (*FIELDS, "sig")):
        return None
    if (
        not isinstance(data["seq"], int)
        or not isinstance(data["rows"], int)
        or not isinstance(data["kid"], str)
    ):
        return None
    return data


def check(session: Session, keyring: Keyring, path: Path) -> tuple[int, list[CheckpointFinding]]:
    """Each checkpoint of ``path`` against the store: (checkpoints that hold, findings)."""
    findings: list[CheckpointFinding] = []
    held = 0
    last_seq = int(session.scalar(select(func.max(TicketAuditSeal.seq))) or 0)
    rows_now = int(session.scalar(select(func.count()).select_from(TicketAudit)) or 0)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        data = _parse(line)
        if data is None:
            findings.append(CheckpointFinding(number, None, f"{path} line {number} is not a checkpoint"))
            continue
        kid, seq = data["kid"], data["seq"]
        if kid not in keyring.keys:
            findings.append(
                CheckpointFinding(
                    number,
                    seq,
                    f"checkpoint line {number} is signed with key '{kid}', "
                    f"which the keyring ({keyring.source}) does not hold",
                )
            )
            continue
        if not hmac.compare_digest(str(data["sig"]), keyring.mac(kid, _signed_text(data))):
            findings.append(
                CheckpointFinding(
                    number,
                    seq,
                    f"checkpoint line {number}'s signature does not match "
                    f"(the line was edited, or key '{kid}' is the wrong key)",
                )
            )
            continue
        where = f"the checkpoint of {data['at']} (line {number})"
        if seq > 0:
            mac = session.scalar(select(TicketAuditSeal.mac).where(TicketAuditSeal.seq == seq))
            if mac is None:
                findings.append(
                    CheckpointFinding(
                        number,
                        seq,
                        f"seq {seq}, sealed when {where} was taken, is no longer in "
                        f"the store (it ends at seq {last_seq}): the last rows were deleted",
                    )
                )
                continue
            if mac != data["mac"]:
                findings.append(
                    CheckpointFinding(
                        number, seq, f"the seal at seq {seq} differs from {where}: the chain was rewritten"
                    )
                )
                continue
        if rows_now < data["rows"]:
            findings.append(
                CheckpointFinding(
                    number,
                    seq,
                    f"the store holds {rows_now} audit rows, {where} counted "
                    f"{data['rows']}: rows were deleted",
                )
            )
            continue
        held += 1
    return held, findings
