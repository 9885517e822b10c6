"""Public holidays and make-up working days of a country, from the `holidays` library.

China (CN) moves weekend days to make long breaks: the State Council's yearly arrangement gives days off
around the Spring Festival or National Day and makes some Saturdays or Sundays working days (调休). Taiwan
(TW) does the same now and then. The library carries both: public holidays (with the days off moved into a
break) and ``weekend_workdays``. For a year whose official arrangement it does not yet know, it computes the
fixed and lunar holidays by rule and knows no make-up day: list those in the calendar's own ``workdays``.

Both the SLA calendar (tickets/calendar.py) and the anomaly business calendar (anomaly/calendar.py) ask here.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache


class UnknownCountry(ValueError):
    """The `holidays` library has no calendar for this country code."""


@lru_cache(maxsize=256)
def country_days(country: str, year: int) -> tuple[frozenset[date], frozenset[date]]:
    """(public holidays, make-up working days) of ``country`` in ``year``."""
    import holidays  # noqa: PLC0415 - the country tables are large: imported when a calendar first asks

    try:
        found = holidays.country_holidays(country, years=year)
    except NotImplementedError:
        raise UnknownCountry(f"country {country!r} is not known to the holidays library") from None
    rest = frozenset(d for d in found if d.year == year)
    worked = frozenset(d for d in getattr(found, "weekend_workdays", ()) if d.year == year)
    return rest, worked


def known_country(country: str) -> str:
    """``country`` upper-cased when the `holidays` library knows it; else :class:`UnknownCountry`."""
    import holidays  # noqa: PLC0415 - the country tables are large: imported when a calendar first asks

    code = country.strip().upper()
    if code not in holidays.list_supported_countries():
        raise UnknownCountry(
            f"country {country!r} is not known to the holidays library (ISO 3166 codes: CN, TW, DE...)"
        )
    return code
