"""The audit trail is hash-chained: every row carries the previous row's hash, `hypercare audit verify`
recomputes the chain and names the first tampered row; concurrent writers never fork the chain."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session
from ticket_factories import make_event, make_settings
from typer.testing import CliRunner

from hypercare.cli import app as cli_app
from hypercare.store import session_factory, session_scope
from tickets.audit import GENESIS, row_hash, verify
from tickets.models import AuditChainHead, TicketAudit
from tickets.service import TicketService


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """The CLI configures logging process-wide (root handlers, apprise's level); undo it for later tests."""
    root, apprise = logging.getLogger(), logging.getLogger("apprise")
    saved = (root.level, list(root.handlers), apprise.level)
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    apprise.setLevel(saved[2])


def test_each_row_chains_to_the_previous_one(session: Session) -> None:
    service = TicketService(session, make_settings())
    ticket = service.ingest(make_event()).ticket
    assert ticket is not None
    service.comment(ticket.id, "alice", "looking")
    service.resolve(ticket.id, "alice", "fixed")
    session.flush()
    rows = list(session.scalars(select(TicketAudit).order_by(TicketAudit.id)))
    assert len(rows) == 3
    prev = rows[0].prev_hash
    for row in rows:
        assert row.prev_hash == prev and row.hash == row_hash(row, prev)
        prev = row.hash
    head = session.get(AuditChainHead, 1)
    assert head is not None and head.last_hash == rows[-1].hash
    session.expire_all()
    assert verify(session).ok


def _tamper(engine: Engine, sql: str) -> None:
    """What an attacker with database access does: drop the append-only trigger, then edit."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER ticket_audit_no_change ON ticket_audit"))
        else:
            conn.execute(text("DROP TRIGGER ticket_audit_no_update"))
            conn.execute(text("DROP TRIGGER ticket_audit_no_delete"))
        conn.execute(text(sql))


def _seed(engine: Engine) -> list[int]:
    factory = session_factory(engine)
    with session_scope(factory) as session:
        service = TicketService(session, make_settings())
        ticket = service.ingest(make_event()).ticket
        assert ticket is not None
        for n in range(3):
            service.comment(ticket.id, "alice", f"note {n}")
    with factory() as session:
        return list(session.scalars(select(TicketAudit.id).order_by(TicketAudit.id)))


@pytest.mark.usefixtures("cli_logging")
@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("UPDATE ticket_audit SET actor = 'mallory' WHERE id = {id}", "hash does not match"),
        ("DELETE FROM ticket_audit WHERE id = {id}", "prev_hash does not match"),
    ],
)
def test_verify_names_the_first_tampered_row(
    store_engine: Engine, store_url: str, tmp_path: Path, sql: str, reason: str
) -> None:
    ids = _seed(store_engine)
    runner = CliRunner()
    config = tmp_path / "hypercare.yaml"
    config.write_text(f"database_url: '{store_url}'\ndata_dir: '{tmp_path}'\n", encoding="utf-8")
    ok = runner.invoke(cli_app, ["--config", str(config), "audit", "verify"])
    assert ok.exit_code == 0 and "4 rows verified" in ok.output

    _tamper(store_engine, sql.format(id=ids[1]))
    with session_factory(store_engine)() as session:
        report = verify(session)
    # an edited row is broken itself; a deleted one breaks the row after it
    expected = ids[1] if "UPDATE" in sql else ids[2]
    assert (report.ok, report.broken_id) == (False, expected)
    assert reason in (report.reason or "")
    broken = runner.invoke(cli_app, ["--config", str(config), "audit", "verify"])
    assert broken.exit_code == 1
    assert f"audit chain BROKEN at row {expected}" in broken.output


def test_a_truncated_tail_is_detected(store_engine: Engine) -> None:
    ids = _seed(store_engine)
    _tamper(store_engine, f"DELETE FROM ticket_audit WHERE id = {ids[-1]}")
    with session_factory(store_engine)() as session:
        report = verify(session)
    assert not report.ok and report.broken_id is None and "truncated" in (report.reason or "")


def test_concurrent_writers_do_not_fork_the_chain(store_engine: Engine) -> None:
    factory = session_factory(store_engine)
    with session_scope(factory) as session:
        ticket = TicketService(session, make_settings()).ingest(make_event()).ticket
        assert ticket is not None
        ticket_id = ticket.id
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for n in range(10):
                with session_scope(factory) as session:
                    TicketService(session, make_settings()).comment(ticket_id, name, f"{name} {n}")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with factory() as session:
        report = verify(session)
        rows = list(session.scalars(select(TicketAudit).order_by(TicketAudit.id)))
    assert report.ok and report.checked == 41
    assert len({row.prev_hash for row in rows}) == 41, "no two rows share a predecessor: no fork"
    assert rows[0].prev_hash == GENESIS
