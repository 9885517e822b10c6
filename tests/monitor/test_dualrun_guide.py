"""The operator guide's worked dual-run example, run from the guide's own text: its MariaDB and PostgreSQL
SQL, its comparison file, and the outcome the guide describes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hypercare.cli import app as cli_app
from tests.monitor.dualrun_fixtures import load
from tests.servers import fresh_database

pytestmark = [pytest.mark.postgres, pytest.mark.mariadb]

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operator-guide.md"


def block(name: str) -> str:
    """The fenced block right after ``<!-- dualrun-example: NAME -->`` in the guide."""
    found = re.search(
        rf"<!-- dualrun-example: {re.escape(name)} -->\n```\w+\n(.*?)```",
        GUIDE.read_text(encoding="utf-8"),
        re.S,
    )
    assert found is not None, f"the operator guide has no example block {name}"
    return found.group(1)


def statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Path]:
    legacy_gen, new_gen = fresh_database("mariadb", tmp_path), fresh_database("postgres", tmp_path)
    legacy_url, new_url = next(legacy_gen), next(new_gen)
    load(legacy_url, statements(block("legacy.sql")))
    load(new_url, statements(block("new.sql")))
    path = tmp_path / "hypercare.yaml"
    path.write_text(
        f"database_url: 'sqlite:///{tmp_path / 'store.db'}'\ndata_dir: '{tmp_path}'\nsources:\n"
        f"  legacy_erp: {{url: '{legacy_url}', allow_privileged: true}}\n"
        f"  erp: {{url: '{new_url}', allow_privileged: true}}\n",
        encoding="utf-8",
    )
    yield path
    load(new_url, ["DROP TABLE invoice_line", "DROP TABLE invoice"])
    for gen in (legacy_gen, new_gen):
        for _ in gen:
            pass


def test_the_guides_worked_example_finds_what_the_guide_says(settings: Path, tmp_path: Path) -> None:
    comparison = tmp_path / "invoices.yaml"
    comparison.write_text(block("invoices.yaml"), encoding="utf-8")
    result = CliRunner().invoke(
        cli_app, ["--config", str(settings), "dualrun", "run", str(comparison), "--no-store", "--json"]
    )
    assert result.exit_code == 1, result.output
    (entity,) = json.loads(result.stdout)["entities"]
    assert entity["error"] is None
    assert (entity["matched"], entity["changed"], entity["missing_in_new"], entity["extra_in_new"]) == (
        2,
        2,
        0,
        0,
    )
    found = {s["key"]["number"]: s for s in entity["samples"]}
    assert sorted(found) == ["INV-3", "INV-4"]
    inv3 = found["INV-3"]  # posted 1 µs later, and one line's amount differs
    assert [(c["column"], c["legacy"], c["new"]) for c in inv3["columns"]] == [
        ("posted_at", "2026-11-03T00:00:00.000000", "2026-11-03T00:00:00.000001")
    ]
    amounts = {
        side: row["amount"]
        for line in inv3["lines"]
        for side in ("legacy_row", "new_row")
        if (row := line[side])
    }
    assert amounts == {"legacy_row": "80.00", "new_row": "85.00"}
    inv4 = found["INV-4"]
    assert (inv4["classification"], inv4["rule"]) == ("mapping", "mapping.unmapped_code")
    # the matched invoices (INV-1, INV-2): what each normalisation changed in them, per side
    assert entity["normalised"] == {
        "customer.trim": {"legacy": 1, "new": 0},
        "total.scale": {"legacy": 0, "new": 0},
        "posted_at.timezone": {"legacy": 2, "new": 0},
        "account.map": {"legacy": 2, "new": 0},
        "lines.amount.scale": {"legacy": 0, "new": 0},
    }
