"""`hypercare dualrun init` writes a complete comparison file from a MariaDB legacy and a PostgreSQL new table,
and `dualrun run` runs it as written: exit 0 when the same, 1 on a difference, 2 on an error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from hypercare.cli import app as cli_app
from monitor.dualrun.model import ComparisonConfig
from monitor.dualrun.scaffold import TableColumn, TableSchema, comparison_yaml
from tests.monitor.dualrun_fixtures import load
from tests.servers import fresh_database

ENGINES = [pytest.mark.postgres, pytest.mark.mariadb]

ROWS = ", ".join(
    f"({i}, '{4000 + i % 3}', {i}.25, '2026-11-02 08:00:00.{i:06d}', 'memo {i}')" for i in range(1, 51)
)


@pytest.fixture
def sources(tmp_path: Path) -> Iterator[Path]:
    legacy_gen, new_gen = fresh_database("mariadb", tmp_path), fresh_database("postgres", tmp_path)
    legacy_url, new_url = next(legacy_gen), next(new_gen)
    load(
        legacy_url,
        [
            "CREATE TABLE gl_line (id int PRIMARY KEY, acct varchar(10), amount decimal(12,2),"
            " posted datetime(6), memo varchar(40))",
            f"INSERT INTO gl_line VALUES {ROWS}",
        ],
    )
    load(
        new_url,
        [
            "CREATE TABLE journal_line (id bigint PRIMARY KEY, account text, amount numeric(12,2),"
            " posted timestamp, memo text, created_by text)",
            f"INSERT INTO journal_line (id, account, amount, posted, memo) VALUES {ROWS}",
        ],
    )
    settings = tmp_path / "hypercare.yaml"
    settings.write_text(
        f"database_url: 'sqlite:///{tmp_path / 'store.db'}'\ndata_dir: '{tmp_path}'\n"
        f"sources:\n  legacy: {{url: '{legacy_url}', allow_privileged: true}}\n"
        f"  erp: {{url: '{new_url}', allow_privileged: true}}\n",
        encoding="utf-8",
    )
    yield settings
    load(new_url, ["DROP TABLE journal_line"])
    for gen in (legacy_gen, new_gen):
        for _ in gen:
            pass


def _invoke(settings: Path, *args: str) -> Any:
    return CliRunner().invoke(cli_app, ["--config", str(settings), *args])


@ENGINES[0]
@ENGINES[1]
def test_init_writes_a_file_that_runs_and_finds_a_planted_difference(sources: Path, tmp_path: Path) -> None:
    out = tmp_path / "gl.yaml"
    init = _invoke(sources, "dualrun", "init", "gl_line", "journal_line", "--output", str(out))
    assert init.exit_code == 0, init.output
    text = out.read_text(encoding="utf-8")
    assert "key: [{name: id, type: integer}]" in text
    assert "- {name: account, legacy: acct}  # guessed: acct (VARCHAR(10)) -> account" in text
    assert "- {name: amount, type: decimal, scale: 2}" in text
    assert "- {name: posted, type: timestamp}" in text
    assert "only in the new table, not compared: created_by (TEXT)" in text
    assert "trim: true" in text  # offered in a comment, not switched on
    same = _invoke(sources, "dualrun", "run", str(out), "--no-store", "--json")
    assert same.exit_code == 0, same.output
    (entity,) = json.loads(same.stdout)["entities"]
    assert (entity["matched"], entity["plan"]) == (50, "key ranges on id")

    settings_text = sources.read_text(encoding="utf-8")
    new_url = settings_text.split("erp: {url: '")[1].split("'")[0]
    load(new_url, ["UPDATE journal_line SET posted = posted + interval '1 microsecond' WHERE id = 9"])
    differs = _invoke(sources, "dualrun", "run", str(out), "--no-store")
    assert differs.exit_code == 1, differs.output
    assert "2026-11-02T08:00:00.000009" in differs.stdout and "2026-11-02T08:00:00.000010" in differs.stdout


@ENGINES[0]
@ENGINES[1]
def test_errors_exit_2_and_help_names_where_sources_come_from(sources: Path, tmp_path: Path) -> None:
    # (in-process the entry point's exit code is the error's: hypercare.cli.main exits with it)
    missing = _invoke(sources, "dualrun", "init", "no_such_table", "journal_line").exception
    assert missing.exit_code == 2 and "table no_such_table not found" in str(missing)
    unknown = _invoke(sources, "dualrun", "init", "gl_line", "journal_line", "--new", "nope").exception
    assert unknown.exit_code == 2 and "source 'nope' is not under 'sources:'" in str(unknown)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nlegacy: legacy\nnew: erp\nentities:\n  - name: e\n    legacy: {table: gl_line}\n"
        "    new: {table: no_such_table}\n    key: [id]\n",
        encoding="utf-8",
    )
    failed = _invoke(sources, "dualrun", "run", str(bad), "--no-store")
    assert failed.exit_code == 2, failed.output  # an entity that could not be compared
    helped = CliRunner().invoke(cli_app, ["dualrun", "run", "--help"], env={"COLUMNS": "200"})
    assert "global --config" in helped.stdout.replace("\n", " ")
    assert "0 every entity is the same; 1 differences found; 2 error" in " ".join(helped.stdout.split())


def test_init_never_rounds_a_decimal_without_a_stored_scale_and_pairs_close_names() -> None:
    legacy = TableSchema(
        "inv_head",
        (TableColumn("inv_no", "text", None, "VARCHAR(12)"), TableColumn("tot", "decimal", None, "NUMERIC"),
         TableColumn("cust_name", "text", None, "VARCHAR(30)")),
        ("inv_no",),
    )  # fmt: skip
    new = TableSchema(
        "invoice",
        (TableColumn("inv_no", "text", None, "TEXT"), TableColumn("total", "decimal", None, "NUMERIC"),
         TableColumn("customer_name", "text", None, "TEXT")),
        ("inv_no",),
    )  # fmt: skip
    text = comparison_yaml("invoices", "legacy", "erp", legacy, new, "invoice")
    assert "- {name: total, legacy: tot, type: decimal}" in text
    assert "no stored scale: compared at 2 places, set scale" in text
    assert (
        "- {name: customer_name, legacy: cust_name}  # guessed: cust_name (VARCHAR(30)) -> customer_name"
        in text
    )
    assert "not an integer leading key: compared by key-hash buckets (slower)" in text
    entity = ComparisonConfig.model_validate(yaml.safe_load(text)).entities[0]  # a valid comparison file
    assert [c.name for c in entity.key] == ["inv_no"] and entity.sample_limit == 1000
