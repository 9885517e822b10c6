"""Hypercare's one typed settings object, composed from the settings each part owns.

Settings come from one YAML file (``hypercare.yaml``; the path is ``--config`` or ``HYPERCARE_CONFIG``) and
``HYPERCARE_*`` environment variables, which win over the file (nested keys use ``__``:
``HYPERCARE_SERVER__PORT=9000``). Everything is validated at start-up; a wrong key, type or value becomes
one :class:`ConfigError` naming the file, the key and what was expected.

Each part declares its sections in ``<part>/settings.py`` and, as a ``Protocol``, the slice of this object
it reads (``monitor.settings.MonitorConfig``, ``tickets.settings.TicketsConfig``...): the parts never import
this module. :class:`Settings` satisfies every one of them (mypy checks it where the wiring passes it in).

Secrets (database passwords, apprise URLs, tokens) are :class:`pydantic.SecretStr` or are shown through
:func:`core.settings.redact_url`; they never reach a log line or the terminal.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from anomaly.settings import AnomalySettings
from core.errors import ConfigError
from core.site import SiteSettings
from dashboards.settings import DashboardSettings
from monitor.settings import (
    CheckSettings,
    CollectorSettings,
    DualRunSettings,
    ProbeSettings,
    SchedulerSettings,
    SourceSettings,
)
from runbooks.settings import RunbookSettings
from tickets.settings import (
    AlertmanagerSettings,
    EscalationSettings,
    NotificationSettings,
    OncallSettings,
    ReportSettings,
    RoutingSettings,
    SecuritySettings,
    ServerSettings,
    SlaSettings,
    TicketSettings,
    TriageSettings,
)

DEFAULT_CONFIG_FILE = "hypercare.yaml"


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
    runbooks: RunbookSettings = RunbookSettings()
    secret_key: SecretStr | None = None
    """Signs UI session cookies. Generated and kept in <data_dir>/secret_key when not set."""
    audit_key: SecretStr | None = None
    """The audit trail's keyring as ``kid:base64key`` entries (``HYPERCARE_AUDIT_KEY``); when not set, the
    file ``tickets.audit_key_file`` (default <data_dir>/audit_key, generated on first use)."""
    site: SiteSettings = SiteSettings()
    """Where the business is: language, time zone, currency, number locale (core/site.py)."""
    server: ServerSettings = ServerSettings()
    sources: dict[str, SourceSettings] = {}
    probes: tuple[ProbeSettings, ...] = ()
    checks: CheckSettings = CheckSettings()
    notifications: NotificationSettings = NotificationSettings()
    triage: TriageSettings = TriageSettings()
    tickets: TicketSettings = TicketSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    sla: SlaSettings = SlaSettings()
    escalation: EscalationSettings = EscalationSettings()
    oncall: OncallSettings = OncallSettings()
    routing: RoutingSettings = RoutingSettings()
    collectors: CollectorSettings = CollectorSettings()
    alertmanager: AlertmanagerSettings = AlertmanagerSettings()
    reports: ReportSettings = ReportSettings()
    security: SecuritySettings = SecuritySettings()
    anomaly: AnomalySettings = AnomalySettings()
    dualrun: DualRunSettings = DualRunSettings()
    dashboard: DashboardSettings = DashboardSettings()

    @model_validator(mode="after")
    def _one_currency(self) -> Settings:
        """Amounts at risk have one currency: the site's, when set, is the anomaly rules' too."""
        site, anomaly = self.site.currency, self.anomaly.currency
        if site is not None and site != anomaly:
            if "currency" in self.anomaly.model_fields_set:
                raise ValueError(
                    f"site.currency {site} and anomaly.currency {anomaly} differ: amounts at risk have one "
                    "currency (set one of them, or both alike)"
                )
            object.__setattr__(self, "anomaly", self.anomaly.model_copy(update={"currency": site}))
        return self

    @model_validator(mode="after")
    def _report_in_site_time(self) -> Settings:
        """The daily report covers the site's day unless ``dashboard.daily_report.timezone`` is set."""
        report = self.dashboard.daily_report
        if "timezone" not in report.model_fields_set and report.timezone != self.site.timezone:
            daily = report.model_copy(update={"timezone": self.site.timezone})
            object.__setattr__(self, "dashboard", self.dashboard.model_copy(update={"daily_report": daily}))
        return self

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
    hidden = isinstance(given, dict | list) or any(word in loc for word in ("url", "secret", "key"))
    shown = "" if hidden else f" (got {given!r})"
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
    except SettingsError as exc:  # e.g. HYPERCARE_SERVER='{bad': a nested setting's variable is not JSON
        raise ConfigError(f"environment: {exc} (a nested setting's variable must be JSON)") from None
