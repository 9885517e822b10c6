"""The audit trail is chained with a key: every row carries the previous row's hash and an HMAC, every
committed row a seal on the store-wide chain, and `hypercare audit verify` recomputes them all, checks
checkpoints kept outside the store and names the first tampered place; concurrent writers never fork it."""

from __future__ import annotations

import base64
import json
import logging
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from core.errors import ConfigError
from core.session import session_factory, session_scope
from hypercare.app import audit_checkpoint
from hypercare.cli import app as cli_app
from hypercare.config import load_settings
from hypercare.store import downgrade, upgrade
from tests.cli import run_hypercare
from tests.tickets.factories import make_event, make_settings
from tickets.audit import GENESIS, row_hash, verify
from tickets.audit_chain import row_mac, use_keyring
from tickets.audit_checkpoints import append, take
from tickets.audit_keys import Keyring, keyring_for, load_keyring, parse_keyring, rotate
from tickets.models import Ticket, TicketAudit, TicketAuditSeal
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


def test_each_ticket_has_its_own_keyed_chain_and_every_row_a_seal(
    session: Session, audit_keyring: Keyring
) -> None:
    service = TicketService(session, make_settings())
    first = service.ingest(make_event()).ticket
    second = service.ingest(make_event(fingerprint="fp-other", summary="Other")).ticket
    assert first is not None and second is not None
    service.comment(first.id, "alice", "looking")
    service.comment(second.id, "bob", "me too")
    service.resolve(first.id, "alice", "fixed")
    session.commit()  # seals are written at the commit
    for ticket, length in ((first, 3), (second, 2)):
        rows = list(
            session.scalars(
                select(TicketAudit).where(TicketAudit.ticket_id == ticket.id).order_by(TicketAudit.id)
            )
        )
        assert len(rows) == length
        prev = GENESIS
        for row in rows:
            assert row.key_id == "t1"
            assert row.prev_hash == prev and row.hash == row_mac(audit_keyring, "t1", row, prev)
            prev = row.hash
        assert session.scalar(select(Ticket.audit_hash).where(Ticket.id == ticket.id)) == rows[-1].hash
    session.expire_all()
    seals = list(session.scalars(select(TicketAuditSeal).order_by(TicketAuditSeal.seq)))
    assert [s.seq - seals[0].seq for s in seals] == list(range(5)), "one seal per row, no gap"
    report = verify(session)
    assert report.ok and (report.checked, report.chains, report.legacy) == (5, 2, 0)
    assert report.keys == ("t1",) and report.unsealed == 0


def _tamper(engine: Engine, sql: str) -> None:
    """What an attacker with database access does: drop the append-only trigger, then edit."""
    with engine.begin() as conn:
        for table in ("ticket_audit", "ticket_audit_seal"):
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}"))
            else:
                conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_update"))
                conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_delete"))
        for statement in sql.split(";"):
            if statement.strip():
                conn.execute(text(statement))


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


@pytest.mark.usefixtures("cli_logging", "audit_key_file")
@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("UPDATE ticket_audit SET actor = 'mallory' WHERE id = {id}", "MAC does not match the row's content"),
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
    assert (
        f"audit chain BROKEN at ticket {report.first.ticket_id if report.first else ''}, row {expected}, seq"
        in (broken.output)
    )


def test_a_truncated_tail_is_detected(store_engine: Engine) -> None:
    ids = _seed(store_engine)
    _tamper(store_engine, f"DELETE FROM ticket_audit WHERE id = {ids[-1]}")
    with session_factory(store_engine)() as session:
        report = verify(session)
    # the seal of the deleted row names it; the ticket's head names a row that is gone
    assert not report.ok and report.first is not None and report.first.row_id == ids[-1]
    assert "missing (deleted)" in report.first.reason and report.first.seq == len(ids)
    assert any("truncated" in finding.reason for finding in report.findings)


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
        seqs = list(session.scalars(select(TicketAuditSeal.seq).order_by(TicketAuditSeal.seq)))
    assert report.ok and report.checked == 41
    assert len({row.prev_hash for row in rows}) == 41, "no two rows share a predecessor: no fork"
    assert rows[0].prev_hash == GENESIS
    assert seqs == list(range(1, 42)), "the store-wide chain has no gap and no fork either"


def _seed_two(engine: Engine) -> tuple[list[int], list[int]]:
    """Two tickets with three audit rows each, interleaved in id order."""
    factory = session_factory(engine)
    with session_scope(factory) as session:
        service = TicketService(session, make_settings())
        one = service.ingest(make_event()).ticket
        two = service.ingest(make_event(fingerprint="fp-two", summary="Two")).ticket
        assert one is not None and two is not None
        for n in range(2):
            service.comment(one.id, "alice", f"one {n}")
            service.comment(two.id, "bob", f"two {n}")
        ids = one.id, two.id
    with factory() as session:
        rows = list(session.scalars(select(TicketAudit).order_by(TicketAudit.id)))
    return [r.id for r in rows if r.ticket_id == ids[0]], [r.id for r in rows if r.ticket_id == ids[1]]


def test_reordered_rows_are_detected(store_engine: Engine) -> None:
    one, _ = _seed_two(store_engine)
    a, b = one[1], one[2]
    _tamper(store_engine, f"UPDATE ticket_audit SET id = -1 WHERE id = {a}")
    with store_engine.begin() as conn:
        conn.execute(text(f"UPDATE ticket_audit SET id = {a} WHERE id = {b}"))
        conn.execute(text(f"UPDATE ticket_audit SET id = {b} WHERE id = -1"))
    with session_factory(store_engine)() as session:
        report = verify(session)
    assert (report.ok, report.broken_id) == (False, a)
    assert "prev_hash does not match" in (report.reason or "")


def test_a_row_moved_to_another_ticket_is_detected(store_engine: Engine) -> None:
    one, two = _seed_two(store_engine)
    ticket_two = _ticket_of(store_engine, two[0])
    _tamper(store_engine, f"UPDATE ticket_audit SET ticket_id = {ticket_two} WHERE id = {one[-1]}")
    with session_factory(store_engine)() as session:
        report = verify(session)
    assert not report.ok and report.broken_id is not None
    assert report.broken_chains == 2, "one chain lost its tail, the other gained a foreign row"


def test_a_deleted_chain_is_detected_and_others_still_verify(store_engine: Engine) -> None:
    one, two = _seed_two(store_engine)
    ticket_two = _ticket_of(store_engine, two[0])
    _tamper(store_engine, f"DELETE FROM ticket_audit WHERE ticket_id = {ticket_two}")
    with session_factory(store_engine)() as session:
        report = verify(session)
    assert not report.ok and report.first is not None
    assert report.first.ticket_id == ticket_two and "missing" in report.first.reason
    assert (report.checked, report.chains, report.broken_chains) == (len(one), 1, 1)


def _ticket_of(engine: Engine, audit_id: int) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text(f"SELECT ticket_id FROM ticket_audit WHERE id = {audit_id}")))


def test_rows_of_the_old_global_chain_still_verify(store_engine: Engine) -> None:
    """Rows written before migration 0006 form one global chain ending at audit_chain_head."""
    factory = session_factory(store_engine)
    with session_scope(factory) as session:
        service = TicketService(session, make_settings())
        tickets = [service.ingest(make_event(fingerprint=f"fp-{n}")).ticket for n in range(2)]
        ids = [t.id for t in tickets if t is not None]
    _tamper(
        store_engine,
        "DELETE FROM ticket_audit; DELETE FROM ticket_audit_seal; "
        f"UPDATE audit_chain_head SET last_id = 0, last_hash = '{GENESIS}' WHERE id = 2",
    )
    prev = GENESIS
    with session_scope(factory) as session:
        session.execute(text("UPDATE ticket SET audit_hash = NULL"))
        for n in range(4):  # what the old writer did: one chain across tickets
            row = TicketAudit(ticket_id=ids[n % 2], actor="system", action="commented", detail={"n": n})
            row.at = make_event().occurred_at
            row.prev_hash, row.hash = prev, "x"  # set so the per-ticket hook leaves the row alone
            row.hash = prev = row_hash(row, prev)
            session.add(row)
        session.flush()
        last_id = int(session.scalar(select(TicketAudit.id).order_by(TicketAudit.id.desc()).limit(1)) or 0)
        session.execute(
            text("UPDATE audit_chain_head SET last_id = :id, last_hash = :h WHERE id = 1"),
            {"id": last_id, "h": prev},
        )
    with session_scope(factory) as session:  # new rows are chained per ticket, after the old ones
        TicketService(session, make_settings()).comment(ids[0], "alice", "after the upgrade")
    with factory() as session:
        report = verify(session)
        assert report.ok and (report.checked, report.chains) == (5, 1)
    with store_engine.begin() as conn:
        conn.execute(text(f"UPDATE ticket_audit SET actor = 'mallory' WHERE id = {last_id - 2}"))
    with factory() as session:
        report = verify(session)
    assert (report.ok, report.broken_id) == (False, last_id - 2)


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_writers_of_different_tickets_do_not_wait_for_each_other(store_engine: Engine) -> None:
    """The chain lock is the ticket's own: a transaction holding one ticket does not block another's
    (PostgreSQL; SQLite serialises every writer by design)."""
    factory = session_factory(store_engine)
    with session_scope(factory) as session:
        service = TicketService(session, make_settings())
        one = service.ingest(make_event()).ticket
        two = service.ingest(make_event(fingerprint="fp-two")).ticket
        assert one is not None and two is not None
        ids = one.id, two.id
    holder = factory()
    try:
        TicketService(holder, make_settings()).comment(ids[0], "alice", "holding ticket one")
        holder.flush()  # ticket one and its chain head stay locked until holder ends
        with session_scope(factory) as session:
            session.execute(text("SET LOCAL lock_timeout = '3s'"))
            TicketService(session, make_settings()).comment(ids[1], "bob", "not waiting")
        holder.commit()
    finally:
        holder.close()
    with factory() as session:
        assert verify(session).ok


# --- the attacks of a store owner without the key ------------------------------------------------------


def _ticket_rows(engine: Engine) -> list[TicketAudit]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(TicketAudit).order_by(TicketAudit.id)))


@pytest.mark.parametrize("keep_key_id", [True, False], ids=["key-id-kept", "key-id-cleared"])
def test_a_comment_rewritten_with_every_later_hash_recomputed_is_detected(
    store_engine: Engine, keep_key_id: bool
) -> None:
    """The attacker edits a comment, recomputes that row's and every later row's hash with plain sha256
    (the old, unkeyed chain) and moves the ticket's head: the chain is whole again, but not keyed."""
    ids = _seed(store_engine)
    rows = _ticket_rows(store_engine)
    target = rows[2]
    statements = []
    prev = str(target.prev_hash)
    kid = "key_id" if keep_key_id else "NULL"
    for row in rows[2:]:
        detail = "detail"
        if row.id == target.id:
            row.detail = {**row.detail, "text": "nothing to see here"}
            detail = "'" + json.dumps(row.detail) + "'"
        link, prev = prev, row_hash(row, prev)
        statements.append(
            f"UPDATE ticket_audit SET detail = {detail}, hash = '{prev}', key_id = {kid}, "
            f"prev_hash = '{link}' WHERE id = {row.id}"
        )
    statements.append(f"UPDATE ticket SET audit_hash = '{prev}' WHERE id = {target.ticket_id}")
    _tamper(store_engine, ";".join(statements))
    with session_factory(store_engine)() as session:
        report = verify(session)
    assert not report.ok and report.first is not None
    assert (report.first.ticket_id, report.first.row_id) == (target.ticket_id, ids[2])
    expected = "MAC does not match" if keep_key_id else "an unkeyed row after keyed ones"
    assert expected in report.first.reason
    # the store-wide seal of the same row says so too, independently of the ticket's chain
    assert any(f.seq is not None and f.row_id == ids[2] and "sealed" in f.reason for f in report.findings)


def test_the_last_row_deleted_and_the_head_moved_back_is_detected(store_engine: Engine) -> None:
    ids = _seed(store_engine)
    rows = _ticket_rows(store_engine)
    _tamper(
        store_engine,
        f"DELETE FROM ticket_audit WHERE id = {ids[-1]};"
        f"UPDATE ticket SET audit_hash = '{rows[-2].hash}' WHERE id = {rows[-1].ticket_id}",
    )
    with session_factory(store_engine)() as session:
        report = verify(session)
    assert not report.ok and report.first is not None
    assert (report.first.ticket_id, report.first.row_id, report.first.seq) == (rows[-1].ticket_id, ids[-1], 4)
    assert "missing (deleted)" in report.first.reason
    assert report.broken_chains == 0, "the ticket's own chain is whole: only the seals show the deletion"


def _delete_ticket(ticket_id: int) -> str:
    return (
        f"UPDATE event SET ticket_id = NULL WHERE ticket_id = {ticket_id};"
        f"UPDATE alertmanager_alert SET ticket_id = NULL WHERE ticket_id = {ticket_id};"
        f"DELETE FROM notification_outbox WHERE ticket_id = {ticket_id};"
        f"DELETE FROM ticket_audit WHERE ticket_id = {ticket_id};"
        f"DELETE FROM ticket WHERE id = {ticket_id}"
    )


def test_a_ticket_deleted_with_its_whole_trail_is_detected(store_engine: Engine) -> None:
    one, two = _seed_two(store_engine)
    ticket_two = _ticket_of(store_engine, two[0])
    _tamper(store_engine, _delete_ticket(ticket_two))
    with session_factory(store_engine)() as session:
        assert session.get(Ticket, ticket_two) is None
        report = verify(session)
    assert not report.ok and report.first is not None
    assert (report.first.ticket_id, report.first.row_id) == (ticket_two, two[0])
    assert "missing (deleted)" in report.first.reason
    missing = {f.row_id for f in report.findings if "missing (deleted)" in f.reason}
    assert missing == set(two), "every row of the deleted trail is named by its seal"
    assert report.checked == len(one)


def _cut_tail(engine: Engine, count: int) -> None:
    """Delete the last ``count`` audit rows of the store with their seals, and move every head back: the
    store is then a shorter trail that is whole. Only a checkpoint kept elsewhere can tell."""
    with session_factory(engine)() as session:
        seals = list(session.scalars(select(TicketAuditSeal).order_by(TicketAuditSeal.seq)))
        rows = {row.id: row for row in session.scalars(select(TicketAudit))}
    gone, kept = seals[-count:], seals[:-count]
    statements = [f"DELETE FROM ticket_audit_seal WHERE seq >= {gone[0].seq}"]
    statements += [f"DELETE FROM ticket_audit WHERE id = {seal.audit_id}" for seal in gone]
    last = kept[-1]
    statements.append(
        f"UPDATE audit_chain_head SET last_id = {last.seq}, last_hash = '{last.mac}' WHERE id = 2"
    )
    heads: dict[int, str] = {}
    for seal in kept:
        heads[seal.ticket_id] = str(rows[seal.audit_id].hash)
    for ticket_id in {seal.ticket_id for seal in gone}:
        statements.append(f"UPDATE ticket SET audit_hash = '{heads[ticket_id]}' WHERE id = {ticket_id}")
    _tamper(engine, ";".join(statements))


def test_the_last_rows_of_the_store_deleted_are_detected_by_a_checkpoint(
    store_engine: Engine, audit_keyring: Keyring, tmp_path: Path
) -> None:
    _seed_two(store_engine)
    checkpoints = tmp_path / "audit-checkpoints.jsonl"
    with session_factory(store_engine)() as session:
        append(checkpoints, take(session, audit_keyring))
        assert verify(session, checkpoints=checkpoints).checkpoints == 1
    _cut_tail(store_engine, 3)
    with session_factory(store_engine)() as session:
        alone = verify(session)
        report = verify(session, checkpoints=checkpoints)
    assert alone.ok, "without a checkpoint a cut tail with every head moved back looks whole"
    assert not report.ok and report.first is not None and report.first.seq == 6
    assert "no longer in the store (it ends at seq 3): the last rows were deleted" in report.first.reason


def test_an_edited_checkpoint_is_reported(
    store_engine: Engine, audit_keyring: Keyring, tmp_path: Path
) -> None:
    _seed(store_engine)
    checkpoints = tmp_path / "audit-checkpoints.jsonl"
    with session_factory(store_engine)() as session:
        point = take(session, audit_keyring)
        append(checkpoints, {**point, "seq": point["seq"] - 1})
        report = verify(session, checkpoints=checkpoints)
    assert not report.ok and report.first is not None
    assert "signature does not match" in report.first.reason


# --- keys: rotation, the wrong key, legacy rows --------------------------------------------------------


def _comment(engine: Engine, ticket_id: int, text_: str) -> None:
    with session_scope(session_factory(engine)) as session:
        TicketService(session, make_settings()).comment(ticket_id, "alice", text_)


def test_rows_chained_before_and_after_a_key_rotation_verify(store_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "audit_key"
    first = load_keyring(tmp_path, None, None)
    assert first.current == "k1" and stat.S_IMODE(path.stat().st_mode) == 0o600
    use_keyring(first)
    _seed(store_engine)
    assert rotate(path) == "k2"
    rotated = load_keyring(tmp_path, None, None)
    use_keyring(rotated)
    ticket_id = _ticket_rows(store_engine)[0].ticket_id
    _comment(store_engine, ticket_id, "after the rotation")
    rows = _ticket_rows(store_engine)
    assert [row.key_id for row in rows] == ["k1"] * 4 + ["k2"]
    with session_factory(store_engine)() as session:
        report = verify(session, rotated)
        assert report.ok and report.keys == ("k1", "k2") and report.sealed == 5
        without_old = verify(session, parse_keyring(path.read_text().splitlines()[1], "only k2"))
    assert not without_old.ok and without_old.first is not None
    assert "key 'k1', which the keyring (only k2) does not hold" in without_old.first.reason


def test_a_wrong_key_is_reported_as_such(store_engine: Engine) -> None:
    _seed(store_engine)
    other = parse_keyring("t1:" + base64.b64encode(b"another key, not the store's own").decode(), "other")
    with session_factory(store_engine)() as session:
        report = verify(session, other)
    assert not report.ok and report.first is not None
    assert report.first.reason.startswith("key 't1' from other verifies none of the rows and seals")
    assert "it is the wrong key" in report.first.reason


def test_legacy_unkeyed_rows_verify_and_new_rows_chain_on_with_the_key(store_engine: Engine) -> None:
    """Rows chained per ticket with plain sha256 (migrations 0006 to 0012) stay valid; the ticket's next
    row is keyed and chains on from the last of them."""
    factory = session_factory(store_engine)
    with session_scope(factory) as session:
        ticket = TicketService(session, make_settings()).ingest(make_event()).ticket
        assert ticket is not None
        ticket_id = ticket.id
    _tamper(
        store_engine,
        "DELETE FROM ticket_audit; DELETE FROM ticket_audit_seal; "
        f"UPDATE audit_chain_head SET last_id = 0, last_hash = '{GENESIS}' WHERE id = 2",
    )
    prev = GENESIS
    with session_scope(factory) as session:
        for n in range(3):  # what the writer of 0006-0012 did: sha256, per ticket, no key id, no seal
            row = TicketAudit(ticket_id=ticket_id, actor="system", action="commented", detail={"n": n})
            row.at = make_event().occurred_at
            row.prev_hash, row.hash = prev, "x"  # set so the hook leaves the row alone
            row.hash = prev = row_hash(row, prev)
            session.add(row)
        session.flush()
        session.execute(
            text("UPDATE ticket SET audit_hash = :h WHERE id = :id"), {"h": prev, "id": ticket_id}
        )
    _comment(store_engine, ticket_id, "after the upgrade")
    rows = _ticket_rows(store_engine)
    assert [row.key_id for row in rows] == [None, None, None, "t1"] and rows[-1].prev_hash == prev
    with factory() as session:
        report = verify(session)
    assert report.ok and (report.checked, report.legacy, report.sealed) == (4, 3, 1)


def test_the_keyring_file_refuses_what_is_not_a_key(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("k1:not base64!\n", encoding="ascii")
    with pytest.raises(ConfigError, match="key 'k1' is not valid base64"):
        load_keyring(tmp_path, path, None)
    with pytest.raises(ConfigError, match="does not exist"):
        load_keyring(tmp_path, tmp_path / "absent", None)
    short = SecretStr("k1:" + base64.b64encode(b"short").decode())
    with pytest.raises(ConfigError, match="too short"):
        load_keyring(tmp_path, None, short)
    assert "AAAA" not in repr(parse_keyring("k1:" + "A" * 44, "env")), "a keyring never shows its keys"


# --- the CLI, in a process of its own -------------------------------------------------------------------


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_hypercare("--config", str(config), "audit", *args)


def test_the_cli_verifies_checkpoints_and_rotates_the_key(
    store_engine: Engine, store_url: str, tmp_path: Path, audit_key_file: Path
) -> None:
    _seed_two(store_engine)
    config = tmp_path / "hypercare.yaml"
    config.write_text(f"database_url: '{store_url}'\ndata_dir: '{tmp_path}'\n", encoding="utf-8")

    intact = _cli(config, "verify")
    assert intact.returncode == 0, intact.stderr
    assert "audit chain intact: 6 rows verified; 6 seals, keys: t1" in intact.stdout

    taken = _cli(config, "checkpoint")
    assert taken.returncode == 0, taken.stderr
    lines = (tmp_path / "audit-checkpoints.jsonl").read_text(encoding="utf-8").splitlines()
    point = json.loads(lines[0])
    assert (point["seq"], point["rows"], point["kid"]) == (6, 6, "t1") and len(point["sig"]) == 64

    rotated = _cli(config, "rotate-key")
    assert rotated.returncode == 0, rotated.stderr
    assert [line.split(":")[0] for line in audit_key_file.read_text().splitlines()] == ["t1", "k1"]
    assert "AAAA" not in rotated.stdout + rotated.stderr and ":" not in rotated.stdout.split("'")[1]

    _cut_tail(store_engine, 2)
    broken = _cli(config, "verify")  # the default checkpoint file is checked when it exists
    assert broken.returncode == 1
    assert "audit chain BROKEN at seq 6: seq 6, sealed when the checkpoint of" in broken.stderr
    assert "the last rows were deleted" in broken.stderr


def test_the_cli_says_which_rows_are_legacy_and_unkeyed(
    store_engine: Engine, store_url: str, tmp_path: Path, audit_key_file: Path
) -> None:
    factory = session_factory(store_engine)
    with session_scope(factory) as session:
        ticket = TicketService(session, make_settings()).ingest(make_event()).ticket
        assert ticket is not None
        ticket_id = ticket.id
    _tamper(store_engine, "UPDATE ticket_audit SET key_id = NULL")  # as if written before migration 0013
    (legacy,) = _ticket_rows(store_engine)
    _tamper(
        store_engine,
        f"UPDATE ticket_audit SET hash = '{row_hash(legacy, GENESIS)}';"
        f"UPDATE ticket SET audit_hash = '{row_hash(legacy, GENESIS)}' WHERE id = {ticket_id};"
        f"DELETE FROM ticket_audit_seal; UPDATE audit_chain_head SET last_id = 0, last_hash = '{GENESIS}' "
        "WHERE id = 2",
    )
    config = tmp_path / "hypercare.yaml"
    config.write_text(f"database_url: '{store_url}'\ndata_dir: '{tmp_path}'\n", encoding="utf-8")
    result = _cli(config, "verify")
    assert result.returncode == 0, result.stderr
    assert "1 legacy, unkeyed rows (plain sha256, written before migration 0013)" in result.stdout


def test_the_server_appends_checkpoints_that_verify(store_engine: Engine, tmp_path: Path) -> None:
    """What ``hypercare serve`` does every ``tickets.audit_checkpoint_interval_min``."""
    _seed(store_engine)
    settings = make_settings(tmp_path=tmp_path)
    factory = session_factory(store_engine)
    audit_checkpoint(factory, settings)
    path = tmp_path / "audit-checkpoints.jsonl"
    assert json.loads(path.read_text(encoding="utf-8"))["seq"] == 4
    with factory() as session:
        report = verify(session, checkpoints=path)
    assert report.ok and report.checkpoints == 1


def test_verify_never_generates_a_key(store_url: str, tmp_path: Path) -> None:
    """A missing keyring is a lost key to restore, not a new one to make (every row would then be 'wrong')."""
    config = tmp_path / "hypercare.yaml"
    config.write_text(f"database_url: '{store_url}'\ndata_dir: '{tmp_path}'\n", encoding="utf-8")
    result = _cli(config, "verify")
    assert result.returncode != 0 and "restore it from its backup" in result.stderr
    assert not (tmp_path / "audit_key").exists()


def test_the_keyring_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    one, two = (base64.b64encode(bytes([n]) * 32).decode() for n in (1, 2))
    monkeypatch.setenv("HYPERCARE_AUDIT_KEY", f"k1:{one},k2:{two}")
    settings = load_settings(None, data_dir=tmp_path)
    keyring = keyring_for(settings)
    assert (list(keyring.keys), keyring.current, keyring.source) == (
        ["k1", "k2"],
        "k2",
        "HYPERCARE_AUDIT_KEY",
    )
    assert one not in repr(settings) and not (tmp_path / "audit_key").exists()
    monkeypatch.setenv("HYPERCARE_AUDIT_KEY", "k1")
    with pytest.raises(ConfigError, match="HYPERCARE_AUDIT_KEY: entry 1 is not 'kid:base64key'"):
        keyring_for(load_settings(None, data_dir=tmp_path))


def test_the_migration_keeps_legacy_hashes_and_new_rows_chain_on_with_the_key(store_engine: Engine) -> None:
    """A store at 0012 with sha256-chained rows, upgraded: every row keeps its hash and verifies as legacy;
    the ticket's next row is keyed, chained from the last legacy one, and sealed."""
    factory = session_factory(store_engine)
    with session_scope(factory) as session:
        ticket = TicketService(session, make_settings()).ingest(make_event()).ticket
        assert ticket is not None
        ticket_id = ticket.id
    _tamper(store_engine, "DELETE FROM ticket_audit")
    downgrade(store_engine, "0012_ticket_correlation")
    table = TicketAudit.__table__
    prev, legacy = GENESIS, []
    with store_engine.begin() as conn:  # what the writer of migrations 0006 to 0012 stored
        for n in range(3):
            row = TicketAudit(ticket_id=ticket_id, actor="system", action="commented", detail={"n": n})
            row.at = make_event().occurred_at
            digest = row_hash(row, prev)
            conn.execute(
                insert(table).values(
                    ticket_id=ticket_id,
                    at=row.at,
                    actor="system",
                    action="commented",
                    detail={"n": n},
                    prev_hash=prev,
                    hash=digest,
                )
            )
            legacy.append(digest)
            prev = digest
        conn.execute(text("UPDATE ticket SET audit_hash = :h WHERE id = :id"), {"h": prev, "id": ticket_id})
    upgrade(store_engine)
    _comment(store_engine, ticket_id, "after the upgrade")
    rows = _ticket_rows(store_engine)
    assert [row.hash for row in rows[:3]] == legacy and [row.key_id for row in rows] == [None] * 3 + ["t1"]
    assert rows[3].prev_hash == legacy[-1]
    with factory() as session:
        report = verify(session)
    assert report.ok and (report.checked, report.legacy, report.sealed) == (4, 3, 1)
