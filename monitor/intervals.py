"""The one syntax of schedules (``[every] N s|m|h|d``), used by settings, check packs and the scheduler."""

from __future__ import annotations

import re
from datetime import timedelta

_INTERVAL = re.compile(r"^(?:every\s+)?(\d+)\s*([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_INTERVAL = timedelta(seconds=1)


class ScheduleError(ValueError):
    """A schedule that is not ``[every] N s|m|h|d``; the message names the unit and the value."""


def parse_interval(text: str) -> timedelta:
    """``every 15m``, ``15m``, ``30s``, ``1h``, ``1d`` -> a timedelta (the one syntax of schedules)."""
    match = _INTERVAL.match(text.strip().lower())
    if not match:
        raise ScheduleError(
            f"schedule {text!r} is not '[every] N' followed by s, m, h or d (e.g. 'every 15m')"
        )
    interval = timedelta(seconds=int(match.group(1)) * _SECONDS[match.group(2)])
    if interval < MIN_INTERVAL:
        raise ScheduleError(f"schedule {text!r} must be at least 1s")
    return interval
