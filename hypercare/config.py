"""Hypercare's one typed settings object.

Settings come from one YAML file (``hypercare.yaml``; the path is ``--config`` or ``HYPERCARE_CONFIG``) and
``HYPERCARE_*`` environment variables, which win over the file (nested keys use ``__``:
``HYPERCARE_SERVER__PORT=9000``). Everything is validated at start-up; a wrong key, type or value becomes
one :class:`ConfigError` naming the file, the key and what was expected.

Secrets (database passwords, apprise URLs, tokens) are :class:`pydantic.SecretStr` or are shown through
:func:`redact_url`; they never reach a log line or the terminal.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from hypercare.errors import ConfigError

DEFAULT_CONFIG_FILE = "hypercare.yaml"
PRIORITIES = ("P1", "P2", "P3", "P4")
Priority = Literal["P1", "P2", "P3", "P4"]
Category = Literal["data", "process", "technical", "user"]
Level = Literal["high", "medium", "low"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def redact_url(url: str) -> str:
    """A database or apprise URL with any password or token replaced by ``***``."""
    try:
        url = make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        url = re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", url)
    return re.sub(r"(?i)((?:token|key|secret|password|pass|apikey)=)[^&]*", r"\1***", url)


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    public_url: str | None = None
    """Base URL used in notifications (links to tickets). Defaults to http://host:port."""

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


class SourceSettings(_Strict):
    """A monitored system (the ERP database, its integration database, the legacy copy)."""

    url: SecretStr
    """SQLAlchemy URL. Use a least-privilege, read-only user (docs/operator-guide.md)."""
    description: str = ""
    statement_timeout_s: float = Field(30.0, gt=0, le=3600)


class ProbeSettings(_Strict):
    """An HTTP probe of an ERP transaction or API."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    url: str
    source: str = "erp"
    method: Literal["GET", "POST", "HEAD"] = "GET"
    expect_status: int = Field(200, ge=100, le=599)
    expect_body_contains: str | None = None
    timeout_s: float = Field(5.0, gt=0, le=120)
    latency_warn_s: float = Field(1.0, gt=0)
    latency_fail_s: float = Field(2.0, gt=0)
    severity: Priority = "P2"
    runbook: str | None = None
    owner: str | None = None


class NotificationTarget(_Strict):
    """An apprise URL and the tickets it is told about."""

    url: SecretStr
    min_priority: Priority = "P2"
    """Notify for tickets of this priority or more urgent (P1 is the most urgent)."""
    tags: tuple[str, ...] = ()
    """Only tickets matching one of these: a category, source, queue, check id or ``key=value`` label.
    Empty: every ticket of the priority."""


class NotificationSettings(_Strict):
    targets: tuple[NotificationTarget, ...] = ()
    dispatch_interval_s: float = Field(30.0, gt=0, le=3600)
    """How often the server delivers due notifications (new ones and retries) from the outbox."""
    max_attempts: int = Field(8, ge=1, le=100)
    retry_base_s: float = Field(30.0, gt=0)
    """Back-off before retry n is retry_base_s * 2**(n-1), capped at one hour."""


def _itil_matrix() -> dict[Level, dict[Level, Priority]]:
    return {
        "high": {"high": "P1", "medium": "P2", "low": "P3"},
        "medium": {"high": "P2", "medium": "P3", "low": "P4"},
        "low": {"high": "P3", "medium": "P4", "low": "P4"},
    }


class TriageSettings(_Strict):
    matrix: dict[Level, dict[Level, Priority]] = Field(default_factory=_itil_matrix)
    """Priority = matrix[impact][urgency] (ITIL). Every cell must be filled."""

    @field_validator("matrix")
    @classmethod
    def _complete(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        levels = {"high", "medium", "low"}
        if set(value) != levels or any(set(row) != levels for row in value.values()):
            raise ValueError("needs a priority for every impact x urgency pair of high/medium/low")
        return value


class TicketSettings(_Strict):
    reopen_window_h: float = Field(72.0, ge=0)
    """An event for a ticket resolved less than this many hours ago reopens it (no new ticket)."""
    group_threshold: int = Field(5, ge=1)
    """A failing check with more offending entities than this raises one grouped event, not one per entity."""


class CheckSettings(_Strict):
    packs: tuple[str, ...] = ("demo_erp",)
    """Shipped check packs to load (monitor/packs/<name>.yaml)."""
    paths: tuple[Path, ...] = ()
    """Extra check files or directories of the user's."""
    sample_limit: int = Field(20, ge=0, le=1000)


class Settings(BaseSettings):
    """Everything Hypercare is told. Built by :func:`load_settings`, then passed in, never read globally."""

    model_config = SettingsConfigDict(
        env_prefix="HYPERCARE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    data_dir: Path = Path(".hypercare")
    database_url: str | None = None
    """The Hypercare store. Default: SQLite at <data_dir>/hypercare.db."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "console"
    runbooks_dir: Path | None = None
    """Your own runbooks (*.md); one with the id of a shipped runbook replaces it."""
    secret_key: SecretStr | None = None
    """Signs UI session cookies. Generated and kept in <data_dir>/secret_key when not set."""
    server: ServerSettings = ServerSettings()
    sources: dict[str, SourceSettings] = {}
    probes: tuple[ProbeSettings, ...] = ()
    checks: CheckSettings = CheckSettings()
    notifications: NotificationSettings = NotificationSettings()
    triage: TriageSettings = TriageSettings()
    tickets: TicketSettings = TicketSettings()

    @field_validator("database_url")
    @classmethod
    def _valid_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"is not a database URL ({exc})") from None
        return value

    @field_validator("secret_key")
    @classmethod
    def _no_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            raw = value.get_secret_value()
            if raw.lower() in {"changeme", "change-me", "secret", "replace-me"} or len(raw) < 16:
                raise ValueError("must be a real secret of 16 characters or more, not a placeholder")
        return value

    @property
    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'hypercare.db').as_posix()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the YAML file, which arrives as init kwargs.
        return (env_settings, init_settings)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping of settings at the top level, got {type(data).__name__}"
        )
    return data


def _describe(error: Any, path: Path | None) -> str:
    loc = ".".join(str(part) for part in error["loc"]) or "(top level)"
    where = str(path) if path else "settings"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{where}: unknown key '{loc}'"
    given = error.get("input")
    shown = "" if isinstance(given, dict | list) or "url" in loc or "secret" in loc else f" (got {given!r})"
    return f"{where}: key '{loc}': {error['msg']}{shown}"


def config_path(explicit: Path | None = None) -> Path | None:
    """The configuration file to read: --config, else $HYPERCARE_CONFIG, else ./hypercare.yaml if present."""
    if explicit is not None:
        return explicit
    env = os.environ.get("HYPERCARE_CONFIG")
    if env:
        return Path(env)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.exists() else None


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read and validate the settings; raise :class:`ConfigError` with one readable line per problem."""
    chosen = config_path(path)
    data: dict[str, Any] = _read_yaml(chosen) if chosen is not None else {}
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        lines = [_describe(err, chosen) for err in exc.errors()]
        raise ConfigError("; ".join(lines)) from None
