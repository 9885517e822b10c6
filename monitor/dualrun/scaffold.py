"""`hypercare dualrun init`: a first, complete comparison file written from the two tables' schemas.

Both tables are read with SQLAlchemy's inspector (columns, types, primary key) on read-only engines. Columns
pair up by name (case and ``_`` ignored), then by a close name (``acct`` / ``account``, flagged ``guessed``);
the rest are listed as comments. Types become the comparison's types (integer keys get key ranges; decimals
keep the stored scale; timestamps compare to the microsecond). Nothing is normalised: the comments say which
options would, for the user to decide.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, inspect, types

from monitor.dualrun.model import ValueType

__all__ = ["TableColumn", "TableSchema", "comparison_yaml", "read_table"]


@dataclass(frozen=True)
class TableColumn:
    name: str
    type: ValueType
    scale: int | None = None
    declared: str = ""


@dataclass(frozen=True)
class TableSchema:
    table: str
    columns: tuple[TableColumn, ...]
    primary_key: tuple[str, ...]


def _value_type(kind: types.TypeEngine[object]) -> tuple[ValueType, int | None]:
    if isinstance(kind, types.Boolean):
        return "boolean", None
    if isinstance(kind, types.Integer):
        return "integer", None
    if isinstance(kind, types.Numeric) and not isinstance(kind, types.Float):
        return "decimal", kind.scale
    if isinstance(kind, types.DateTime):
        return "timestamp", None
    if isinstance(kind, types.Date):
        return "date", None
    return "text", None


def read_table(engine: Engine, table: str) -> TableSchema:
    """The table's columns and primary key (``schema.table`` names a schema); a clear error when absent."""
    schema, _, name = table.rpartition(".")
    inspector = inspect(engine)
    if not inspector.has_table(name, schema=schema or None):
        raise LookupError(f"table {table} not found in {engine.url.render_as_string(hide_password=True)}")
    columns = []
    for column in inspector.get_columns(name, schema=schema or None):
        kind, scale = _value_type(column["type"])
        columns.append(TableColumn(column["name"], kind, scale, str(column["type"])))
    pk = inspector.get_pk_constraint(name, schema=schema or None).get("constrained_columns") or []
    return TableSchema(table, tuple(columns), tuple(pk))


def _norm(name: str) -> str:
    return name.lower().replace("_", "")


def pair_columns(
    legacy: Sequence[TableColumn], new: Sequence[TableColumn]
) -> list[tuple[TableColumn, TableColumn, bool]]:
    """(legacy, new, guessed) pairs, in the new table's column order."""
    by_norm = {_norm(c.name): c for c in legacy}
    pairs: dict[str, tuple[TableColumn, TableColumn, bool]] = {}
    used: set[str] = set()
    for column in new:
        match = by_norm.get(_norm(column.name))
        if match is not None and match.name not in used:
            pairs[column.name] = (match, column, False)
            used.add(match.name)
    for column in new:
        if column.name in pairs:
            continue
        left = [c.name for c in legacy if c.name not in used]
        close = difflib.get_close_matches(column.name.lower(), [n.lower() for n in left], n=1, cutoff=0.6)
        if not close:
            close = [n.lower() for n in left if n.lower() in column.name.lower() and len(n) >= 3][:1]
        if close:
            match = next(c for c in legacy if c.name.lower() == close[0])
            pairs[column.name] = (match, column, True)
            used.add(match.name)
    return [pairs[c.name] for c in new if c.name in pairs]


def _spec(name: str, legacy: TableColumn, new: TableColumn) -> str:
    parts = [f"name: {name}"]
    if legacy.name != name:
        parts.append(f"legacy: {legacy.name}")
    if new.name != name:
        parts.append(f"new: {new.name}")
    kind = new.type if new.type == legacy.type else _common(legacy, new)
    if kind != "text":
        parts.append(f"type: {kind}")
    scales = [s for s in (legacy.scale, new.scale) if s is not None]
    if kind == "decimal" and scales:
        parts.append(f"scale: {max(scales)}")  # the finer of the stored scales: no rounding
    return "{" + ", ".join(parts) + "}"


def _common(legacy: TableColumn, new: TableColumn) -> ValueType:
    """Two different types: the one both render to (integer + decimal: decimal; else text, compared as is)."""
    kinds = {legacy.type, new.type}
    if kinds == {"integer", "decimal"}:
        return "decimal"
    if kinds == {"date", "timestamp"}:
        return "timestamp"
    return "text"


def comparison_yaml(  # noqa: PLR0917 - the file is made of exactly these
    name: str,
    legacy_source: str,
    new_source: str,
    legacy: TableSchema,
    new: TableSchema,
    entity: str,
) -> str:
    """A complete comparison file, commented, comparing ``legacy`` with ``new``."""
    pairs = pair_columns(legacy.columns, new.columns)
    by_new = {n.name: (lg, n, g) for lg, n, g in pairs}
    key_names = [k for k in new.primary_key if k in by_new]
    if not key_names:
        legacy_pk = set(legacy.primary_key)
        key_names = [n.name for lg, n, _ in pairs if lg.name in legacy_pk]
    lines = [
        f"# Written by `hypercare dualrun init {legacy.table} {new.table}` from the two schemas: check it.",
        f"# Run: hypercare --config hypercare.yaml dualrun run {name}.yaml",
        "# Values are compared exactly as stored: text with its spaces, timestamps to the microsecond,",
        "# decimals at the scale below. Normalise only on purpose (each rule's effect is reported):",
        "#   trim: true / case: upper   (text)      precision: second   (timestamps)",
        "#   legacy_timezone: Asia/Shanghai         (naive legacy timestamps in that zone)",
        '#   map: {"1122": "112201"}                (legacy code -> new code)',
        '#   money: true, tolerance: {abs: "0.01"}  (decimals)',
        f"name: {json.dumps(name)}",
        f"legacy: {legacy_source}          # a source under `sources:` in the settings (global --config)",
        f"new: {new_source}",
        'materiality: "0.00"           # differences whose money affected is at or below this are immaterial',
        "entities:",
        f"  - name: {entity}",
        f'    legacy: {{table: {legacy.table}}}   # or {{query: "SELECT ..."}}; filter: "company = \'A\'"',
        f"    new: {{table: {new.table}}}",
    ]
    if key_names:
        keys = [_spec(k, by_new[k][0], by_new[k][1]) for k in key_names]
        lines.append(f"    key: [{', '.join(keys)}]")
        first = by_new[key_names[0]]
        if first[0].type == first[1].type == "integer":
            lines.append("    # an integer leading key: compared by key ranges (the fast plan)")
        else:
            lines.append("    # not an integer leading key: compared by key-hash buckets (slower)")
    else:
        lines.append("    key: []   # TODO: no primary key found on both sides: name the key columns")
    lines.append("    columns:")
    for legacy_col, new_col, guessed in pairs:
        if new_col.name in key_names:
            continue
        note = f"  # guessed: {legacy_col.name} ({legacy_col.declared}) -> {new_col.name}" if guessed else ""
        if not guessed and legacy_col.type != new_col.type:
            note = f"  # {legacy_col.declared} vs {new_col.declared}"
        if (
            "decimal" in {legacy_col.type, new_col.type}
            and legacy_col.scale is None
            and new_col.scale is None
        ):
            note += "  # no stored scale: compared at 2 places, set scale"
        lines.append(f"      - {_spec(new_col.name, legacy_col, new_col)}{note}")
    paired_legacy = {lg.name for lg, _, _ in pairs}
    paired_new = {n.name for _, n, _ in pairs}
    for label, schema, paired in (("legacy", legacy, paired_legacy), ("new", new, paired_new)):
        rest = [f"{c.name} ({c.declared})" for c in schema.columns if c.name not in paired]
        if rest:
            lines.append(f"    # only in the {label} table, not compared: {', '.join(rest)}")
    lines += [
        "    sample_limit: 1000          # differing rows listed in the result (all are counted)",
        '    # tolerance: {abs: "0.01", days: 0}',
        "    # period: {column: posting_date, grain: month}   # with --as-of: only that day's/month's rows",
    ]
    return "\n".join(lines) + "\n"
