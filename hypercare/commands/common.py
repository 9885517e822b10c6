"""What every command module shares: the consoles and the lazily loaded settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hypercare.config import Settings, load_settings
from hypercare.logging import configure_logging

console = Console()
err_console = Console(stderr=True)
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Settings file (default: $HYPERCARE_CONFIG or ./hypercare.yaml)."),
]


class _State:
    config: Path | None = None
    _settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config)
            configure_logging(self._settings.log_level, self._settings.log_format)
        return self._settings


state = _State()
