"""Money as people write it: amounts shown with their currency and the locale's grouping, and amounts typed
the way people type them (``¥1,250.00``, ``1 250,00 €``, ``CNY 1250``, ``1250``) read exactly as Decimal.

Shown: ``format_money(Decimal("1250"), "CNY", "zh_CN")`` is ``¥1,250.00``; ``de_DE`` gives ``1.250,00 CN¥``;
without a currency, the number alone with the locale's grouping. Machine formats (CSV, the API) keep the
plain number and name the currency in a column or field of its own.

Read: the currency (a symbol or an ISO code, before or after the number) is taken off and must be the
site's; the number's decimal mark is the last ``.`` or ``,`` followed by one or two digits, or the locale's
when the text alone cannot tell (``1,250`` is 1250 in en_US and 1.25 in de_DE); spaces, no-break spaces and
apostrophes group digits. Full-width characters (``１２５０``, ``，``) are read as their plain forms.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from babel import Locale
from babel.numbers import (
    format_currency,
    format_decimal,
    get_currency_precision,
    get_currency_symbol,
    get_decimal_symbol,
    is_currency,
)

MAX_AMOUNT = Decimal(10) ** 18
"""Amounts are Numeric(20, 2) in the store."""
_SYMBOLS: dict[str, tuple[str, ...]] = {
    "CNY": ("CN¥", "RMB", "¥", "元", "￥"),
    "JPY": ("JP¥", "¥", "円", "￥"),
    "USD": ("US$", "$"),
    "TWD": ("NT$", "$"),
    "HKD": ("HK$", "$"),
    "EUR": ("€",),
    "GBP": ("£",),
}
"""Common ways of writing a currency beyond its ISO code and the locale's own symbol (``¥`` is yuan on a
CNY site and yen on a JPY one)."""
_GROUPING = " \u00a0\u202f\u2009'\u2019_"


class MoneyError(ValueError):
    """An amount that cannot be read; the message names the field and the value."""


@lru_cache(maxsize=8192)
def format_money(
    amount: Decimal | None, currency: str | None, locale: str = "en_US", *, empty: str = "-"
) -> str:
    """``amount`` with its currency's symbol and the locale's grouping (``¥1,250.00``). Remembered: babel
    takes about 0.2 ms an amount, and a queue page shows a hundred."""
    if amount is None:
        return empty
    if currency is None:
        return format_decimal(amount, format="#,##0.00", locale=locale)
    return format_currency(amount, currency, locale=locale)


def _symbols(currency: str, locale: str) -> tuple[str, ...]:
    found = {currency, get_currency_symbol(currency, locale), get_currency_symbol(currency, "en_US")}
    found.update(_SYMBOLS.get(currency, ()))
    return tuple(sorted(found, key=len, reverse=True))  # the longest first: CN¥ before ¥


@lru_cache(maxsize=32)
def _known_marks(locale: str) -> tuple[str, ...]:
    """Every symbol or code the reader recognises as naming some currency, longest first."""
    marks = {s for symbols in _SYMBOLS.values() for s in symbols}
    marks.update(Locale.parse(locale).currency_symbols.values())
    return tuple(sorted((m for m in marks if not m.isdigit()), key=len, reverse=True))


def _take_currency(text: str, currency: str | None, locale: str) -> tuple[str, str | None]:
    """The text without its currency mark, and the ISO code that mark names (None: no mark)."""
    code = re.fullmatch(r"\s*([A-Za-z]{3})\s*(.*?)\s*|\s*(.*?)\s*([A-Za-z]{3})\s*", text)
    if code is not None:
        iso = (code.group(1) or code.group(4)).upper()
        if is_currency(iso):
            return (code.group(2) if code.group(1) else code.group(3)), iso
    if currency is not None:
        for mark in _symbols(currency, locale):
            if text.startswith(mark) or text.endswith(mark):
                rest = text[len(mark) :] if text.startswith(mark) else text[: -len(mark)]
                return rest.strip(), currency
    for mark in _known_marks(locale):
        if text.startswith(mark) or text.endswith(mark):
            return text, mark  # a currency, but not the site's: named as written
    return text, None


def _check_groups(groups: list[str], text: str) -> None:
    """Grouped digits: one to three, then threes (``1,234,567``; not ``1.5.5``)."""
    if not 1 <= len(groups[0]) <= 3 or any(len(group) != 3 for group in groups[1:]):
        raise InvalidOperation(text)


def _number(text: str, locale: str) -> Decimal:
    digits = text
    for mark in _GROUPING:
        digits = digits.replace(mark, " ")
    digits = digits.replace(" ", "")
    if not re.fullmatch(r"[+-]?[0-9.,]*[0-9][0-9.,]*", digits):
        raise InvalidOperation(text)
    last = max(digits.rfind("."), digits.rfind(","))
    if last >= 0:
        mark, decimals = digits[last], digits[last + 1 :]
        other = "," if mark == "." else "."
        several = digits.count(mark) > 1
        if several or (len(decimals) == 3 and other not in digits and mark != get_decimal_symbol(locale)):
            decimal_mark = None  # 1,250 (en) / 1.250 (de) / 1,250,000: grouping only
        else:
            decimal_mark = mark
        if decimal_mark is None:
            _check_groups(digits.lstrip("+-").split(mark), text)
            digits = digits.replace(mark, "")
        else:
            integer = digits[:last]
            if mark in integer:
                raise InvalidOperation(text)
            if other in integer:
                _check_groups(integer.lstrip("+-").split(other), text)
            digits = f"{integer.replace(other, '')}.{decimals}"
    return Decimal(digits)


def parse_money(
    text: str, *, currency: str | None, locale: str = "en_US", field: str = "amount"
) -> Decimal | None:
    """The amount ``text`` says, in ``currency`` (the site's); None for an empty text. A text naming another
    currency, not a number, negative, too large or finer than the currency's minor unit is a
    :class:`MoneyError` naming ``field`` and the value."""
    raw = text
    text = unicodedata.normalize("NFKC", text).strip()
    if not text:
        return None
    rest, named = _take_currency(text, currency, locale)
    if named is not None and named != currency:
        site = f"this site records amounts in {currency}" if currency else "this site records no currency"
        raise MoneyError(f"{field}: {raw!r} is in {named}; {site}")
    try:
        amount = _number(rest.strip(), locale)
    except (InvalidOperation, ValueError):
        raise MoneyError(
            f"{field}: {raw!r} is not an amount (write it like 1250.00, ¥1,250.00 or CNY 1250)"
        ) from None
    places = get_currency_precision(currency) if currency else 2
    exponent = amount.as_tuple().exponent
    if not amount.is_finite() or not isinstance(exponent, int):
        raise MoneyError(f"{field}: {raw!r} is not an amount")
    if amount < 0:
        raise MoneyError(f"{field}: {raw!r} is negative; give the amount at risk as a positive number")
    if amount >= MAX_AMOUNT:
        raise MoneyError(f"{field}: {raw!r} is too large")
    if exponent < -places:
        raise MoneyError(f"{field}: {raw!r} has too many decimals (at most {places} decimals)")
    return amount.quantize(Decimal(1).scaleb(-places))
