"""The read-only guarantee where an operator meets it: ``config check`` names SQL off the allow-list and
sources whose user may do more than read; ``collect`` refuses to start on such a source unless it is
allowed; an allowed one is shown by ``/readyz``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from core.session import make_engine
from hypercare.app import build_app
from hypercare.config import Settings
from hypercare.store import upgrade
from monitor.startup import guard_sources
from tests.servers import PG_URL

ROOT = Path(__file__).resolve().parents[2]
SNEAKY = {
    "id": "x.sneaky",
    "title": "t",
    "source": "erp",
    "category": "data",
    "severity": "P1",
    "sql": "SELECT id FROM journal WHERE dblink_exec('dbname=erp', 'DELETE FROM journal') = 'x'",
}


def hypercare(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERCARE_")}
    env.update({"COLUMNS": "400", "NO_COLOR": "1", "HYPERCARE_DATA_DIR": str(cwd / "data")})
    env["PYTHONPATH"] = str(ROOT)  # this checkout's code, whatever the environment has installed
    return subprocess.run(
        [sys.executable, "-m", "hypercare", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def superuser_url() -> str:
    """The test server's superuser, with a password the server ignores (trust) and no output may show."""
    return make_url(PG_URL).set(password="Never-sh0wn").render_as_string(hide_password=False)


def write_config(tmp_path: Path, source: dict[str, object], checks: tuple[dict[str, str], ...] = ()) -> None:
    paths: list[str] = []
    if checks:
        (tmp_path / "mine.yaml").write_text(yaml.safe_dump({"checks": list(checks)}), encoding="utf-8")
        paths = [str(tmp_path / "mine.yaml")]
    config = {"sources": {"erp": source}, "checks": {"packs": [], "paths": paths}}
    (tmp_path / "hypercare.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")


@pytest.mark.postgres
def test_config_check_refuses_a_superuser_source_and_a_check_off_the_allow_list(tmp_path: Path) -> None:
    write_config(tmp_path, {"url": superuser_url()}, (SNEAKY,))
    done = hypercare("config", "check", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "Read-only guarantee" in out
    assert "refused: source 'erp' (postgresql, user root) may do more than read: is a superuser" in out
    assert (
        "refused: "
        + f"{tmp_path / 'mine.yaml'}: check x.sneaky: field 'sql': must only read: calls dblink_exec() "
        "at line 1, column 30, which is not on the read-only allow-list of functions"
    ) in out
    assert "Never-sh0wn" not in out + done.stderr


@pytest.mark.postgres
def test_config_check_shows_a_privileged_source_allowed_knowingly_as_a_warning(tmp_path: Path) -> None:
    write_config(tmp_path, {"url": superuser_url(), "allow_privileged": True})
    done = hypercare("config", "check", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "warning: source 'erp' (postgresql, user root) runs with a privileged user (allow_privileged: true)"
        in (done.stdout)
    )
    assert "ok: the SQL of 0 check(s) and of the settings is on the allow-list" in done.stdout


def test_config_check_judges_a_query_in_the_dialect_of_its_source(tmp_path: Path) -> None:
    """Every reading of a file's SQL is judged at load; config check also reads it as its source's engine."""
    (tmp_path / "erp.db").touch()
    check = {**SNEAKY, "sql": "SELECT id FROM journal WHERE note = E'it''s'"}  # PostgreSQL-only syntax
    write_config(tmp_path, {"url": f"sqlite:///{tmp_path / 'erp.db'}"}, (check,))
    done = hypercare("config", "check", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "ok: source 'erp' (sqlite): opened read-only (mode=ro) with PRAGMA query_only" in done.stdout
    assert "refused: check x.sneaky on erp (sqlite): does not parse as sqlite SQL" in done.stdout


@pytest.mark.postgres
def test_collect_refuses_to_start_on_a_source_whose_user_may_write(tmp_path: Path) -> None:
    write_config(tmp_path, {"url": superuser_url()})
    done = hypercare("collect", "--once", cwd=tmp_path)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "source 'erp' (postgresql, user root) may do more than read: is a superuser" in lines[0]
    assert "allow_privileged: true" in lines[0]
    assert "Traceback" not in done.stderr and "Never-sh0wn" not in done.stderr + done.stdout


@pytest.mark.postgres
def test_readyz_names_a_source_running_with_a_privileged_user_knowingly(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'hc.db'}"
    engine = make_engine(store)
    upgrade(engine)
    settings = Settings(
        database_url=store,
        data_dir=tmp_path,
        sources={"erp": {"url": superuser_url(), "allow_privileged": True}},  # type: ignore[dict-item]
    )
    app = build_app(settings, engine, notices=guard_sources(settings))
    body = TestClient(app).get("/readyz").json()
    engine.dispose()
    assert body["status"] == "ready"
    (line,) = body["detail"]
    assert line.startswith(
        "source 'erp' (postgresql, user root) runs with a privileged user (allow_privileged"
    )
    assert "Never-sh0wn" not in line
