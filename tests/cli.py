"""``hypercare`` run as a user runs it: a child process, without the ``HYPERCARE_*`` settings of the test
run's own environment, with wide and colourless output."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

HYPERCARE = [sys.executable, "-m", "hypercare"]


def cli_env(**extra: str) -> dict[str, str]:
    """This environment without ``HYPERCARE_*``, 200 columns, no colour, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERCARE_")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", **extra})
    return env


def run_hypercare(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: str = "",
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``hypercare *args`` to its end; ``env`` adds to (or overrides) ``cli_env()``."""
    return subprocess.run(
        [*HYPERCARE, *args],
        cwd=cwd,
        env=cli_env(**(env or {})),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
