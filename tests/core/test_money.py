"""Amounts shown with their currency and the locale's grouping, and read as people type them."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from core.money import MoneyError, format_money, parse_money


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "shown"),
    [
        ("1250", "CNY", "zh_CN", "¥1,250.00"),
        ("1250", "CNY", "zh_TW", "CN¥1,250.00"),
        ("1234567.5", "EUR", "de_DE", "1.234.567,50\u00a0€"),
        ("1250", "TWD", "zh_TW", "$1,250.00"),
        ("502.53", None, "en_US", "502.53"),
        ("1250000", None, "de_DE", "1.250.000,00"),
    ],
)
def test_amounts_are_shown_with_currency_and_grouping(
    amount: str, currency: str | None, locale: str, shown: str
) -> None:
    assert format_money(Decimal(amount), currency, locale) == shown
    assert format_money(None, currency, locale) == "-"


@pytest.mark.parametrize(
    ("text", "currency", "locale", "amount"),
    [
        ("¥1,250.00", "CNY", "zh_CN", "1250.00"),
        ("￥１，２５０．５０", "CNY", "zh_CN", "1250.50"),  # full-width, as a Chinese IME types it
        ("1250元", "CNY", "zh_CN", "1250"),
        ("RMB 3,000", "CNY", "zh_CN", "3000"),
        ("CNY 1250", "CNY", "en_US", "1250"),
        ("cny1250.5", "CNY", "en_US", "1250.5"),
        ("1250", "CNY", "zh_CN", "1250"),
        ("1 250,00 €", "EUR", "fr_FR", "1250.00"),
        ("1\u202f250,00\u00a0€", "EUR", "fr_FR", "1250.00"),  # what babel itself writes in fr_FR
        ("1.234.567,80", "EUR", "de_DE", "1234567.80"),
        ("1,25", "EUR", "de_DE", "1.25"),
        ("1.250", "EUR", "de_DE", "1250"),  # the locale decides what the text alone cannot
        ("1,250", "CNY", "en_US", "1250"),
        ("1'250.00", "CHF", "de_CH", "1250.00"),
        ("NT$1,000", "TWD", "zh_TW", "1000"),
        ("", "CNY", "zh_CN", None),
    ],
)
def test_amounts_are_read_as_people_write_them(
    text: str, currency: str, locale: str, amount: str | None
) -> None:
    expected = None if amount is None else Decimal(amount)
    assert parse_money(text, currency=currency, locale=locale) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("€100", "amount_at_risk: '€100' is in €; this site records amounts in CNY"),
        ("USD 5", "amount_at_risk: 'USD 5' is in USD; this site records amounts in CNY"),
        ("abc", "amount_at_risk: 'abc' is not an amount"),
        ("1.5.5", "amount_at_risk: '1.5.5' is not an amount"),
        ("1e5", "amount_at_risk: '1e5' is not an amount"),
        ("-5", "amount_at_risk: '-5' is negative"),
        ("1.234", "amount_at_risk: '1.234' has too many decimals (at most 2 decimals)"),
        ("1" * 19, "is too large"),
    ],
)
def test_bad_amounts_name_the_field_and_the_value(text: str, message: str) -> None:
    with pytest.raises(MoneyError, match=re.escape(message)):
        parse_money(text, currency="CNY", locale="zh_CN", field="amount_at_risk")


def test_a_currency_without_minor_units_refuses_decimals() -> None:
    assert parse_money("¥1,250", currency="JPY", locale="ja_JP") == Decimal(1250)
    with pytest.raises(MoneyError, match="at most 0 decimals"):
        parse_money("¥1,250.5", currency="JPY", locale="ja_JP")
