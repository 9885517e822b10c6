"""Times as people read them: stored in UTC, shown in a display zone, the zone always named.

The display zone is the user's own zone when they chose one, else the site's (``site.timezone``). The
text names the zone so a reader never has to guess: ``2027-01-29 18:00 CST (Asia/Shanghai)``; a zone
whose abbreviation is only an offset reads ``UTC+4 (Asia/Dubai)``; UTC reads ``UTC``. The API keeps
ISO-8601 in UTC with its offset; these texts are for people (pages, notifications, e-mails).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC_ZONE = ZoneInfo("UTC")


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; a :class:`ValueError` naming it when it does not exist."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Asia/Shanghai)") from None


def display_zone(user_zone: str | None, site_zone: str) -> ZoneInfo:
    """The zone a user reads times in: their own when set (and valid), else the site's."""
    if user_zone:
        try:
            return zone(user_zone)
        except ValueError:
            pass  # a zone removed from tzdata since the user chose it: the site's zone, not an error page
    return zone(site_zone)


def _offset_label(value: datetime) -> str:
    offset = value.utcoffset()
    minutes = 0 if offset is None else int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def zone_label(value: datetime, where: tzinfo) -> str:
    """The zone as it is named after a time: ``UTC``, ``CST (Asia/Shanghai)``, ``UTC+4 (Asia/Dubai)``."""
    key = getattr(where, "key", None)
    if key in {"UTC", "Etc/UTC", None} and value.utcoffset() == UTC_ZONE.utcoffset(value):
        return "UTC"
    abbreviation = value.tzname() or ""
    if not abbreviation or abbreviation[0] in "+-" or abbreviation.isdigit():
        abbreviation = _offset_label(value)
    return f"{abbreviation} ({key})" if key else abbreviation


def local(value: datetime, where: tzinfo) -> datetime:
    """``value`` (aware; naive is taken as UTC, as the store keeps it) in the zone ``where``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(where)


def format_time(value: datetime | None, where: tzinfo, *, seconds: bool = False, empty: str = "-") -> str:
    """``2027-01-29 18:00 CST (Asia/Shanghai)``: the date and time in ``where``, the zone named."""
    if value is None:
        return empty
    shown = local(value, where)
    pattern = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return f"{shown.strftime(pattern)} {zone_label(shown, where)}"


def format_date(value: datetime | None, where: tzinfo, *, empty: str = "-") -> str:
    """The local date of ``value`` in ``where`` (``2027-01-29``)."""
    return empty if value is None else local(value, where).strftime("%Y-%m-%d")
