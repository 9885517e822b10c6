"""The site: where the business is (its language, time zone, currency and number locale). Every part reads the
same ``site`` section: the UI and notifications show times and amounts with it, the SLA and anomaly
calendars count business days in its zone. Times are stored in UTC whatever it says."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.numbers import is_currency
from pydantic import Field, field_validator

from core.i18n import parse_language
from core.settings import StrictModel


def known_zone(value: str) -> str:
    """``value`` when it is an IANA time zone name; else a :class:`ValueError` saying what is expected."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (an IANA name such as Asia/Shanghai)") from None
    return value


class SiteSettings(StrictModel):
    """``site:`` of the configuration (the demo runs as a Shanghai site: Asia/Shanghai, CNY, zh_CN)."""

    language: str = "en"
    """The language of users who chose none and whose browser asks for none Hypercare speaks:
    ``en``, ``zh_CN`` (简体中文) or ``zh_TW`` (繁體中文)."""
    timezone: str = "UTC"
    """Where times are shown (unless a user chose another zone) and where business days and hours are
    counted (the SLA calendar when ``sla.calendar.timezone`` is not set). An IANA name: Asia/Shanghai."""
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    """ISO 4217 code of the amounts at risk (CNY, EUR...): shown with its symbol, assumed when a reporter
    types a bare number. None: amounts are shown without a currency."""
    locale: str = "en_US"
    """How numbers are written (grouping, decimal mark) when shown and read: ``zh_CN``, ``de_DE``..."""

    @field_validator("language")
    @classmethod
    def _shipped(cls, value: str) -> str:
        return parse_language(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return known_zone(value)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is not None and not is_currency(value):
            raise ValueError(f"unknown currency {value!r} (an ISO 4217 code such as CNY or EUR)")
        return value

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        try:
            Locale.parse(value.replace("-", "_"))
        except (UnknownLocaleError, ValueError):
            raise ValueError(f"unknown locale {value!r} (such as zh_CN, zh_TW, en_US, de_DE)") from None
        return value.replace("-", "_")
