"""CSV cells a spreadsheet will not run: text that starts like a formula is written as text.

Titles, evidence and error messages come from events, alerts and employees' reports, that is from
outside; ``=HYPERLINK(...)`` or ``@SUM(...)`` in one of them would run when a manager opens the export in
Excel or WPS. Every CSV Hypercare writes passes its cells through :func:`cell` (OWASP's advice: prefix a
single quote). Numbers, and text that is only a number (``-12.50``), are left as they are.
"""

from __future__ import annotations

import re
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_NUMBER = re.compile(r"^[+-]?(\d[\d,]*)?(\.\d+)?([eE][+-]?\d+)?$")


def cell(value: Any) -> Any:
    """``value`` safe to write into a CSV cell."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.match(value.strip()):
        return "'" + value
    return value


def row(values: Any) -> list[Any]:
    """Every cell of a row through :func:`cell`."""
    return [cell(v) for v in values]
