"""Settings the managers' dashboards own. ``hypercare/config.py`` composes them into the one ``Settings``."""

from __future__ import annotations

from datetime import date
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from anomaly.settings import AnomalySettings
from core.settings import StrictModel
from monitor.settings import MonitorConfig
from tickets.settings import SecuritySettings, ServerSettings


class ExitCriteriaSettings(StrictModel):
    """Thresholds of the hypercare exit criteria the dashboard shows green or red (catalog section 4.4)."""

    max_open_p2: int = Field(3, ge=0)
    """Open P2 tickets allowed at exit (and 0 open P1)."""
    net_flow_days: int = Field(10, ge=1, le=90)
    """Consecutive days with inflow <= outflow needed."""
    sla_window_days: int = Field(14, ge=1, le=90)
    sla_min_ratio: float = Field(0.90, ge=0, le=1)
    """Response and resolution SLA compliance of P1-P2 over ``sla_window_days``."""
    max_reopen_ratio: float = Field(0.05, ge=0, le=1)
    min_check_pass_ratio: float = Field(0.98, ge=0, le=1)
    """Latest result of every data-consistency check: share passing."""
    max_interface_age_s: float = Field(3600.0, gt=0)
    """No integration's oldest unprocessed message may be older than this."""
    max_active_workarounds: int = Field(0, ge=0)


class DailyReportSettings(StrictModel):
    """The daily hypercare report (``hypercare report daily``): one page, HTML e-mail and PDF."""

    timezone: str = "UTC"
    """The report's time zone (default: ``site.timezone``): the report covers yesterday from midnight to
    midnight there, and is sent at ``send_at`` there (an IANA name such as Asia/Shanghai)."""
    send_at: str = Field("07:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    """Local time of day ``hypercare serve`` renders, archives and sends yesterday's report."""
    enabled: bool = False
    """``hypercare serve`` sends the report every day (``hypercare report daily --send`` does it by hand)."""
    target_tags: tuple[str, ...] = ("daily-report",)
    """The notification targets (``notifications.targets``) it goes to: those carrying one of these tags.
    Empty: every target."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Asia/Shanghai)") from None
        return value


class DashboardSettings(StrictModel):
    """``hypercare dashboard``: the managers' Streamlit dashboards (dashboards/)."""

    host: str = "127.0.0.1"
    port: int = Field(8501, ge=1, le=65535)
    go_live_date: date | None = None
    """Day 1 of hypercare; the overview shows "go-live day N" from it."""
    login_roles: tuple[str, ...] = ("viewer", "manager", "admin")
    """Hypercare roles that may log in to the dashboard. Every visitor logs in (Streamlit's client address
    is not trustworthy enough to let anyone in without one); bind ``host`` to loopback or a private
    interface."""
    cache_ttl_s: float = Field(60.0, ge=0, le=3600)
    """How long a page's query results are reused before the store is asked again."""
    statement_timeout_s: float = Field(30.0, gt=0, le=600)
    query_threads: int = Field(4, ge=1, le=16)
    """Queries of one page run at the same time, each on its own read-only connection (1: one by one)."""
    exit: ExitCriteriaSettings = ExitCriteriaSettings()
    daily_report: DailyReportSettings = DailyReportSettings()

    @field_validator("login_roles")
    @classmethod
    def _roles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        allowed = {"viewer", "manager", "admin", "agent", "oncall"}
        bad = [role for role in value if role not in allowed]
        if bad:
            raise ValueError(f"unknown or unsuitable role(s) {', '.join(bad)}; choose from {sorted(allowed)}")
        return value


class DashboardsConfig(MonitorConfig, Protocol):
    """The slice of Hypercare's settings the dashboards read (``hypercare.config.Settings`` provides it)."""

    @property
    def dashboard(self) -> DashboardSettings: ...

    @property
    def security(self) -> SecuritySettings:
        """Login throttling, shared with the ticket UI (the dashboards' login counts the same failures)."""
        ...

    @property
    def store_url(self) -> str: ...

    @property
    def server(self) -> ServerSettings:
        """The queue's address: table rows link to ``<server.public_url>/tickets/{id}``."""
        ...

    @property
    def anomaly(self) -> AnomalySettings: ...
