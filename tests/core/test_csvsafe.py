"""CSV exports never hand a spreadsheet a formula taken from outside text."""

from __future__ import annotations

import csv
import io

import pytest

from core.csvsafe import cell
from dashboards.data_service import ParetoRow
from dashboards.present import to_csv


@pytest.mark.parametrize(
    "text",
    ['=HYPERLINK("http://evil.example","x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1"],
)
def test_text_that_starts_like_a_formula_is_written_as_text(text: str) -> None:
    assert cell(text) == "'" + text


@pytest.mark.parametrize(
    "value", ["-12.50", "+3", "1,250.00", "-1e3", -5, 2.5, None, "应收账款 drift", "a=b"]
)
def test_numbers_and_ordinary_text_are_left_alone(value: object) -> None:
    assert cell(value) == value


def test_a_dashboard_download_escapes_a_formula_title() -> None:
    blob = to_csv([ParetoRow('=HYPERLINK("http://evil.example","click")', 3, 0.5, 0.5)])
    (row,) = csv.DictReader(io.StringIO(blob.decode("utf-8-sig")))
    assert row["value"] == '\'=HYPERLINK("http://evil.example","click")'
    assert row["tickets"] == "3"
