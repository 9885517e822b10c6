"""Values made fit for a JSON column or body: what evidence, samples and audit snapshots store."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any


def jsonable(value: Any, *, float_digits: int | None = None) -> Any:
    """Decimals as exact strings, dates and times as ISO-8601, bytes as hex; floats rounded to
    ``float_digits`` when given (SQLite hands back NUMERIC sums as binary floats: 502.5300000000002)."""
    if isinstance(value, float):
        return value if float_digits is None else round(value, float_digits)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value
