"""`hypercare runbooks lint`: passes on the shipped set; fails clearly, naming the file and line, on broken
runbooks, unknown checks, uncovered signals, diagnostics that could write or use parameters events lack."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hypercare.cli import app
from monitor.checks import load_pack, shipped_packs
from monitor.volumes import load_volumes, parse_volumes
from runbooks.library import shipped_runbooks
from runbooks.lint import BUILTIN_SIGNALS, lint, read_only_problem
from tests.runbooks.factories import SECTIONS, runbook_markdown


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def messages(paths: list[Path]) -> list[str]:
    return [str(p) for p in lint(paths).problems]


def test_the_shipped_runbooks_pass_and_cover_every_check_and_signal() -> None:
    report = lint()
    assert report.ok, "\n".join(map(str, report.problems))
    assert report.checks == sum(len(load_pack(pack)) for pack in shipped_packs())
    assert report.signals == len(BUILTIN_SIGNALS) >= 20
    assert set(report.runbooks) == set(shipped_runbooks())


@pytest.fixture
def root_logging() -> Iterator[None]:
    """The CLI configures the root logger (handlers, level); put back what pytest had."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("root_logging")
def test_the_cli_gate_exits_zero_on_the_shipped_set_and_one_on_a_broken_file(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["runbooks", "lint"], env={"HYPERCARE_DATA_DIR": str(tmp_path)})
    assert ok.exit_code == 0, ok.output
    assert "runbooks lint: ok" in ok.output
    bad = write(
        tmp_path / "books",
        "gl-unbalanced-entries.md",
        runbook_markdown(runbook_id="gl-unbalanced-entries", applies="gl.unbalanced_entry"),
    )
    failed = runner.invoke(
        app, ["runbooks", "lint", str(bad.parent)], env={"HYPERCARE_DATA_DIR": str(tmp_path)}
    )
    assert failed.exit_code == 1
    assert f"{bad}:4: applies_to: no check, signal or alert is named 'gl.unbalanced_entry'" in failed.output
    missing = runner.invoke(app, ["runbooks", "lint", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such file or directory" in missing.output


BROKEN = {
    "unknown check": (
        runbook_markdown(applies="gl.no_such_check"),
        r"x\.md:4: applies_to: no check, signal or alert is named 'gl\.no_such_check'",
    ),
    "a write": (
        runbook_markdown(
            "diagnostics:\n  - name: fix_it\n    title: t\n    sql: DELETE FROM journal_line\n",
            applies="gl.unbalanced_entries",
        ),
        r"x\.md:11: diagnostic fix_it: SQL must be a single SELECT \(or WITH \.\.\. SELECT\) statement, not DELETE",
    ),
    "two statements": (
        runbook_markdown(
            "diagnostics:\n  - name: two\n    title: t\n    sql: SELECT 1; DROP TABLE account\n",
            applies="gl.unbalanced_entries",
        ),
        r"x\.md:11: diagnostic two: SQL must be one statement \(found ';'\)",
    ),
    "a parameter the event lacks": (
        runbook_markdown(
            "diagnostics:\n  - name: p\n    title: t\n    sql: SELECT 1 AS one WHERE :m = 'x'\n"
            "    params: {m: entity.move_id}\n",
            applies="gl.unbalanced_entries",
        ),
        r"x\.md:11: diagnostic p: parameter m: entity\.move_id is not in the events of gl\.unbalanced_entries",
    ),
    "an undeclared parameter": (
        runbook_markdown(
            "diagnostics:\n  - name: u\n    title: t\n    sql: SELECT 1 AS one WHERE :entry = 'x'\n",
            applies="gl.unbalanced_entries",
        ),
        r"x\.md:11: diagnostic u: SQL uses :entry but params does not declare it",
    ),
    "an evidence column the check does not return": (
        runbook_markdown(
            "diagnostics:\n  - name: c\n    title: t\n    sql: SELECT 1 AS one WHERE :c = 'x'\n"
            "    params: {c: evidence.row.no_such_column}\n",
            applies="gl.unbalanced_entries",
        ),
        r"parameter c: evidence\.row\.no_such_column is not in the events",
    ),
    "an http write": (
        runbook_markdown(
            "diagnostics:\n  - name: h\n    title: t\n    http: POST /api/reset\n", applies="probe.*"
        ),
        r"x\.md:11: field 'diagnostics': entry 1 \(h\): http must read 'GET /path' or 'HEAD /path'",
    ),
    "no vendor contact": (
        runbook_markdown(applies="gl.unbalanced_entries").replace(
            '  vendor_contact: "<vendor: contract, phone>"\n', ""
        ),
        r"x\.md:7: field 'escalation': add vendor_contact",
    ),
    "an unknown verification check": (
        runbook_markdown("verification: {check: gl.nope}\n", applies="gl.unbalanced_entries"),
        r"x\.md:10: field 'verification': check 'gl\.nope' does not exist",
    ),
    "sections out of order": (
        runbook_markdown(applies="gl.unbalanced_entries").replace("## Fix", "## Fixx"),
        r"x\.md:\d+: unknown section '## Fixx'",
    ),
}


@pytest.mark.parametrize(("text", "expected"), BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_runbook_fails_naming_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, "x.md", text.replace("id: shop-unbalanced-entries", "id: x"))
    found = messages([tmp_path])
    assert any(re.search(expected, m) for m in found), found
    assert all(m.startswith(str(path)) for m in found if "x.md" in m)


def test_a_user_runbook_overrides_the_shipped_one_and_coverage_follows_it(tmp_path: Path) -> None:
    # the user's host-disk-usage applies to something else: the disk signal is left without a runbook
    write(
        tmp_path, "host-disk-usage.md", runbook_markdown(runbook_id="host-disk-usage", applies="host.memory")
    )
    report = lint([tmp_path])
    assert report.runbooks["host-disk-usage"].path == tmp_path / "host-disk-usage.md"
    assert [str(p) for p in report.problems] == ["runbooks: built-in signal 'host disk' has no runbook"]


def test_a_check_without_a_runbook_is_named(tmp_path: Path) -> None:
    from monitor.checks import parse_checks

    (spec,) = parse_checks(
        "checks:\n  - {id: shop.orphans, title: t, source: erp, sql: SELECT 1 AS id, category: process,"
        " severity: P3, key_columns: [id]}\n",
        "shop.yaml",
        pack="shop",
    )
    report = lint(checks=[spec])
    assert [str(p) for p in report.problems] == ["shop: check shop.orphans has no runbook"]


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("SELECT a FROM t WHERE b = :b", None),
        ("WITH x AS (SELECT 1 AS a) SELECT a FROM x", None),
        ("SELECT 1 UNION ALL SELECT 2", None),
        ("SELECT * FROM journal_line FOR UPDATE", "FOR UPDATE / FOR SHARE"),
        ("SELECT a INTO copy FROM t", "INTO"),
        ("SELECT nextval('seq')", "nextval"),
        ("SELECT pg_terminate_backend(42)", "pg_terminate_backend"),
        ("SELECT * FROM dblink_exec('dbname=erp', 'DELETE FROM t') AS t(s text)", "calls dblink_exec()"),
        ("SELECT pg_read_file('/etc/passwd')", "calls pg_read_file()"),
        ("UPDATE t SET a = 1", "UPDATE"),
        ("WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone", "DELETE"),
        ("SELEC 1 FROM", "is not SQL any supported engine can read"),
    ],
)
def test_read_only_means_one_select_and_nothing_that_writes(sql: str, problem: str | None) -> None:
    found = read_only_problem(sql)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found, found


def test_every_section_is_in_the_sample(tmp_path: Path) -> None:
    text = runbook_markdown()
    assert [line[3:] for line in text.splitlines() if line.startswith("## ")] == list(SECTIONS)


def test_every_volume_watch_names_a_runbook_that_applies_to_it() -> None:
    report = lint()
    assert report.watches == len(load_volumes(shipped_packs())) >= 10
    (watch,) = parse_volumes(
        "volumes:\n  - {id: my.volume.orders, title: Orders, source: erp, bucket: day, measures: [count],\n"
        "     sql: 'SELECT d AS bucket, 1 AS count FROM t', runbook: no-such-runbook}\n",
        "mine.yaml",
        pack="mine",
    )
    assert [str(p) for p in lint(volumes=[watch]).problems] == [
        "mine: volume watch my.volume.orders names runbook 'no-such-runbook', which does not exist"
    ]
    elsewhere = watch.model_copy(update={"runbook": "business-volume-invoices"})
    (problem,) = lint(volumes=[elsewhere]).problems
    assert "applies_to misses my.volume.orders, whose volume watch names this runbook" in str(problem)
