"""The demo ERP: consistent by construction, deterministic, and each injected fault caught by its own check.

The pack runs through the real check engine (``monitor.checks``) on read-only source engines, the way the
collector runs it. Small scales keep the per-fault builds fast; the default scale is built once per module.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Connection, Executable, MetaData, create_engine, func, select
from sqlalchemy.orm import Session

from anomaly.events import fingerprint
from anomaly.settings import AnomalySettings
from anomaly.volumes import VolumeWatch
from hypercare.demo import erp_schema as s
from hypercare.demo.builder import DemoErp, build_demo_erp
from hypercare.demo.erp_schema import ERP, FINANCE, LEGACY
from hypercare.demo.faults import FAULT_KINDS, FAULTS
from monitor.checks import CheckSpec, load_pack, run_check
from monitor.sources import source_engine
from monitor.volumes import VolumeSpec, load_volumes, run_volume
from tests.demo_erp import DemoErpFactory
from tests.servers import fresh_database

AS_OF = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
SMALL = 0.05
PACK = load_pack("demo_erp")
PACK_IDS = {spec.id for spec in PACK}
WATCHES = load_volumes(["demo_erp"])
WATCH_IDS = {watch.id for watch in WATCHES}


def failing(erp: DemoErp, pack: list[CheckSpec] = PACK) -> dict[str, list[dict[str, str]]]:
    """check id -> offending entities, for every check of the pack that fails; errors fail the test."""
    engine = source_engine(erp.erp_url)
    try:
        results = [run_check(spec, engine, now=erp.as_of) for spec in pack]
    finally:
        engine.dispose()
    assert {r.check_id: r.error for r in results if r.status == "error"} == {}
    return {r.check_id: r.entities for r in results if r.status == "fail"}


def expected(erp: DemoErp) -> dict[str, list[dict[str, str]]]:
    return {f.check_id: [f.entity] for f in erp.faults if f.check_id in PACK_IDS}


@pytest.fixture(scope="module")
def healthy(demo_erp: DemoErpFactory) -> DemoErp:
    return demo_erp("healthy", faults=[], as_of=AS_OF)


@pytest.fixture(scope="module")
def faulty(demo_erp: DemoErpFactory) -> DemoErp:
    return demo_erp("faulty", as_of=AS_OF)


# --- the pack against the ground truth -----------------------------------------------------------------------


def test_fault_free_erp_passes_every_check(healthy: DemoErp) -> None:
    assert healthy.faults == ()
    assert failing(healthy) == {}


def test_every_injected_fault_is_found_by_its_check_and_nothing_else(faulty: DemoErp) -> None:
    assert [f.kind for f in faulty.faults] == list(FAULT_KINDS)
    found = failing(faulty)
    assert found == expected(faulty)
    # the slow endpoint is the HTTP probe's and the replayed queue the invoice volume watch's: not a check's
    assert len(found) == len(FAULT_KINDS) - 2


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_alone_fails_exactly_its_own_check(kind: str, tmp_path: Path) -> None:
    erp = build_demo_erp(tmp_path, scale=SMALL, faults=[kind], as_of=AS_OF)
    (fault,) = erp.faults
    assert fault.kind == kind
    assert fault.source == "erp"
    if fault.check_id.startswith("probe."):
        assert fault.entity == {}
        assert failing(erp) == {}
    elif fault.check_id in WATCH_IDS:  # drafts no check looks at: only the volume watch sees the day
        assert fault.entity == {"kind": "out", "measure": "count"}
        assert failing(erp) == {}
    else:
        assert failing(erp) == {fault.check_id: [fault.entity]}


@pytest.mark.parametrize(
    "as_of",
    [
        datetime(2027, 1, 3, 0, 20, tzinfo=UTC),  # before business hours, go-live in the previous year
        datetime(2026, 3, 1, 12, 0, tzinfo=UTC),  # go-live in February
        datetime(2028, 3, 20, 2, 0, tzinfo=UTC),  # history across a leap day
    ],
)
def test_calendar_edges_keep_the_ground_truth(as_of: datetime, tmp_path: Path) -> None:
    erp = build_demo_erp(tmp_path / "faulty", scale=SMALL, as_of=as_of)
    assert failing(erp) == expected(erp)
    clean = build_demo_erp(tmp_path / "clean", scale=SMALL, faults=[], as_of=as_of)
    assert failing(clean) == {}


RAISED_BY_SEVERITY_RULES = {"posting_in_closed_period": "P2"}
"""Faults whose ticket priority is not the check's declared severity (here: raised by materiality)."""


def test_fault_catalogue_spans_the_categories_and_matches_the_pack() -> None:
    assert len(FAULTS) >= 13
    assert {f.category for f in FAULTS} == {"data", "process", "technical", "user"}
    by_id: dict[str, CheckSpec | VolumeSpec] = {spec.id: spec for spec in PACK}
    by_id.update({watch.id: watch for watch in WATCHES})
    for fault in FAULTS:
        if fault.check_id.startswith("probe."):
            continue
        spec = by_id[fault.check_id]
        declared = RAISED_BY_SEVERITY_RULES.get(fault.kind, fault.priority)
        assert (spec.category, spec.severity) == (fault.category, declared), fault.kind
        assert spec.key_columns, spec.id
    assert len({f.check_id for f in FAULTS}) == len(FAULTS)


def test_ground_truth_file_records_the_build(faulty: DemoErp) -> None:
    document = json.loads(faulty.ground_truth_path.read_text(encoding="utf-8"))
    assert faulty.ground_truth_path == faulty.directory / "ground_truth.json"
    assert document["seed"] == 42
    assert document["scale"] == 1.0
    assert datetime.fromisoformat(document["as_of"]) == AS_OF
    assert document["faults"] == [asdict(f) for f in faulty.faults]


# --- volume and internal consistency of the generated data -------------------------------------------------


def test_default_scale_volume(healthy: DemoErp) -> None:
    assert 90_000 <= healthy.counts["journal_line"] <= 130_000
    assert {name for name, count in healthy.counts.items() if count == 0} == {"demo_fault_config"}
    assert healthy.counts["finance_inbox"] == healthy.counts["integration_outbox"]


def _scalar(conn: Connection, query: Executable) -> Decimal:
    value = conn.execute(query).scalar()
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def test_healthy_ledger_subledgers_and_stock_agree(healthy: DemoErp) -> None:
    line, entry, account, inv = s.journal_line.c, s.journal_entry.c, s.account.c, s.invoice.c
    engine = create_engine(healthy.erp_url)
    with engine.connect() as conn:

        def gl(role: str) -> Decimal:
            query = (
                select(func.sum(line.debit - line.credit))
                .join(s.account, account.id == line.account_id)
                .join(s.journal_entry, entry.id == line.entry_id)
                .where(account.role == role, entry.state == "posted")
            )
            return _scalar(conn, query)

        def residual(kind: str) -> Decimal:
            return _scalar(
                conn, select(func.sum(inv.amount_residual)).where(inv.kind == kind, inv.state == "posted")
            )

        posted = select(func.sum(line.debit - line.credit)).join(s.journal_entry, entry.id == line.entry_id)
        assert _scalar(conn, posted.where(entry.state == "posted")) == 0  # trial balance nets to zero
        assert gl("ar_control") == residual("out") > 0
        assert -gl("ap_control") == residual("in") > 0
        stock_value = _scalar(conn, select(func.sum(s.stock_level.c.value)))
        assert gl("inventory") == stock_value > 0
        assert conn.execute(select(func.min(s.stock_level.c.quantity))).scalar_one() >= 0
        paid = select(s.payment.c.invoice_id, func.sum(s.payment.c.amount).label("paid")).group_by(
            s.payment.c.invoice_id
        )
        sub = paid.subquery()
        mismatched = conn.execute(
            select(func.count())
            .select_from(s.invoice.outerjoin(sub, sub.c.invoice_id == inv.id))
            .where(
                inv.state == "posted",
                func.abs(inv.amount_total - func.coalesce(sub.c.paid, 0) - inv.amount_residual) >= 0.005,
            )
        ).scalar_one()
        assert mismatched == 0
        late = conn.execute(
            select(func.count()).where(entry.created_at > AS_OF.replace(tzinfo=None))
        ).scalar_one()
        assert late == 0
    engine.dispose()


def test_sent_messages_are_in_the_finance_inbox_and_broken_ones_are_not(faulty: DemoErp) -> None:
    o, inbox = s.integration_outbox.c, s.finance_inbox.c
    erp, finance = create_engine(faulty.erp_url), create_engine(faulty.finance_url)
    with erp.connect() as conn:
        sent = set(conn.execute(select(o.id).where(o.status == "sent")).scalars())
        broken = set(conn.execute(select(o.id).where(o.status != "sent")).scalars())
    with finance.connect() as conn:
        received = list(conn.execute(select(inbox.source_message_id)).scalars())
    erp.dispose()
    finance.dispose()
    assert set(received) == sent
    assert len(received) == len(sent)
    stuck_or_failed = {int(f.entity["message_id"]) for f in faulty.faults if "message_id" in f.entity}
    assert broken == stuck_or_failed
    assert len(stuck_or_failed) == 2


def test_legacy_copy_matches_the_migrated_history(healthy: DemoErp) -> None:
    go_live = AS_OF.date() - timedelta(days=20)
    line, entry, account = s.journal_line.c, s.journal_entry.c, s.account.c
    erp, legacy = create_engine(healthy.erp_url), create_engine(healthy.legacy_url)
    erp_totals: dict[tuple[str, int, int], tuple[Decimal, Decimal]] = {}
    with erp.connect() as conn:
        for code, day, debit, credit in conn.execute(
            select(account.code, line.date, line.debit, line.credit)
            .join(s.account, account.id == line.account_id)
            .join(s.journal_entry, entry.id == line.entry_id)
            .where(line.date < go_live, entry.state == "posted")
        ):
            dr, cr = erp_totals.get((code, day.year, day.month), (Decimal(0), Decimal(0)))
            erp_totals[(code, day.year, day.month)] = (dr + debit, cr + credit)
        open_items = _scalar(conn, select(func.sum(s.mig_open_item_extract.c.amount_residual)))
        customers = set(conn.execute(select(s.mig_customer_extract.c.customer_code)).scalars())
    bal, doc = s.gl_period_balance.c, s.doc_header.c
    with legacy.connect() as conn:
        legacy_totals = {
            (code, year, month): (dr, cr)
            for code, year, month, dr, cr in conn.execute(
                select(bal.acct_code, bal.fiscal_yr, bal.fiscal_mth, bal.dr_amt, bal.cr_amt)
            )
        }
        legacy_open = _scalar(conn, select(func.sum(doc.open_amt)))
        legacy_customers = set(conn.execute(select(s.cust_master.c.cust_no)).scalars())
    erp.dispose()
    legacy.dispose()
    assert legacy_totals == erp_totals
    assert open_items == legacy_open > 0
    assert customers == legacy_customers


# --- determinism, rebuilds, arguments ---------------------------------------------------------------------------


def _digest(erp: DemoErp) -> str:
    digest = hashlib.sha256()
    for url, metadata in ((erp.erp_url, ERP), (erp.finance_url, FINANCE), (erp.legacy_url, LEGACY)):
        engine = create_engine(url)
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                digest.update(table.name.encode())
                for row in conn.execute(select(table).order_by(*table.primary_key.columns)):
                    digest.update(repr(tuple(row)).encode())
        engine.dispose()
    return digest.hexdigest()


def test_same_seed_and_as_of_give_identical_data(tmp_path: Path) -> None:
    first = build_demo_erp(tmp_path / "a", scale=SMALL, as_of=AS_OF)
    again = build_demo_erp(tmp_path / "b", scale=SMALL, as_of=AS_OF)
    other = build_demo_erp(tmp_path / "c", scale=SMALL, as_of=AS_OF, seed=7)
    assert _digest(first) == _digest(again)
    assert first.faults == again.faults
    assert _digest(other) != _digest(first)


def test_building_again_replaces_the_previous_demo(tmp_path: Path) -> None:
    build_demo_erp(tmp_path, scale=SMALL, as_of=AS_OF)
    clean = build_demo_erp(tmp_path, scale=SMALL, faults=[], as_of=AS_OF)
    assert clean.counts["demo_fault_config"] == 0
    assert failing(clean) == {}
    assert json.loads(clean.ground_truth_path.read_text(encoding="utf-8"))["faults"] == []


def test_unknown_fault_kind_is_refused_with_the_valid_kinds(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"unknown fault kind\(s\) no_such_fault; valid kinds: unbalanced_journal"
    ):
        build_demo_erp(tmp_path, faults=["negative_stock", "no_such_fault"])
    assert not (tmp_path / "erp.db").exists()


def test_naive_as_of_and_bad_scale_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_demo_erp(tmp_path, as_of=datetime(2026, 11, 23, 18, 0))
    with pytest.raises(ValueError, match="scale must be positive"):
        build_demo_erp(tmp_path, scale=0)


def test_default_as_of_is_now_to_the_minute(tmp_path: Path) -> None:
    before = datetime.now(UTC).replace(second=0, microsecond=0)
    erp = build_demo_erp(tmp_path, scale=0.01, faults=[])
    assert before <= erp.as_of <= datetime.now(UTC)
    assert erp.as_of.second == 0
    assert erp.as_of.tzinfo is not None


# --- PostgreSQL -----------------------------------------------------------------------------------------------


@pytest.fixture
def pg_database(tmp_path: Path) -> Iterator[str]:
    yield from fresh_database("postgres", tmp_path, prefix="hc_demo")


@pytest.mark.postgres
def test_builds_on_postgresql_and_the_pack_finds_the_same_faults(pg_database: str, tmp_path: Path) -> None:
    erp = build_demo_erp(tmp_path, scale=0.2, as_of=AS_OF, erp_url=pg_database)
    assert erp.erp_url == pg_database
    assert failing(erp) == expected(erp)
    on_sqlite = build_demo_erp(tmp_path / "sqlite", scale=0.2, as_of=AS_OF)
    assert erp.faults == on_sqlite.faults  # same targets whatever the engine
    assert erp.counts == on_sqlite.counts
    engine = create_engine(pg_database)
    reflected = MetaData()
    reflected.reflect(engine)
    assert {fk.column.table.name for fk in reflected.tables["invoice"].foreign_keys} == {
        "partner",
        "journal_entry",
        "app_user",
    }
    with engine.begin() as conn:  # sequences continue after the loaded ids
        next_id = conn.execute(
            s.app_user.insert().values(
                login="probe", name="probe", role="x", active=True, created_at=AS_OF.replace(tzinfo=None)
            )
        ).inserted_primary_key
    engine.dispose()
    assert next_id is not None
    assert next_id[0] == erp.counts["app_user"] + 1
    clean = build_demo_erp(tmp_path, scale=0.2, faults=[], as_of=AS_OF, erp_url=pg_database)
    assert failing(clean) == {}


@pytest.mark.postgres
def test_erp_and_finance_in_one_postgresql_database_build_without_waiting_on_each_other(
    pg_database: str, tmp_path: Path
) -> None:
    # Each loader holds its own open transaction; a database-wide ANALYZE in one waited for the other's locks.
    erp = build_demo_erp(tmp_path, scale=0.05, as_of=AS_OF, erp_url=pg_database, finance_url=pg_database)
    assert erp.finance_url == erp.erp_url == pg_database
    assert failing(erp) == expected(erp)


@pytest.mark.parametrize("faults", [["integration_replay"], []], ids=["replayed", "clean"])
def test_the_replayed_queue_is_one_anomaly_of_the_invoice_volume_watch(
    faults: list[str], session: Session, tmp_path: Path
) -> None:
    erp = build_demo_erp(tmp_path, scale=SMALL, faults=faults, as_of=AS_OF)
    engine = source_engine(erp.erp_url)
    try:
        series = [s for watch in WATCHES for s in run_volume(watch, engine, now=erp.as_of).series]
    finally:
        engine.dispose()
    events = VolumeWatch(AnomalySettings()).observe(session, series, now=erp.as_of)
    got = [(e.action, e.fingerprint) for e in events]
    assert got == [("trigger", fingerprint(f.check_id, f.source, entity=f.entity)) for f in erp.faults]
