"""``hypercare`` run as a user runs it: a child process, without the ``HYPERCARE_*`` settings of the test
run's own environment, with wide and colourless output."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

HYPERCARE = [sys.executable, "-m", "hypercare"]
ROOT = Path(__file__).resolve().parent.parent
"""On the child's PYTHONPATH: it runs this checkout, whichever one the environment was installed from."""


def cli_env(**extra: str) -> dict[str, str]:
    """This environment without ``HYPERCARE_*``, 200 columns, no colour, this checkout first on the path,
    then ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERCARE_")}
    path = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "PYTHONPATH": path, **extra})
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
