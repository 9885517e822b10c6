"""`hypercare check run` and `hypercare check trace` as a user meets them: a real process on the demo ERP."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from hypercare.demo.builder import DemoErp
from tests.cli import run_hypercare
from tests.demo_erp import DemoErpFactory, sources_of, write_config

TRACE = [
    {
        "name": "erp-outbox",
        "source": "erp",
        "sql": "SELECT id AS message_id, status FROM integration_outbox WHERE doc_ref = :key",
    },
    {
        "name": "finance-inbox",
        "source": "finance",
        "sql": "SELECT source_message_id AS message_id, amount FROM finance_inbox WHERE doc_ref = :key",
    },
]


def run(*args: str, config: Path, columns: str = "250") -> subprocess.CompletedProcess[str]:
    return run_hypercare("--config", str(config), *args, cwd=config.parent, env={"COLUMNS": columns})


def config_for(demo: DemoErp) -> Path:
    """hypercare.yaml next to the demo ERP's databases, pointing at them, with the trace collector."""
    folder = demo.directory
    return write_config(
        folder, data_dir=str(folder / "data"), sources=sources_of(demo), collectors={"trace": TRACE}
    )


@pytest.fixture(scope="module")
def faulty(demo_erp: DemoErpFactory) -> Path:
    return config_for(demo_erp("faulty", scale=0.02))


@pytest.fixture(scope="module")
def clean(demo_erp: DemoErpFactory) -> Path:
    return config_for(demo_erp("clean", scale=0.02, faults=[]))


def test_faulty_erp_fails_with_exit_1_and_json_results(faulty: Path) -> None:
    done = run("check", "run", "--pack", "demo_erp", "--json", config=faulty)
    assert done.returncode == 1, done.stderr
    results = json.loads(done.stdout)  # stdout is only JSON: the progress bar went to stderr
    by_id = {r["check_id"]: r for r in results}
    assert by_id["gl.unbalanced_entries"]["status"] == "fail"
    assert by_id["gl.unbalanced_entries"]["violations"] >= 1
    assert by_id["integration.stuck_messages"]["status"] == "fail"
    assert {r["status"] for r in results} <= {"pass", "warn", "fail"}
    assert all(r["source"] == "erp" and r["duration_s"] >= 0 for r in results)
    for r in results:  # datetimes ISO-8601 with their zone, money as an exact decimal string
        assert datetime.fromisoformat(r["started_at"]).utcoffset() == timedelta(0)
        assert datetime.fromisoformat(r["finished_at"]) >= datetime.fromisoformat(r["started_at"])
        assert r["amount_at_risk"] is None or Decimal(r["amount_at_risk"]) >= 0
    assert isinstance(by_id["gl.unbalanced_entries"]["amount_at_risk"], str)
    table = run("check", "run", "--pack", "demo_erp", config=faulty)
    assert table.returncode == done.returncode  # the same exit status as the table


def test_check_list_json_is_one_object_per_configured_check(faulty: Path) -> None:
    done = run("check", "list", "--pack", "demo_erp", "--json", config=faulty)
    assert done.returncode == 0, done.stderr
    checks = json.loads(done.stdout)
    table = run("check", "list", "--pack", "demo_erp", config=faulty).stdout
    assert checks and all(c["id"] in table for c in checks)
    unbalanced = next(c for c in checks if c["id"] == "gl.unbalanced_entries")
    assert set(unbalanced) == {
        "id", "title", "severity", "category", "kind", "source", "sources", "pack", "schedule", "runbook",
        "owner", "tags",
    }  # fmt: skip
    assert unbalanced["source"] == "erp" and unbalanced["sources"] == ["erp"]
    assert unbalanced["pack"] == "demo_erp" and unbalanced["severity"] in {"P1", "P2", "P3", "P4"}


def test_tables_piped_to_a_script_keep_long_ids_whole(tmp_path: Path) -> None:
    """Off a terminal rich would squeeze a table into 80 columns, folding and ellipsizing the id."""
    long_id = "finance.reconciliation.open_items_between_the_legacy_subledger_and_the_new_general_ledger"
    title = "Open items of the legacy subledger that have no counterpart in the new general ledger at all"
    (tmp_path / "checks.yaml").write_text(
        yaml.safe_dump(
            {
                "checks": [
                    {"id": long_id, "title": title, "source": "erp", "sql": "SELECT 1 AS x WHERE 1 = 0",
                     "category": "data", "severity": "P2"}
                ]
            }
        ),
        encoding="utf-8",
    )  # fmt: skip
    config = tmp_path / "hypercare.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp_path / "data"),
                "sources": {"erp": {"url": f"sqlite:///{tmp_path / 'erp.db'}"}},
                "checks": {"packs": [], "paths": [str(tmp_path / "checks.yaml")]},
            }
        ),
        encoding="utf-8",
    )
    done = run("check", "list", config=config, columns="80")
    assert done.returncode == 0, done.stderr
    assert long_id in done.stdout and title in done.stdout
    assert "…" not in done.stdout
    (row,) = [line for line in done.stdout.splitlines() if long_id in line]  # one line per row
    assert title in row


def test_clean_erp_passes_with_exit_0_and_a_table(clean: Path) -> None:
    done = run("check", "run", "--pack", "demo_erp", config=clean)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gl.unbalanced_entries" in done.stdout and "0 fail, 0 error" in done.stdout


def test_one_check_by_id_and_source(faulty: Path) -> None:
    done = run(
        "check", "run", "--pack", "demo_erp", "--source", "erp", "--check", "gl.unbalanced_entries", "--json",
        config=faulty,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert [r["check_id"] for r in json.loads(done.stdout)] == ["gl.unbalanced_entries"]


def test_unreachable_source_is_an_error_with_exit_4(tmp_path: Path, faulty: Path) -> None:
    config = yaml.safe_load(faulty.read_text(encoding="utf-8"))
    config["sources"]["erp"]["url"] = f"sqlite:///{tmp_path / 'gone.db'}"
    path = tmp_path / "gone.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    done = run("check", "run", "--pack", "demo_erp", "--check", "gl.unbalanced_entries", config=path)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "error" in done.stdout and "does not exist" in done.stdout


def test_no_matching_check_is_a_clear_error(faulty: Path) -> None:
    done = run("check", "run", "--pack", "demo_erp", "--check", "no.such.check", config=faulty)
    assert done.returncode == 1
    assert "no configured check matches --check 'no.such.check'" in done.stderr
    assert "Traceback" not in done.stderr


def test_trace_shows_a_document_in_both_systems(faulty: Path) -> None:
    erp = sqlite3.connect(faulty.parent / "erp.db")
    (sent,) = erp.execute(
        "SELECT doc_ref FROM integration_outbox WHERE status = 'sent' ORDER BY id"
    ).fetchone()
    erp.close()
    done = run("check", "trace", sent, "--json", config=faulty)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["trace"] for r in rows] == ["erp-outbox", "finance-inbox"]
    assert rows[0]["message_id"] == rows[1]["message_id"]
    table = run("check", "trace", "NO/SUCH/DOC", config=faulty)
    assert table.returncode == 0 and table.stdout.count("not found") == 2
