"""The demo is the end-to-end test: a simulated ERP with injected go-live faults (ground truth written
next to it) goes through the real pipeline, and every fault must come out as exactly one ticket."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import create_engine, func, select, text

from hypercare.demo.run import demo_environment, expected_fingerprint, score, watch_dualrun
from hypercare.pipeline import run_pipeline
from monitor.checks import load_checks
from monitor.volumes import load_volumes
from tests.cli import run_hypercare
from tickets.models import NotificationOutbox, Occurrence, Ticket

pytestmark = pytest.mark.slow
QUIET = Console(quiet=True)


def test_every_injected_fault_becomes_exactly_one_ticket_and_a_rerun_only_adds_occurrences(
    store_url: str, tmp_path: Path
) -> None:
    with demo_environment(tmp_path / "demo", port=8099, store_url=store_url, console=QUIET) as demo:
        card = demo.scorecard
        assert len(card.faults) >= 12
        assert {s.fault.category for s in card.faults} == {"data", "process", "technical", "user"}
        missed = [s.fault.kind for s in card.faults if not s.detected]
        assert missed == [], f"undetected or duplicated: {missed}"
        wrong = [(s.fault.kind, s.tickets[0].priority) for s in card.faults if not s.priority_ok]
        assert wrong == [], f"priority differs from the ground truth: {wrong}"
        assert card.unexpected == [], [t.title for t in card.unexpected]

        with demo.factory() as session:
            urgent = session.scalar(
                select(func.count()).select_from(Ticket).where(Ticket.priority.in_(["P1", "P2"]))
            )
            sent = session.scalar(
                select(func.count())
                .select_from(NotificationOutbox)
                .where(NotificationOutbox.status == "sent")
            )
        assert urgent and sent == urgent
        assert len(demo.sink.received()) == urgent

        # the dual run saw the cutover differences planted in the legacy copy, each classified
        assert demo.comparison is not None
        found = {e.entity: e for e in demo.comparison.entities}
        assert found["ap_documents"].by_classification == {"timing": 1}
        assert found["ar_documents"].by_classification == {"defect": 1, "mapping": 1}
        assert found["customers"].missing_in_new == 1 and found["suppliers"].differences == 0
        assert found["trial_balance"].differences > 0 and all(e.error is None for e in found.values())
        dual = {s.fault.kind: s.tickets[0] for s in card.faults if s.fault.check_id.startswith("dualrun.")}
        assert set(dual) == {
            f"dual run: {n}" for n in ("ap_documents", "ar_documents", "customers", "trial_balance")
        }
        with demo.factory() as session:
            ar = dual["dual run: ar_documents"]
            evidence = session.scalars(select(Occurrence.evidence).where(Occurrence.ticket_id == ar.id)).one()
            mapped = [r for r in evidence["differences"] if r["classification"] == "mapping"]
            assert [(r["column"], r["legacy"], r["new"]) for r in mapped] == [("ctrl_acct", "1133", "1122")]
            assert ar.runbook_id == "dualrun-difference"

        # the replayed integration queue is one ticket of the invoice volume watch, with the day's evidence
        (replay,) = [s for s in card.faults if s.fault.kind == "integration_replay"]
        ticket = replay.tickets[0]
        assert (ticket.check_id, ticket.category, ticket.runbook_id) == (
            "sales.volume.invoices",
            "process",
            "business-volume-invoices",
        )

        checks = load_checks(demo.settings.checks.packs)
        volumes = load_volumes(demo.settings.checks.packs, check_ids=[c.id for c in checks])
        again = run_pipeline(demo.settings, demo.factory, checks, volumes=volumes)
        _, dual_again = watch_dualrun(demo.settings, demo.factory, QUIET)  # the daily comparison, again
        assert again.outcomes["opened"] == 0 and dual_again.outcomes["opened"] == 0
        # a failing check repeats on every run; a volume bucket is judged once, so the rerun adds nothing
        repeated = len(card.faults) - 1
        assert again.outcomes["deduplicated"] + dual_again.outcomes["deduplicated"] == repeated
        with demo.factory() as session:
            assert session.scalar(select(func.count()).select_from(Ticket)) == len(card.faults)
            counts = {t.check_id: t.occurrence_count for t in session.scalars(select(Ticket))}
            assert counts.pop("sales.volume.invoices") == 1 and set(counts.values()) == {2}
            assert session.scalar(select(func.count()).select_from(Occurrence)) == 2 * repeated + 1
        assert len(demo.sink.received()) == urgent  # a repeat pages nobody


def test_a_fixed_fault_resolves_its_ticket_on_the_next_run(tmp_path: Path) -> None:
    with demo_environment(
        tmp_path / "demo", faults=["integration_message_failed", "negative_stock"], console=QUIET
    ) as demo:
        (failed,) = [s for s in demo.scorecard.faults if s.fault.kind == "integration_message_failed"]
        assert failed.detected
        # The integration team replays the message; the finance system accepts it.
        erp = create_engine(demo.erp.erp_url)
        with erp.begin() as conn:
            conn.execute(
                text("UPDATE integration_outbox SET status = 'sent', error = NULL WHERE id = :id"),
                {"id": int(failed.fault.entity["message_id"])},
            )
        erp.dispose()
        report = run_pipeline(demo.settings, demo.factory, load_checks(demo.settings.checks.packs))
        assert report.outcomes["resolved"] == 1
        with demo.factory() as session:
            statuses = {t.fingerprint: t.status for t in session.scalars(select(Ticket))}
        assert statuses[expected_fingerprint(failed.fault)] == "resolved"
        assert Counter(statuses.values()) == Counter({"resolved": 1, "new": 1})


def test_a_fault_free_erp_opens_no_tickets(tmp_path: Path) -> None:
    with demo_environment(tmp_path / "demo", faults=[], console=QUIET) as demo:
        assert demo.erp.faults == () and demo.erp.dual_run == ()
        assert demo.comparison is not None and demo.comparison.ok  # legacy and new agree
        failing = [(r.check_id, r.status, r.error) for r in demo.report.results if r.status != "pass"]
        assert failing == []
        with demo.factory() as session:
            assert score(session, ()).unexpected == []
            assert session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_hypercare_demo_once_from_the_command_line(tmp_path: Path) -> None:
    done = run_hypercare("demo", "--once", "--dir", str(tmp_path / "demo"), timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "faults detected" in done.stdout
    assert "unexpected tickets      │ 0" in done.stdout
    assert (tmp_path / "demo" / "erp" / "ground_truth.json").exists()


def test_demo_once_reports_failure_when_a_fault_goes_undetected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the check that catches negative stock, the demo must say so and return failure."""
    import hypercare.demo.run as demo_run

    def pack_without_stock_check(packs: list[str]) -> list[object]:
        return [c for c in load_checks(packs) if c.id != "inventory.negative_stock"]

    monkeypatch.setattr(demo_run, "load_checks", pack_without_stock_check)
    out = tmp_path / "out.txt"
    with out.open("w") as fh:
        ok = demo_run.run_demo(
            tmp_path / "demo",
            faults=["negative_stock", "duplicate_fapiao_number"],
            once=True,
            console=Console(file=fh, width=200),
        )
    assert ok is False
    shown = out.read_text()
    assert "negative_stock" in shown and "differ from the ground truth" in shown
