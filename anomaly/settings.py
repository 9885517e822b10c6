"""Settings the anomaly part owns: money-aware severity, the metric detectors and their alarms, the
multivariate model. ``hypercare/config.py`` composes them into the one ``Settings``."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal, Protocol

from pydantic import Field, field_validator, model_validator

from anomaly.calendar import CalendarError, check_country
from core.settings import StrictModel
from core.vocabulary import Priority
from monitor.settings import DualRunSettings


class FixedThreshold(StrictModel):
    """A plain band a metric series must stay inside while its detectors are still warming up."""

    low: float | None = None
    high: float | None = None


class MultivariateGroup(StrictModel):
    """Related metric series scored together by the multivariate model (anomaly/groups.py)."""

    name: str = Field(min_length=1, max_length=64)
    metrics: tuple[str, ...] = Field(min_length=1)
    """Metric names (from ``anomaly.metrics``) whose series of one source form the group."""
    sources: tuple[str, ...] = ()
    """Sources it applies to (one group per source); empty: every source."""


class MultivariateSettings(StrictModel):
    """The multivariate model over related series of one source (``anomaly.multivariate``)."""

    enabled: bool = True
    groups: tuple[MultivariateGroup, ...] = ()
    """Empty: one group per source holding all its watched series. A series joins the first group
    that lists its metric and source; a group needs two series or more to be scored."""
    model: Literal["covariance", "iforest"] = "covariance"
    """``covariance``: robust Mahalanobis distance (MinCovDet); ``iforest``: IsolationForest."""
    align_seconds: int = Field(60, ge=1, le=86400)
    """Width of a slot of the alignment grid: the members' points in one slot form one vector."""
    stale_seconds: int = Field(900, ge=0)
    """A member without a point in a slot carries its last value if not older than this."""
    min_train: int = Field(288, ge=32)
    """Aligned vectors (counted once every member is past ``warmup_points``) before any score."""
    train_size: int = Field(1440, ge=32, le=20000)
    """Bounded training window: the last this many vectors (also what the store keeps)."""
    refit_every: int = Field(288, ge=1)
    window: int = Field(5, ge=1, le=60)
    """Vectors in the trailing mean added to each vector's features (sustained small deviations)."""
    threshold: float = Field(1.25, gt=0)
    """Score 0.5 at this multiple of the training rows' 99.5th-percentile distance above their median."""
    n_estimators: int = Field(100, ge=10, le=1000)
    """Trees of the ``iforest`` model."""
    max_series: int = Field(16, ge=2, le=64)
    """A group's members beyond this many (in series-name order) are left to their univariate alarms."""

    @model_validator(mode="after")
    def _sizes(self) -> MultivariateSettings:
        if self.train_size < self.min_train:
            raise ValueError("needs min_train <= train_size")
        return self


class VolumeSettings(StrictModel):
    """Business-volume watches: a series per (watch, key, measure), one point per complete bucket."""

    warmup_days: int = Field(28, ge=7, le=366)
    """Days of buckets a series needs before the seasonal baseline judges it; until then the median rule
    (the same kind of day, and the same hour for hourly buckets) does."""
    young_ratio: float = Field(5.0, gt=1)
    """A young series' bucket must be this many times above (or below) the median of its kind of day,
    and the watch's ``spike_ratio``/``drop_ratio`` if they are larger: the median knows nothing of
    month-end or payment-run peaks yet, so it is judged more coarsely."""
    alert_days: int = Field(7, ge=1, le=90)
    """Only buckets that ended within this many days may raise an event: older ones (a watch's first run
    reads its whole lookback) only teach the baseline."""
    clear_buckets: int = Field(2, ge=1, le=48)
    """Consecutive normal buckets after which a volume alarm resolves."""
    threshold: float = Field(4.5, gt=0)
    """Robust z (beyond the calendar's allowance on close and payroll days) a mature series must reach,
    on top of the watch's ratio and minimum change."""


class AnomalySettings(StrictModel):
    """anomaly/: money-aware severity rules over check results and the metric detectors' alarms."""

    currency: str = Field("CNY", min_length=3, max_length=3)
    """Company currency, the unit of ``materiality`` and of every amount at risk."""
    materiality: Decimal = Field(Decimal("500000"), ge=0, decimal_places=2)
    """An exception whose amount at risk reaches this is raised one priority level."""
    many_entities: int = Field(50, ge=2)
    """A failing check with this many offending documents/customers or more is raised one level."""
    close_window_before_days: int = Field(3, ge=0, le=15)
    close_window_after_days: int = Field(5, ge=0, le=15)
    """The period-close window: period end minus/plus these business days (needs ``calendar_file``)."""
    external_party_tags: tuple[str, ...] = ("bank", "tax", "customer", "supplier")
    """Check tags meaning an outside party (bank, tax authority, customer, supplier) is affected: +1 level."""
    workarounds: tuple[str, ...] = ()
    """Check ids with a documented workaround: -1 level while the amount is below materiality."""
    calendar_file: Path | None = None
    """Business calendar YAML (close days, payroll, holidays, cutover); anomaly/calendar.py documents it."""
    calendar_country: str | None = None
    """ISO 3166 code (``CN``): the public holidays and make-up workdays (China's 调休) of that country from
    the `holidays` library join the calendar; the dates the calendar file lists win over the library."""
    volumes: VolumeSettings = VolumeSettings()
    """How business-volume watches (``volumes:`` in check packs) judge their buckets."""
    warmup_points: int = Field(288, ge=1)
    """Points a metric series needs before its detectors may alarm; ``fixed_thresholds`` cover the gap."""
    fixed_thresholds: dict[str, FixedThreshold] = {}
    """Per metric series name: the band that alarms during warm-up."""
    alarm_on: float = Field(0.5, gt=0, lt=1)
    """Anomaly score at or above which an alarm starts (after ``min_duration_points``)."""
    alarm_off: float = Field(0.3, ge=0, lt=1)
    """Score below which an active alarm counts towards recovery (hysteresis: below ``alarm_on``)."""
    alarm_instant: float = Field(0.9, gt=0, le=1)
    """A score this high starts an alarm at once, without waiting ``min_duration_points``."""
    min_duration_points: int = Field(3, ge=1)
    clear_points: int = Field(3, ge=1)
    """Consecutive points below ``alarm_off`` before an alarm resolves (no flapping, one incident)."""
    metrics: tuple[str, ...] = (
        "hypercare_probe_duration_seconds",
        "hypercare_integration_backlog_messages",
        "hypercare_integration_oldest_message_age_seconds",
        "hypercare_integration_failed_messages",
        "hypercare_db_connections",
        "hypercare_db_replication_lag_seconds",
        "hypercare_job_last_duration_seconds",
    )
    """Metric names whose series (one per label set) the collection pipeline streams through the
    detectors; ``[]`` switches metric anomaly detection off."""
    alarm_severity: Priority = Priority.P3
    """Declared severity of a metric alarm, before the severity rules (close window) adjust it."""
    slot_minutes: int = Field(60, ge=1, le=1440)
    """Width of a time-of-day slot of the seasonal baseline (must divide a day)."""
    rebaseline_points: int = Field(10, ge=1, le=10_000)
    """Consecutive points beyond the threshold on one side after which the level moves to them: a
    sustained shift is one alarm, then the new normal (docs/benchmarks.md: 10 scored best on real series)."""
    multivariate: MultivariateSettings = MultivariateSettings()
    """Related series of one source scored together (see :class:`MultivariateSettings`)."""

    @field_validator("calendar_country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        try:
            return check_country(value) if value else None
        except CalendarError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _hysteresis(self) -> AnomalySettings:
        if not self.alarm_off < self.alarm_on <= self.alarm_instant:
            raise ValueError("needs alarm_off < alarm_on <= alarm_instant")
        if 1440 % self.slot_minutes:
            raise ValueError("slot_minutes must divide a day (1440 minutes): 5, 10, 15, 30, 60...")
        return self


class AnomalyConfig(Protocol):
    """The slice of Hypercare's settings the anomaly part reads (``hypercare.config.Settings`` has it)."""

    @property
    def anomaly(self) -> AnomalySettings: ...

    @property
    def dualrun(self) -> DualRunSettings: ...
