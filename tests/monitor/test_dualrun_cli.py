"""`hypercare dualrun run` / `hypercare dualrun report` end to end on two SQLite sources, and --as-of periods.

The CLI runs in-process through typer's CliRunner (fast); the one-line error for a bad comparison file goes
through the real entry point in a subprocess, because that is where errors become one line and an exit code.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from hypercare.cli import app as cli_app
from monitor.dualrun.model import ComparisonConfig
from monitor.dualrun.runner import run_comparison
from tests.monitor.dualrun_fixtures import ENGINES, load, source
from tests.servers import fresh_database

ROOT = Path(__file__).resolve().parents[2]

Row = tuple[int, str, str, str]
"""(id, account, amount, posting_date)"""


def ledger_rows() -> list[Row]:
    """12 rows: ids 1-6 posted in November 2026, ids 7-12 in December 2026."""
    return [
        (i, f"{4000 + i % 3}", f"{i * 10}.50", f"2026-{11 if i <= 6 else 12}-{(i % 6) + 1:02d}")
        for i in range(1, 13)
    ]


def planted(rows: list[Row]) -> list[Row]:
    """The new copy: in November id 2 changed and id 3 missing; in December id 8 changed, id 13 extra."""
    new = [r for r in rows if r[0] != 3]
    new = [(i, a, "999.00" if i in {2, 8} else m, d) for i, a, m, d in new]
    return [*new, (13, "4001", "1.00", "2026-12-20")]


def write_db(path: Path, rows: list[Row]) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE ledger (id integer PRIMARY KEY, account text, amount numeric, posting_date text)"
        )
        conn.executemany("INSERT INTO ledger VALUES (?, ?, ?, ?)", rows)
    conn.close()
    return f"sqlite:///{path}"


COMPARISON = """\
name: cutover
legacy: legacy_db
new: new_db
entities:
  - name: ledger
    legacy: {table: ledger}
    new: {table: ledger}
    key: [{name: id, type: integer}]
    columns:
      - account
      - {name: amount, type: decimal, scale: 2, money: true}
      - {name: posting_date, type: date}
    period: {column: posting_date, grain: month}
"""


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Path]:
    """Settings naming the two SQLite sources, a differing pair, an equal pair and the comparison file."""
    rows = ledger_rows()
    legacy = write_db(tmp_path / "legacy.db", rows)
    new = write_db(tmp_path / "new.db", planted(rows))
    same = write_db(tmp_path / "same.db", rows)
    settings = tmp_path / "hypercare.yaml"
    settings.write_text(
        f"database_url: 'sqlite:///{tmp_path / 'store.db'}'\ndata_dir: '{tmp_path}'\n"
        f"sources:\n  legacy_db: {{url: '{legacy}'}}\n  new_db: {{url: '{new}'}}\n"
        f"  same_db: {{url: '{same}'}}\n",
        encoding="utf-8",
    )
    differing = tmp_path / "cutover.yaml"
    differing.write_text(COMPARISON, encoding="utf-8")
    equal = tmp_path / "equal.yaml"
    equal.write_text(COMPARISON.replace("new: new_db", "new: same_db"), encoding="utf-8")
    return {"settings": settings, "differing": differing, "equal": equal, "dir": tmp_path}


def _invoke(settings: Path, *args: str) -> Any:
    result = CliRunner().invoke(cli_app, ["--config", str(settings), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def _entity(data: dict[str, Any]) -> dict[str, Any]:
    (entity,) = data["entities"]
    return entity  # type: ignore[no-any-return]


def _counts(row: dict[str, Any]) -> tuple[int, int, int, int]:
    """(matched, changed, missing in new, extra in new) of a JSON entity or a CSV line."""
    names = ("matched", "changed", "missing_in_new", "extra_in_new")
    return tuple(int(row[n]) for n in names)  # type: ignore[return-value]


def test_run_json_and_output_report_the_planted_differences_and_exit_1(setup: dict[str, Path]) -> None:
    out = setup["dir"] / "result.json"
    result = _invoke(
        setup["settings"],
        "dualrun",
        "run",
        str(setup["differing"]),
        "--no-store",
        "--json",
        "--output",
        str(out),
    )
    assert result.exit_code == 1, result.output
    printed = json.loads(result.stdout)
    entity = _entity(printed)
    assert _counts(entity) == (9, 2, 1, 1)
    assert entity["error"] is None and entity["period"] is None
    by_kind = {s["kind"]: s["key"]["id"] for s in entity["samples"] if s["kind"] != "changed"}
    assert by_kind == {"missing_in_new": "3", "extra_in_new": "13"}
    assert sorted(s["key"]["id"] for s in entity["samples"] if s["kind"] == "changed") == ["2", "8"]
    assert json.loads(out.read_text(encoding="utf-8")) == printed  # --output writes what --json prints
    assert printed["legacy_source"] == "legacy_db" and printed["new_source"] == "new_db"


def test_run_json_that_stores_the_run_keeps_stdout_for_the_json(setup: dict[str, Path]) -> None:
    assert _invoke(setup["settings"], "db", "upgrade").exit_code == 0
    result = _invoke(setup["settings"], "dualrun", "run", str(setup["differing"]), "--json")
    assert result.exit_code == 1, result.output
    printed = json.loads(result.stdout)  # nothing but the JSON: the store's summary went to stderr
    assert "stored run" in result.stderr and "ticket(s) opened" in result.stderr
    assert _counts(_entity(printed)) == (9, 2, 1, 1)
    assert datetime.fromisoformat(printed["started_at"]).utcoffset() == timedelta(0)
    assert isinstance(_entity(printed)["money_affected"], str)
    table = _invoke(setup["settings"], "dualrun", "run", str(setup["differing"]))
    assert table.exit_code == 1 and "stored run" in table.stdout  # the table form: unchanged


def test_run_on_equal_sources_exits_0_with_a_table(setup: dict[str, Path]) -> None:
    result = _invoke(setup["settings"], "dualrun", "run", str(setup["equal"]), "--no-store")
    assert result.exit_code == 0, result.output
    assert "Dual run cutover: legacy_db -> same_db" in result.stdout
    assert re.search(r"│ ledger │ rows │ +12 │ +0 │ +0 │ +0 │", result.stdout), result.stdout


def test_report_renders_a_result_file_as_json_csv_and_table(setup: dict[str, Path]) -> None:
    out = setup["dir"] / "result.json"
    run = _invoke(
        setup["settings"], "dualrun", "run", str(setup["differing"]), "--no-store", "--output", str(out)
    )
    assert run.exit_code == 1
    written = json.loads(out.read_text(encoding="utf-8"))

    as_json = _invoke(setup["settings"], "dualrun", "report", "--input", str(out), "--format", "json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == written

    as_csv = _invoke(setup["settings"], "dualrun", "report", "--input", str(out), "--format", "csv")
    assert as_csv.exit_code == 0
    (line,) = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert (line["comparison"], line["entity"], line["kind"]) == ("cutover", "ledger", "rows")
    assert _counts(line) == (9, 2, 1, 1)
    assert float(line["match_rate"]) == pytest.approx(9 / 13)
    assert line["error"] == ""

    as_table = _invoke(setup["settings"], "dualrun", "report", "--input", str(out), "--format", "table")
    assert as_table.exit_code == 0
    assert "ledger: differences (4 of 4)" in as_table.stdout
    assert re.search(r"│ ledger │ rows │ +9 │ +2 │ +1 │ +1 │", as_table.stdout), as_table.stdout
    assert re.search(r"│ id=2 +│ changed +│ defect │ amount: '20.50' -> '999.00' │ 978.50 │", as_table.stdout)
    assert re.search(r"│ id=3 +│ missing_in_new │", as_table.stdout)


def test_the_table_never_cuts_a_long_key_or_value(setup: dict[str, Path]) -> None:
    long_key = "DOC-" + "x" * 150 + "-END"
    for name in ("legacy.db", "new.db"):
        with sqlite3.connect(setup["dir"] / name) as conn:
            conn.execute("CREATE TABLE docs (doc text PRIMARY KEY, note text)")
            conn.execute(
                "INSERT INTO docs VALUES (?, ?)", (long_key, "a" * 120 + ("" if name == "new.db" else " "))
            )
        conn.close()
    cfg = setup["dir"] / "docs.yaml"
    cfg.write_text(
        "name: docs\nlegacy: legacy_db\nnew: new_db\nentities:\n  - name: docs\n    legacy: {table: docs}\n"
        "    new: {table: docs}\n    key: [doc]\n    columns: [note]\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        cli_app,
        ["--config", str(setup["settings"]), "dualrun", "run", str(cfg), "--no-store"],
        env={"COLUMNS": "80"},
    )
    assert result.exit_code == 1, result.output
    unfolded = "".join(line.strip("│ ") for line in result.stdout.splitlines())
    assert long_key.replace("-", "") in unfolded.replace("│", "").replace(" ", "").replace("-", "")
    assert "key-hash buckets (slower" in " ".join(result.stdout.split())  # a text key: says why it is slower


def test_report_of_a_file_that_is_not_a_result_is_one_clear_error(setup: dict[str, Path]) -> None:
    bogus = setup["dir"] / "bogus.json"
    bogus.write_text('{"hello": 1}', encoding="utf-8")
    result = CliRunner().invoke(
        cli_app, ["--config", str(setup["settings"]), "dualrun", "report", "-i", str(bogus)]
    )
    assert result.exception is not None
    assert str(result.exception) == f"{bogus}: not a dual-run result ('comparison')"


def test_as_of_restricts_the_run_to_that_month(setup: dict[str, Path]) -> None:
    base = ["dualrun", "run", str(setup["differing"]), "--no-store", "--json"]
    november = _invoke(setup["settings"], *base, "--as-of", "2026-11-15")
    assert november.exit_code == 1
    data = json.loads(november.stdout)
    entity = _entity(data)
    assert data["as_of"] == "2026-11-15" and entity["period"] == "2026-11"
    # ids 1-6 only: 2 changed, 3 missing; December's changed id 8 and extra id 13 are out of the period
    assert _counts(entity) == (4, 1, 1, 0)
    assert (entity["rows_legacy"], entity["rows_new"]) == (6, 5)

    bad = CliRunner().invoke(cli_app, ["--config", str(setup["settings"]), *base, "--as-of", "15/11/2026"])
    assert str(bad.exception) == "--as-of '15/11/2026' is not a date (YYYY-MM-DD)"


def test_a_bad_comparison_file_is_one_line_naming_file_entity_and_field(setup: dict[str, Path]) -> None:
    bad = setup["dir"] / "bad.yaml"
    bad.write_text(COMPARISON.replace("type: decimal, scale: 2", "type: text, scale: 2"), encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hypercare",
            "--config",
            str(setup["settings"]),
            "dualrun",
            "run",
            str(bad),
            "--no-store",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"error: {bad}: entity ledger: field 'columns.")
    assert "scale" in lines[0]


# --- periods on the database engines (dates bound as parameters differ per driver) ---------------------


@pytest.mark.parametrize("kind", ENGINES)
def test_day_and_month_periods_filter_rows_on_every_engine(kind: str, tmp_path: Path) -> None:
    """The same planted pair on one engine: --as-of a day, a month, and a month with nothing in it."""
    database = fresh_database(kind, tmp_path)
    url = next(database)
    try:
        rows = ledger_rows()
        date_type = "text" if kind == "sqlite" else "date"
        ddl = "(id integer PRIMARY KEY, account varchar(10), amount decimal(10,2), posting_date {t})"
        values = ", ".join(f"({i}, '{a}', {m}, '{d}')" for i, a, m, d in rows)
        new_values = ", ".join(f"({i}, '{a}', {m}, '{d}')" for i, a, m, d in planted(rows))
        load(
            url,
            [
                f"CREATE TABLE legacy_ledger {ddl.format(t=date_type)}",
                f"CREATE TABLE new_ledger {ddl.format(t=date_type)}",
                f"INSERT INTO legacy_ledger VALUES {values}",
                f"INSERT INTO new_ledger VALUES {new_values}",
            ],
        )
        text = COMPARISON.replace("legacy: {table: ledger}", "legacy: {table: legacy_ledger}").replace(
            "new: {table: ledger}", "new: {table: new_ledger}"
        )
        month = ComparisonConfig.model_validate(yaml.safe_load(text))
        day = ComparisonConfig.model_validate(yaml.safe_load(text.replace("grain: month", "grain: day")))
        legacy, new = source("legacy", url), source("new", url)
        try:
            (dec,) = run_comparison(month, legacy, new, as_of=date(2026, 12, 31)).entities
            # December: ids 7-12 legacy; 8 changed, 13 extra
            assert (dec.period, dec.matched, dec.changed, dec.missing_in_new, dec.extra_in_new) == (
                "2026-12",
                5,
                1,
                0,
                1,
            )
            # id 2 is posted on 2026-11-03, alone that day: changed
            (one,) = run_comparison(day, legacy, new, as_of=date(2026, 11, 3)).entities
            assert (one.period, one.matched, one.changed, one.rows_legacy, one.rows_new) == (
                "2026-11-03",
                0,
                1,
                1,
                1,
            )
            (empty,) = run_comparison(month, legacy, new, as_of=date(2027, 1, 1)).entities
            assert (empty.error, empty.matched, empty.differences, empty.period) == (None, 0, 0, "2027-01")
            (everything,) = run_comparison(month, legacy, new).entities
            assert (everything.period, everything.matched, everything.differences) == (None, 9, 4)
        finally:
            legacy.engine.dispose()
            new.engine.dispose()
    finally:
        database.close()  # drops the database
