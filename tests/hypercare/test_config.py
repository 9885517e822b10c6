from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import redact_url
from hypercare.config import load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hypercare.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_use_sqlite_under_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYPERCARE_DATABASE_URL", raising=False)
    settings = load_settings(write(tmp_path, "data_dir: /var/lib/hc\n"))
    assert settings.store_url == "sqlite:////var/lib/hc/hypercare.db"
    assert settings.server.base_url() == "http://127.0.0.1:8080"


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPERCARE_DATABASE_URL", "postgresql+psycopg://hc@db/hc")
    monkeypatch.setenv("HYPERCARE_SERVER__PORT", "9090")
    settings = load_settings(write(tmp_path, "database_url: sqlite:///x.db\nserver: {port: 8000}\n"))
    assert settings.store_url == "postgresql+psycopg://hc@db/hc"
    assert settings.server.port == 9090


def test_a_nested_variable_that_is_not_json_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYPERCARE_SERVER", "{bad")
    with pytest.raises(ConfigError, match=r"environment: .*\"server\""):
        load_settings(write(tmp_path, "{}\n"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("servr: {port: 1}\n", r"hypercare\.yaml: unknown key 'servr'"),
        ("server: {port: abc}\n", r"key 'server\.port': .*integer.*'abc'"),
        ("server: {port: 70000}\n", r"key 'server\.port': .*65535"),
        ("log_level: LOUD\n", r"key 'log_level'"),
        ("database_url: 'not a url'\n", r"key 'database_url': .*not a database URL"),
        ("secret_key: changeme\n", r"key 'secret_key': .*placeholder"),
        ("triage: {matrix: {high: {high: P1}}}\n", r"key 'triage\.matrix'.*every impact x urgency"),
        ("sources: {erp: {}}\n", r"key 'sources\.erp\.url': Field required"),
        ("- a\n- b\n", r"expected a mapping"),
        ("server: [\n", r"hypercare\.yaml: line \d"),
    ],
)
def test_bad_settings_give_one_clear_error_naming_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, text))


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read"):
        load_settings(tmp_path / "nope.yaml")


def test_secrets_never_appear_in_errors_or_redacted_urls(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "sources: {erp: {url: 'postgresql://u:hunter2@db/erp', bogus: 1}}\n"))
    assert "hunter2" not in str(info.value)
    assert redact_url("postgresql+psycopg://u:hunter2@db/erp") == "postgresql+psycopg://u:***@db/erp"
    assert "hunter2" not in redact_url("json://user:hunter2@hooks.example/path")
    assert "abc123" not in redact_url("json://hooks.example/path?token=abc123")
    settings = load_settings(write(tmp_path, "sources: {erp: {url: 'postgresql://u:hunter2@db/erp'}}\n"))
    assert "hunter2" not in repr(settings)


def test_a_source_on_an_engine_hypercare_cannot_make_read_only_is_refused_at_load(tmp_path: Path) -> None:
    """Hypercare never writes to a monitored system: a source it has no read-only guard for (SQL Server,
    Oracle...) is refused when the settings load, naming the source and the engine, the password not shown."""
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "sources: {legacy: {url: 'mssql+pymssql://u:hunter2@db/erp'}}\n"))
    message = str(info.value)
    assert "sources.legacy.url" in message and "mssql" in message and "read-only" in message
    assert "hunter2" not in message
    for url in ("postgresql+psycopg://u@db/erp", "mysql+pymysql://u@db/erp", "sqlite:///erp.db"):
        load_settings(write(tmp_path, f"sources: {{erp: {{url: '{url}'}}}}\n"))


def test_the_daily_report_covers_the_sites_day_unless_told_otherwise(tmp_path: Path) -> None:
    site_only = load_settings(write(tmp_path, "site: {timezone: Asia/Shanghai}\n"))
    assert site_only.dashboard.daily_report.timezone == "Asia/Shanghai"
    own = load_settings(
        write(
            tmp_path, "site: {timezone: Asia/Shanghai}\ndashboard: {daily_report: {timezone: Asia/Taipei}}\n"
        )
    )
    assert own.dashboard.daily_report.timezone == "Asia/Taipei"
    assert load_settings(write(tmp_path, "{}\n")).dashboard.daily_report.timezone == "UTC"
