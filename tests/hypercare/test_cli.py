"""The CLI as a user meets it: a real process, its exit status and what it prints."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from core.schema import head_revision
from tests.cli import run_hypercare


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return run_hypercare(*args, cwd=cwd, env=env, stdin=stdin)


def test_config_check_shows_settings_with_secrets_redacted(tmp_path: Path) -> None:
    (tmp_path / "hypercare.yaml").write_text(
        "sources: {erp: {url: 'postgresql+psycopg://monitor:hunter2@erp-db/erp'}}\n"
        "notifications: {targets: [{url: 'json://hooks.example/x?token=abc123'}]}\n",
        encoding="utf-8",
    )
    done = run_hypercare("config", "check", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "monitor:***@erp-db" in done.stdout
    assert "hunter2" not in done.stdout + done.stderr
    assert "abc123" not in done.stdout + done.stderr


def test_bad_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("server: {port: lots}\n", encoding="utf-8")
    done = run_hypercare("--config", str(tmp_path / "bad.yaml"), "config", "check", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "bad.yaml: key 'server.port'" in lines[0]
    assert "Traceback" not in done.stderr


def test_config_from_environment_variable(tmp_path: Path) -> None:
    (tmp_path / "env.yaml").write_text("server: {port: 9999}\n", encoding="utf-8")
    done = run_hypercare(
        "config", "check", cwd=tmp_path, env={"HYPERCARE_CONFIG": str(tmp_path / "env.yaml")}
    )
    assert done.returncode == 0, done.stderr
    assert "http://127.0.0.1:9999" in done.stdout


def test_unmigrated_store_is_refused_with_the_fix(tmp_path: Path) -> None:
    done = run_hypercare("collect", cwd=tmp_path, env={"HYPERCARE_DATA_DIR": str(tmp_path / "data")})
    assert done.returncode == 3
    assert "has no schema" in done.stderr and "hypercare db upgrade" in done.stderr
    assert "Traceback" not in done.stderr


def test_unreachable_store_is_a_clear_error(tmp_path: Path) -> None:
    url = "postgresql+psycopg://hc:s3cret@127.0.0.1:1/hc?connect_timeout=2"
    done = run_hypercare("db", "upgrade", cwd=tmp_path, env={"HYPERCARE_DATABASE_URL": url})
    assert done.returncode == 3
    assert "unreachable" in done.stderr
    assert "s3cret" not in done.stderr
    assert "Traceback" not in done.stderr


def test_db_upgrade_then_current(tmp_path: Path) -> None:
    env = {"HYPERCARE_DATA_DIR": str(tmp_path / "data")}
    assert run_hypercare("db", "current", cwd=tmp_path, env=env).returncode == 1
    up = run_hypercare("db", "upgrade", cwd=tmp_path, env=env)
    assert up.returncode == 0, up.stderr
    current = run_hypercare("db", "current", cwd=tmp_path, env=env)
    assert current.returncode == 0
    assert f"store revision: {head_revision()}" in current.stdout


def test_users_and_tokens_from_the_cli(tmp_path: Path) -> None:
    env = {"HYPERCARE_DATA_DIR": str(tmp_path / "data")}
    assert run_hypercare("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    made = run_hypercare(
        "users",
        "create",
        "alice",
        "--role",
        "agent",
        "--password-stdin",
        cwd=tmp_path,
        env=env,
        stdin="correct horse battery\n",
    )
    assert made.returncode == 0, made.stderr
    again = run_hypercare(
        "users", "create", "alice", "--password-stdin", cwd=tmp_path, env=env, stdin="whatever123\n"
    )
    assert again.returncode == 1 and "alice" in again.stderr
    token = run_hypercare("users", "token", "alice", cwd=tmp_path, env=env)
    assert token.returncode == 0 and len(token.stdout.strip()) >= 32
    nobody = run_hypercare("users", "token", "bob", cwd=tmp_path, env=env)
    assert nobody.returncode == 1 and "no user named 'bob'" in nobody.stderr


@pytest.mark.parametrize("args", [["check", "validate"], ["check", "list"]])
def test_check_commands_on_a_broken_check_file(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "mine.yaml").write_text("checks:\n  - id: Bad Id\n", encoding="utf-8")
    (tmp_path / "hypercare.yaml").write_text(
        f"checks: {{packs: [], paths: [{tmp_path / 'checks'}]}}\n", encoding="utf-8"
    )
    done = run_hypercare(*args, cwd=tmp_path)
    assert done.returncode == 1
    assert "mine.yaml: check Bad Id: field 'id'" in done.stderr


@pytest.mark.parametrize(
    "args", [["demo", "--once", "--faults", "nope"], ["demo-erp", "build", "x", "--faults", "nope"]]
)
def test_unknown_fault_kind_is_a_clear_error(tmp_path: Path, args: list[str]) -> None:
    done = run_hypercare(*args, cwd=tmp_path)
    assert done.returncode == 1
    assert "unknown fault kind(s) ['nope']; known: unbalanced_journal_entry" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--bogus"], "No such option: --bogus"),
        (["check", "list", "--bogus"], "No such option: --bogus"),
        (["users", "list", "--bogus"], "No such option: --bogus"),
        (["dualrun", "run", "cutover.yaml", "--bogus"], "No such option: --bogus"),
        (["no-such-command"], "No such command 'no-such-command'"),
        (["users", "add"], "Missing argument 'username'"),
        (["tokens", "create"], "Missing option '--user'"),
        (["serve", "--port", "eighty"], "Invalid value for '--port'"),
        (["dualrun", "report", "--format", "xml"], "Invalid value for '--format'"),
    ],
)
def test_a_usage_error_is_the_usage_line_and_one_error_with_exit_2(
    tmp_path: Path, args: list[str], error: str
) -> None:
    done = run(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("Usage: "), done.stderr
    assert done.stderr.rstrip().splitlines()[-1].startswith(f"Error: {error}"), done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_a_group_without_its_command_shows_its_help(tmp_path: Path) -> None:
    done = run("check", cwd=tmp_path)
    assert done.returncode == 2  # click's status for a usage error, help included
    assert "Usage:" in done.stdout and "run" in done.stdout and "list" in done.stdout
    assert done.stderr == ""


def test_config_check_fails_when_a_pack_reads_a_source_nobody_configured(tmp_path: Path) -> None:
    (tmp_path / "hypercare.yaml").write_text(
        "sources: {legacy: {url: 'sqlite:///legacy.db'}}\n"
        "checks: {packs: [demo_erp]}\n"
        "collectors: {db_health: {sources: [finance]}}\n",
        encoding="utf-8",
    )
    done = run("config", "check", cwd=tmp_path)
    assert done.returncode == 2, done.stdout
    assert "check pack 'demo_erp'" in done.stderr and "source 'erp'" in done.stderr, done.stderr
    assert "collectors.db_health.sources" in done.stderr and "source 'finance'" in done.stderr
    assert "configured: legacy" in done.stderr
    assert "Traceback" not in done.stderr
    refused = run("check", "run", cwd=tmp_path)
    assert refused.returncode == 2 and "source 'erp'" in refused.stderr, refused.stderr


@pytest.mark.parametrize("args", [["check", "validate"], ["check", "list"]])
def test_check_commands_on_a_broken_volume_watch_name_the_file_and_line(
    tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "mine.yaml").write_text(
        "volumes:\n  - id: sales.volume.orders\n    title: Orders\n    source: erp\n"
        "    sql: SELECT d AS bucket, 1 AS count FROM t\n    bucket: week\n    measures: [count]\n"
        "    runbook: business-volume-invoices\n",
        encoding="utf-8",
    )
    (tmp_path / "hypercare.yaml").write_text(
        f"checks: {{packs: [], paths: [{tmp_path / 'checks'}]}}\n", encoding="utf-8"
    )
    done = run(*args, cwd=tmp_path)
    assert done.returncode == 1
    assert "mine.yaml:2: volume watch sales.volume.orders: field 'bucket'" in done.stderr
