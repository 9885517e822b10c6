"""``hypercare dashboard``: the managers' Streamlit dashboards on the configured store, read-only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from core.settings import redact_url
from hypercare.commands.common import console, state

APP = Path(__file__).resolve().parent.parent.parent / "dashboards" / "app.py"


def streamlit_command(app: Path, host: str, port: int) -> list[str]:
    """The ``streamlit run`` command line: headless, no usage statistics, no file watcher."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "viewer",
    ]


def dashboard(
    host: Annotated[str | None, typer.Option(help="Address to bind (default: dashboard.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: dashboard.port).")] = None,
) -> None:
    """Serve the managers' dashboards (Streamlit) on the configured store, read-only; Ctrl-C stops."""
    from core.schema import require_current_schema
    from dashboards.sql import read_only_engine

    settings = state.settings()
    engine = read_only_engine(settings.store_url)
    try:
        require_current_schema(engine)  # one clear line now rather than an error page later
    finally:
        engine.dispose()
    bind_host = host or settings.dashboard.host
    bind_port = port or settings.dashboard.port
    env = dict(os.environ)
    if state.config is not None:
        env["HYPERCARE_CONFIG"] = str(state.config.resolve())
    console.print(
        f"Hypercare dashboards on http://{bind_host}:{bind_port}/  (store {redact_url(settings.store_url)}, "
        f"read-only; log in as {' / '.join(settings.dashboard.login_roles)})"
    )
    try:
        code = subprocess.run(streamlit_command(APP, bind_host, bind_port), env=env, check=False).returncode  # noqa: S603 - our own interpreter and app
    except KeyboardInterrupt:
        code = 0
    if code not in (0, -2, 130):
        raise typer.Exit(code)
