"""The audit trail's keyring: the HMAC keys that chain and seal audit rows, kept outside the store.

A keyring is text of lines ``kid:base64key`` (blank lines and ``#`` comments ignored); the last line is
the newest key, the one new rows are chained with; older keys stay so the rows they chained still verify.
It comes from ``HYPERCARE_AUDIT_KEY`` (the same lines, or ``kid:base64key`` entries separated by commas),
else from ``tickets.audit_key_file``, else from ``<data_dir>/audit_key``, generated (mode 0600) on first
use like the cookie secret (``tickets.app.session_secret``). The keys never reach a log line or the store:
a row records only the id of the key that chained it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from core.errors import ConfigError
from tickets.settings import TicketsConfig

log = logging.getLogger(__name__)

KEY_BYTES = 32
MIN_KEY_BYTES = 16
_KID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


@dataclass(frozen=True, slots=True)
class Keyring:
    """Key id -> key, in the order they were added (the last is the newest)."""

    keys: dict[str, bytes]
    source: str
    """Where the keys came from, for messages (a path, or the environment variable's name)."""

    @property
    def current(self) -> str:
        return next(reversed(self.keys))

    def mac(self, kid: str, text: str) -> str:
        return hmac.new(self.keys[kid], text.encode("utf-8"), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:  # never the keys themselves
        return f"Keyring(kids={list(self.keys)!r}, source={self.source!r})"


def parse_keyring(text: str, source: str) -> Keyring:
    keys: dict[str, bytes] = {}
    for number, raw in enumerate(re.split(r"[\n,]", text), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        kid, sep, encoded = line.partition(":")
        if not sep or not _KID.match(kid):
            raise ConfigError(f"{source}: entry {number} is not 'kid:base64key' (kid: letters, digits, _.-)")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except binascii.Error:
            raise ConfigError(f"{source}: key '{kid}' is not valid base64") from None
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(
                f"{source}: key '{kid}' is too short ({len(key)} bytes; at least {MIN_KEY_BYTES})"
            )
        if kid in keys:
            raise ConfigError(f"{source}: key id '{kid}' appears twice")
        keys[kid] = key
    if not keys:
        raise ConfigError(f"{source}: holds no audit key")
    return Keyring(keys, source)


def _entry(kid: str) -> str:
    return f"{kid}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode('ascii')}\n"


def key_path(data_dir: Path, key_file: Path | None) -> Path:
    return key_file if key_file is not None else Path(data_dir) / "audit_key"


def load_keyring(
    data_dir: Path, key_file: Path | None, env_key: SecretStr | None, *, generate: bool = True
) -> Keyring:
    """The keyring from the environment, else the key file (generated with one key on first use, unless
    ``generate`` is false: verifying with a new key would only say every row is wrong)."""
    if env_key is not None:
        return parse_keyring(env_key.get_secret_value(), "HYPERCARE_AUDIT_KEY")
    path = key_path(data_dir, key_file)
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    if key_file is not None:
        raise ConfigError(f"tickets.audit_key_file: {path} does not exist (it is never generated when named)")
    if not generate:
        raise ConfigError(
            f"no audit keyring at {path}: restore it from its backup "
            "(without it the trail cannot be verified)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process generated it first: use theirs
        return _read(path)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(_entry("k1"))
    log.info("generated an audit key", extra={"path": str(path), "key_id": "k1"})
    return _read(path)


def _read(path: Path) -> Keyring:
    text = path.read_text(encoding="ascii")
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        log.warning("%s is readable by others; chmod 600 it", path, extra={"path": str(path)})
    return parse_keyring(text, str(path))


def rotate(path: Path) -> str:
    """Append a new key to the keyring file; return its id. Older keys stay for verification."""
    ring = _read(path)
    numbers = [int(kid[1:]) for kid in ring.keys if re.fullmatch(r"k\d+", kid)]
    kid = f"k{max(numbers, default=0) + 1}"
    while kid in ring.keys:  # a hand-written keyring may already use it
        kid += "x"
    ends_line = path.read_text(encoding="ascii").endswith("\n")
    with path.open("a", encoding="ascii") as handle:
        handle.write(("" if ends_line else "\n") + _entry(kid))
    log.info("added an audit key", extra={"path": str(path), "key_id": kid})
    return kid


def keyring_for(settings: TicketsConfig, *, generate: bool = True) -> Keyring:
    return load_keyring(
        settings.data_dir, settings.tickets.audit_key_file, settings.audit_key, generate=generate
    )


def checkpoint_path(settings: TicketsConfig) -> Path:
    chosen = settings.tickets.audit_checkpoint_file
    return chosen if chosen is not None else Path(settings.data_dir) / "audit-checkpoints.jsonl"
