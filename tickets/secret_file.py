"""The session secret: ``secret_key`` from the settings, else one generated once in ``<data_dir>/secret_key``.
It keys the UI's session cookies and, unless ``notifications.link_key`` is set, the one-click links."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from core.errors import ConfigError
from tickets.settings import TicketsConfig

log = logging.getLogger(__name__)


def session_secret(settings: TicketsConfig) -> str:
    """``secret_key`` from the settings, else one generated once and kept in ``<data_dir>/secret_key``."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path = Path(settings.data_dir) / "secret_key"
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process generated it first: use theirs
        return _read_secret(path)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    log.info("generated a session secret", extra={"path": str(path)})
    return key


def _read_secret(path: Path) -> str:
    key = path.read_text(encoding="ascii").strip()
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        log.warning("%s is readable by others; chmod 600 it", path, extra={"path": str(path)})
    if len(key) < 32:
        raise ConfigError(f"{path} holds no usable secret (too short); delete it to have a new one generated")
    return key
