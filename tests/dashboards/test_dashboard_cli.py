"""`hypercare dashboard` refuses a store it cannot show with one clear line, and builds the streamlit command."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hypercare.commands.dashboard import APP, streamlit_command
from tests.cli import run_hypercare


def _run(tmp_path: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = {"HYPERCARE_DATABASE_URL": url, "HYPERCARE_DATA_DIR": str(tmp_path)}
    return run_hypercare("dashboard", "--port", "1", cwd=tmp_path, env=env, timeout=60)


def test_a_missing_store_is_one_clear_line(tmp_path: Path) -> None:
    result = _run(tmp_path, f"sqlite:///{tmp_path / 'nothing.db'}")
    assert result.returncode != 0
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "nothing.db").exists()  # read-only: it did not create one


def test_a_store_without_schema_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.db").touch()
    result = _run(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}")
    assert result.returncode != 0
    assert "hypercare db upgrade" in result.stderr and "Traceback" not in result.stderr


def test_streamlit_command_binds_where_asked_headless() -> None:
    cmd = streamlit_command(APP, "127.0.0.1", 8599)
    assert cmd[1:5] == ["-m", "streamlit", "run", str(APP)]
    assert APP.exists()
    joined = " ".join(cmd)
    assert "--server.address 127.0.0.1" in joined and "--server.port 8599" in joined
    assert "--server.headless true" in joined and "--browser.gatherUsageStats false" in joined
