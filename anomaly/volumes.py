"""Business volumes through the detectors: each (watch, key, measure) is a series of complete buckets.

A volume watch (:mod:`monitor.volumes`) hands over the complete buckets of its lookback on every run;
this feeds each series only the buckets after the last one it learnt (a re-run, or a second worker,
feeds nothing twice), reading a bucket the query did not return as 0 (no invoice that day is a count of
0). Its state lives in ``anomaly_series_state`` like a metric series' (row ``metric`` is
``volume:<watch id>``), locked for the pass and saved in the pipeline's transaction.

How a bucket is judged:

* the expected value is the seasonal baseline's (:class:`~anomaly.detectors.SeasonalBaseline`, one slot
  per day for daily buckets, the business calendar's day kinds: weekends, public holidays, China's
  make-up working days, close and payroll days) once the series has ``anomaly.volumes.warmup_days`` of
  buckets, held against the median of the same weekday and kind of day over the last 8 weeks: a spike
  must be one against both (Monday catch-up of weekend payments is learnt slowly by the baseline's
  weekday offsets, at once by the median), a drop likewise;
* a young series (fewer buckets) is judged against the median of the same weekday and kind of day
  (business or rest), or of the same kind of day while it has fewer than 3 of that weekday (for hourly
  buckets: the same hour and kind of day), with ratios of at least ``anomaly.volumes.young_ratio`` (5):
  the median knows no month-end peak yet;
* a **spike**: value >= ``spike_ratio`` x expected and at least ``min_change`` and ``threshold`` robust
  spreads (1.4826 x MAD of the same kind of day over the last 8 weeks) above it; a **drop** or an
  unusual **quiet**: value <= expected / ``drop_ratio`` and as far below it, on a business day only
  (quiet is what weekends and holidays are for). The spread keeps a sum of a few large payments, which
  swings a lot, from paging; a replay of invoices is far beyond any spread. A mature series must also be
  ``anomaly.volumes.threshold`` robust sigmas out (the calendar's allowance applies on close and payroll
  days), so a noisy series needs more than the ratio;
* only buckets that ended within ``anomaly.volumes.alert_days`` may raise: a watch's first run reads its
  whole lookback and learns from it without paging about last quarter;
* an anomalous bucket starts an alarm at once (one bucket is a whole day); ``clear_buckets`` normal
  business-day buckets in a row resolve it (rest days are skipped: a quiet Sunday proves nothing). The
  event's fingerprint is the watch, the source, the key and the measure; its evidence the bucket, the
  value, the expected value and the band. A later measure of the same key alarming on the same bucket
  is covered by the first one's ticket (one replay is one ticket, not one per count and amount).
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from anomaly.alarms import AlarmProcessor
from anomaly.calendar import REST_DAYS, BusinessCalendar
from anomaly.detectors import SeasonalBaseline
from anomaly.ensemble import Score
from anomaly.events import Event, fingerprint
from anomaly.settings import AnomalySettings
from anomaly.severity import Exposure, SeverityContext, adjust
from anomaly.state import SeriesState, create_rows, locked_rows, series_key
from core.vocabulary import Category, Priority, parse
from monitor.results import BUCKET_LENGTH, VolumeSeries

log = logging.getLogger(__name__)

MIN_SAME_KIND = 3
"""Buckets of the same kind a young series needs before its median judges anything."""
MIN_REL_SCALE = 0.05
"""The baseline's scale is at least 5 % of the expected volume: business volumes are counts, and a
series that happens to be very regular (a batch that posts the same number every day) must not page on
a few documents more."""
MAX_CATCH_UP = {"day": 400, "hour": 24 * 60}
"""Buckets fed at most in one pass (a watch switched off for longer restarts from there)."""


def state_metric(watch_id: str) -> str:
    """``metric`` of a volume series' row in ``anomaly_series_state``."""
    return f"volume:{watch_id}"


def key_text(key: dict[str, str]) -> str:
    return "/".join(key.values()) if key else "all"


def series_labels(s: VolumeSeries) -> dict[str, str]:
    return {"watch": s.watch_id, "key": key_text(s.key), "measure": s.measure, "source": s.source}


def series_title(s: VolumeSeries) -> str:
    shown = ",".join(f"{k}={v}" for k, v in s.key.items())
    return f"{s.watch_id}{{{shown + ',' if shown else ''}measure={s.measure}}}"


def volume_fingerprint(watch_id: str, source: str, key: dict[str, str], measure: str) -> str:
    """What a volume anomaly is about: the watch, the source, the key and the measure (never when)."""
    return fingerprint(watch_id, source, entity={**key, "measure": measure})


@dataclass
class Judgement:
    """What one bucket looked like against its expected value."""

    value: float
    expected: float | None
    low: float | None
    high: float | None
    direction: str  # "spike" | "drop" | ""
    detector: str  # "seasonal" | "median" | "none"
    z: float
    sigma: float | None
    day_kind: str

    def score(self) -> Score:
        """What the alarm is fed: 1 for an anomalous bucket (an alarm at once), 0 for a normal one."""
        return Score(
            score=1.0 if self.direction else 0.0,
            detector=self.detector,
            value=self.value,
            expected=self.expected,
            sigma=self.sigma,
            statistic=abs(self.z),
            z=self.z,
            day_kind=self.day_kind,
            direction=self.direction,
        )


class _Series:
    """One series' detectors during a pass: the seasonal baseline, the young-series history, the alarm."""

    def __init__(self, s: VolumeSeries, row: SeriesState, cfg: AnomalySettings, calendar: BusinessCalendar):
        self.s, self.row, self.cfg = s, row, cfg
        self.step = BUCKET_LENGTH[s.bucket]
        self.zone = ZoneInfo(s.timezone)
        per_day = 1 if s.bucket == "day" else 24
        self.warmup = cfg.volumes.warmup_days * per_day
        # the medians' history: 8 weeks of days (the same weekday 8 times), or the warm-up's hours
        self.keep = 56 if s.bucket == "day" else self.warmup
        state = row.detector or {}
        if state.get("kind") == "volume":
            self.baseline = SeasonalBaseline.from_state(state["baseline"], calendar=calendar)
            self.history: list[list[Any]] = [list(h) for h in state.get("history", [])]
            last = state.get("last_bucket")
            self.last: datetime | None = datetime.fromisoformat(last) if last else None
            self.fed = int(state.get("fed", 0))
        else:
            self.baseline = SeasonalBaseline(
                slot_minutes=1440 if s.bucket == "day" else 60,
                calendar=calendar,
                min_rel_scale=MIN_REL_SCALE,
                threshold=cfg.volumes.threshold,
            )
            self.history, self.last, self.fed = [], None, 0
        self.alarm = AlarmProcessor(
            series_title(s),
            s.source,
            on=cfg.alarm_on,
            off=cfg.alarm_off,
            instant=cfg.alarm_instant,
            min_duration=1,
            clear_points=cfg.volumes.clear_buckets,
            severity=_priority(s.severity),
            category=Category.PROCESS,
        )
        self.covered = bool((row.alarm or {}).get("covered", False))
        if row.alarm:
            self.alarm.restore(row.alarm)

    def buckets(self) -> list[tuple[datetime, float]]:
        """The complete buckets not fed yet, oldest first; a bucket the query did not return is 0."""
        values = dict(self.s.points)
        if self.last is not None:
            start = self.last + self.step
        elif values:
            start = min(values)
        else:
            return []
        start = max(start, self.s.complete_until - self.step * MAX_CATCH_UP[self.s.bucket])
        out = []
        bucket = start
        while bucket < self.s.complete_until:
            out.append((bucket, values.get(bucket, 0.0)))
            bucket += self.step
        return out

    def judge(self, bucket: datetime, value: float) -> Judgement:
        """Score the bucket against the past, then learn from it."""
        s = self.s
        ts = (bucket + self.step / 2).replace(tzinfo=self.zone).timestamp()
        obs = self.baseline.update(ts, value)
        kind = obs.day_kind
        klass = ("rest" if kind in REST_DAYS else "work") + (f"@{bucket.hour}" if s.bucket == "hour" else "")
        weekday = bucket.weekday() if s.bucket == "day" else None
        same_kind = [h[1] for h in self.history if h[0] == klass]
        same_day = [
            h[1] for h in self.history if h[0] == klass and weekday is not None and h[2:] == [weekday]
        ]
        kind_median = statistics.median(same_kind) if len(same_kind) >= MIN_SAME_KIND else None
        day_median = statistics.median(same_day) if len(same_day) >= MIN_SAME_KIND else None
        self.history.append([klass, value, weekday])
        del self.history[: -self.keep]
        mature = self.fed >= self.warmup
        self.fed += 1
        sigma: float | None = None
        if mature:  # the seasonal baseline, checked against the same weekday's median (Monday catch-ups)
            base = max(obs.expected, 0.0)
            high_ref = base if day_median is None else max(base, day_median)
            low_ref = base if day_median is None else min(base, day_median)
            sigma, detector, z = obs.sigma, "seasonal", obs.z
        else:
            young = day_median if day_median is not None else kind_median
            if young is None:
                return Judgement(value, None, None, None, "", "none", 0.0, None, kind)
            base = high_ref = low_ref = young
            detector, z = "median", 0.0
        thr = self.cfg.volumes.threshold
        ratio = self.cfg.volumes.young_ratio
        up, down = (
            (s.spike_ratio, s.drop_ratio) if mature else (max(s.spike_ratio, ratio), max(s.drop_ratio, ratio))
        )
        # how far counts as far: min_change, and thr robust spreads of the same kind of day (a sum of a
        # few large payments swings a lot; a replay of invoices is far beyond any spread)
        far = max(s.min_change, thr * _spread(same_kind, kind_median))
        low, high = min(low_ref / down, low_ref - far), max(high_ref * up, high_ref + far)
        if sigma is not None:
            low, high = min(low, base - thr * sigma), max(high, base + thr * sigma)
        if value >= up * high_ref and value - high_ref >= far and (not mature or z >= thr):
            return Judgement(value, high_ref, max(low, 0.0), high, "spike", detector, z, sigma, kind)
        if (
            kind not in REST_DAYS
            and value * down <= low_ref
            and low_ref - value >= far
            and (not mature or z <= -thr)
        ):
            return Judgement(value, low_ref, max(low, 0.0), high, "drop", detector, z, sigma, kind)
        return Judgement(value, base, max(low, 0.0), high, "", detector, z, sigma, kind)

    def save(self, now: datetime) -> None:
        row = self.row
        row.detector = {
            "kind": "volume",
            "baseline": self.baseline.to_state(),
            "history": self.history,
            "last_bucket": self.last.isoformat() if self.last else None,
            "fed": self.fed,
        }
        row.alarm = {**self.alarm.to_state(), "covered": self.covered}
        row.points, row.alarm_active = self.fed, self.alarm.active
        row.last_ts = self.aware(self.last) if self.last else None
        row.updated_at = now

    def aware(self, local: datetime) -> datetime:
        return local.replace(tzinfo=self.zone).astimezone(UTC)


def _spread(values: list[float], median: float | None) -> float:
    """The robust spread (1.4826 x the median absolute deviation) of ``values``, at least
    :data:`MIN_REL_SCALE` of their median; 0 with fewer than :data:`MIN_SAME_KIND` values."""
    if median is None or len(values) < MIN_SAME_KIND:
        return 0.0
    mad = statistics.median(abs(v - median) for v in values)
    return max(1.4826 * mad, MIN_REL_SCALE * abs(median))


def _brief(judged: Judgement) -> dict[str, Any]:
    return {
        "value": judged.value,
        "expected": _number(judged.expected),
        "band": {"low": _number(judged.low), "high": _number(judged.high)},
        "direction": judged.direction,
    }


def _priority(value: str) -> Priority:
    return parse(Priority, value) or Priority.P3


def _number(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


class VolumeWatch:
    """Feeds the complete buckets of a pass's volume series to their detectors; returns their events."""

    def __init__(self, settings: AnomalySettings, context: SeverityContext | None = None) -> None:
        self.settings = settings
        self.context = context or SeverityContext()
        self.calendar = self.context.calendar or BusinessCalendar()

    def observe(
        self, session: Session, series: Sequence[VolumeSeries], *, now: datetime | None = None
    ) -> list[Event]:
        """Feed every series its new buckets and save the state (the caller commits)."""
        now = now or datetime.now(UTC)
        found = {series_key(state_metric(s.watch_id), series_labels(s)): s for s in series}
        if not found:
            return []
        rows = locked_rows(session, found)
        missing = [key for key in found if key not in rows]
        if missing:  # new series: created conflict-safe, then locked (see anomaly.state.create_rows)
            create_rows(session, [self._identity(key, found[key]) for key in missing], now)
            rows.update(locked_rows(session, missing))
        events: list[Event] = []
        speaking: dict[tuple[str, str, str, datetime], int] = {}
        """(watch, source, key, bucket) -> index in ``events`` of the trigger that speaks for it, or -1
        when an alarm of an earlier measure was already active then."""
        for key, given in found.items():  # the watch's order: key by key, measures as declared
            stream = _Series(given, rows[key], self.settings, self.calendar)
            events.extend(self._advance(stream, now, speaking, events))
        session.flush()
        return events

    @staticmethod
    def _identity(key: str, s: VolumeSeries) -> dict[str, Any]:
        return {
            "key": key,
            "metric": state_metric(s.watch_id)[:128],
            "series": series_title(s)[:500],
            "source": s.source[:64],
            "labels": series_labels(s),
        }

    def _advance(
        self,
        series: _Series,
        now: datetime,
        speaking: dict[tuple[str, str, str, datetime], int],
        earlier: list[Event],
    ) -> list[Event]:
        """Feed the series its new buckets. An alarm of a later measure of the same key on a bucket an
        earlier measure already alarms about is *covered*: that ticket speaks for the incident (its
        evidence gets this measure's too), and the covered alarm raises neither a trigger nor a resolve."""
        s = series.s
        horizon = s.complete_until - timedelta(days=self.settings.volumes.alert_days)
        events: list[Event] = []
        for bucket, value in series.buckets():
            judged = series.judge(bucket, value)
            series.last = bucket
            if bucket + series.step <= horizon:  # catching up: learn, do not page about the past
                continue
            if series.alarm.active and not judged.direction and judged.day_kind in REST_DAYS:
                continue  # a quiet weekend or holiday says nothing about recovery: business days do
            alarm = series.alarm.update(series.aware(bucket + series.step), judged.score())
            spot = (s.watch_id, s.source, key_text(s.key), bucket)
            if alarm is not None and alarm.action == "trigger" and spot in speaking:
                series.covered = True
                index = speaking[spot]
                if index >= 0:
                    event = earlier[index]
                    also = {**event.evidence.get("also", {}), s.measure: _brief(judged)}
                    earlier[index] = event.model_copy(update={"evidence": {**event.evidence, "also": also}})
                alarm = None
            elif alarm is not None and series.covered:  # the covered alarm ends quietly
                series.covered = False
                alarm = None
            if alarm is not None:
                events.append(self._event(series, bucket, judged, alarm))
                if alarm.action == "trigger":
                    speaking[spot] = len(earlier) + len(events) - 1
            elif series.alarm.active and not series.covered and spot not in speaking:
                speaking[spot] = -1
        series.save(now)
        return events

    def _event(self, series: _Series, bucket: datetime, judged: Judgement, alarm: Event) -> Event:
        s = series.s
        entity = {**s.key, "measure": s.measure}
        day = bucket.date().isoformat() if s.bucket == "day" else bucket.isoformat(timespec="minutes")
        shown = f"{key_text(s.key)} {s.measure}" if s.key else s.measure
        expected = judged.expected
        evidence: dict[str, Any] = {
            "watch": s.watch_id,
            "bucket": day,
            "bucket_size": s.bucket,
            "day_kind": judged.day_kind,
            "value": judged.value,
            "expected": _number(expected),
            "band": {"low": _number(judged.low), "high": _number(judged.high)},
            "direction": judged.direction,
            "detector": judged.detector,
            "robust_z": _number(judged.z) if judged.detector == "seasonal" else None,
            "buckets_learnt": series.fed,
            "young_series": judged.detector == "median",
        }
        labels = {"kind": "volume", "watch": s.watch_id, "measure": s.measure}
        if alarm.action == "resolve":
            summary = f"{s.title}: {shown} back to normal ({judged.value:g} on {day})"
            return Event(
                fingerprint=volume_fingerprint(s.watch_id, s.source, s.key, s.measure),
                action="resolve",
                severity=_priority(s.severity),
                category=_category(s.category),
                summary=summary[:300],
                source=s.source,
                check_id=s.watch_id,
                producer="anomaly",
                labels=labels,
                entity=entity,
                evidence=evidence,
                runbook=s.runbook,
                occurred_at=alarm.occurred_at,
            )
        ratio = judged.value / expected if expected else math.inf
        what = "unusual quiet" if judged.value == 0 else judged.direction
        times = f"{ratio:.1f}x" if math.isfinite(ratio) else "from 0"
        summary = (
            f"{s.title}: {what} on {day} ({judged.day_kind} day), {shown} {judged.value:g}, "
            f"{times} the expected {expected or 0:.4g}"
        )
        exposure = Exposure(check_id=s.watch_id, when=alarm.occurred_at, tags=s.tags)
        declared = _priority(s.severity)
        severity, reasons = adjust(declared, exposure, self.settings, self.context)
        if s.owner:
            labels["owner"] = s.owner
        log.info(
            "volume anomaly on %s",
            series.alarm.series,
            extra={"check_id": s.watch_id, "source": s.source, "bucket": day, "direction": judged.direction},
        )
        return Event(
            fingerprint=volume_fingerprint(s.watch_id, s.source, s.key, s.measure),
            severity=severity,
            category=_category(s.category),
            summary=summary[:300],
            source=s.source,
            check_id=s.watch_id,
            producer="anomaly",
            labels={**labels, "direction": judged.direction},
            entity=entity,
            evidence=evidence,
            runbook=s.runbook,
            severity_reasons=(f"{declared} as declared by volume watch {s.watch_id}", *reasons),
            occurred_at=alarm.occurred_at,
        )


def _category(value: str) -> Category:
    return parse(Category, value) or Category.PROCESS
