"""Canonical text, per dialect: SQL that renders a value the same way on PostgreSQL, MariaDB and SQLite.

The keyed diff hashes rows *inside* each database, so the same business value must become the same bytes
on every engine before it is hashed:

==========  ====================================================================================
type        canonical text
==========  ====================================================================================
text        the value as stored; trimmed (``trim``), upper/lower-cased (``case``), code-mapped (``map``) only
            when the column says so
integer     base-10 integer (``00123``, ``123.0`` and ``123`` are ``123``)
decimal     fixed scale, half away from zero (``10.5`` and ``10.50`` are ``10.50`` at scale 2)
date        ``YYYY-MM-DD``
timestamp   UTC, to the microsecond: ``YYYY-MM-DDTHH:MM:SS.ffffff`` (``precision``: cut to the millisecond or
            second); naive values are read in the side's time zone, ``timestamp with time zone``
            (PostgreSQL) and ``TIMESTAMP`` (MariaDB) columns in UTC
boolean     ``1`` / ``0``
NULL        ``\\N``
==========  ====================================================================================

A row's text is its key columns then its compared columns joined by U+001F; its hash is the first 64 bits
of the SHA-256 of that text's UTF-8 bytes, as an integer. Sums of hashes are compared modulo 2**64
(PostgreSQL sums signed, MariaDB unsigned). SQLite has no SHA-256: :func:`register_sqlite_functions` adds
deterministic Python functions for hashing and for the conversions SQLite lacks.

Cost matters (every row of both tables goes through this SQL), so:

* SHA-256, not MD5: the same price on PostgreSQL, but MariaDB's ``SHA2`` costs about a fifth of its ``MD5``
  (measured: 0.05 vs 0.45 CPU-s per million ~50-byte rows on MariaDB 10.11).
* When the column's type in the source already renders as the canonical text (a :class:`Native` read from
  the driver's cursor description), the conversion is skipped: an integer column needs no ``CAST``, a
  ``DECIMAL(p,s)`` column at the configured scale no ``CAST``/``round``, a ``DATE`` column no
  ``DATE_FORMAT``/``to_char``, a ``NOT NULL`` column (MariaDB reports it) no ``COALESCE``. The text is the
  same either way; the cross-engine tests compare both paths.
"""

# size: the canonical SQL of every type on three engines, its Python twin for SQLite, and the normalisations

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal
from zoneinfo import ZoneInfo

from monitor.dualrun.model import ColumnSpec
from monitor.readonly import render_expression

Dialect = Literal["postgresql", "mysql", "sqlite"]
Side = Literal["legacy", "new"]

NULL_MARK = "\\N"
SEPARATOR = "\x1f"
MOD64 = 1 << 64
BUCKET_BITS = 28
"""Key-hash buckets (non-integer keys) come from the first 28 bits of the key text's SHA-256."""


class NormaliseError(ValueError):
    """A column cannot be normalised on this engine (e.g. a DST time zone on MariaDB without zone tables)."""


def dialect_of(name: str) -> Dialect:
    if name == "postgresql":
        return "postgresql"
    if name in {"mysql", "mariadb"}:
        return "mysql"
    if name == "sqlite":
        return "sqlite"
    raise NormaliseError(f"dual-run supports PostgreSQL, MySQL/MariaDB and SQLite, not {name}")


def literal(value: str) -> str:
    """A SQL string literal (standard quoting; backslashes doubled for MariaDB's default mode too)."""
    return "'" + value.replace("'", "''") + "'"


def _mysql_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def lit(value: str, dialect: Dialect) -> str:
    return _mysql_literal(value) if dialect == "mysql" else literal(value)


def fixed_offset(zone: str) -> str | None:
    """``+08:00`` when the zone has had one UTC offset since 2000 (no DST), else None."""
    tz = ZoneInfo(zone)
    offsets = {
        datetime(year, month, 1, 12, tzinfo=tz).utcoffset() for year in range(2000, 2041) for month in (1, 7)
    }
    if len(offsets) != 1:
        return None
    (offset,) = offsets
    if offset is None:
        return None
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


NativeKind = Literal["integer", "decimal", "date", "text", "other"]


@dataclass(frozen=True)
class Native:
    """What the source's driver says a column is: enough to know which conversions are no-ops."""

    kind: NativeKind
    scale: int | None = None
    nullable: bool = True


_MYSQL_TYPES: dict[int, NativeKind] = {
    **dict.fromkeys((1, 2, 3, 8, 9), "integer"),  # TINY, SHORT, LONG, LONGLONG, INT24
    **dict.fromkeys((0, 246), "decimal"),  # DECIMAL, NEWDECIMAL
    **dict.fromkeys((10, 14), "date"),  # DATE, NEWDATE
    **dict.fromkeys((15, 253, 254), "text"),  # VARCHAR, VAR_STRING, STRING
}
_PG_TYPES: dict[int, NativeKind] = {
    **dict.fromkeys((20, 21, 23), "integer"),  # int8, int2, int4
    1700: "decimal",  # numeric
    1082: "date",
    **dict.fromkeys((25, 1043), "text"),  # text, varchar (not bpchar: its text form drops the padding)
}


def native_of(dialect: Dialect, description: Sequence[Any]) -> Native:
    """A :class:`Native` from one DBAPI cursor description entry (name, type_code, ..., scale, null_ok)."""
    code = description[1]
    kinds = _MYSQL_TYPES if dialect == "mysql" else _PG_TYPES if dialect == "postgresql" else {}
    kind: NativeKind = kinds.get(code, "other") if isinstance(code, int) else "other"
    scale = description[5] if len(description) > 5 and isinstance(description[5], int) else None
    nullable = not (dialect == "mysql" and len(description) > 6 and description[6] is False)
    return Native(kind, scale if kind == "decimal" else None, nullable)


def source_expression(column: ColumnSpec, side: Side, dialect: Dialect, quote: Callable[[str], str]) -> str:
    """The raw column (quoted identifier) or expression for one side: an expression is rendered from its
    syntax tree in the side's dialect, after the read-only allow-list, never pasted as written."""
    expr = column.side(side)
    return quote(expr) if ColumnSpec.is_identifier(expr) else f"({render_expression(expr, dialect)})"


def canonical(
    column: ColumnSpec,
    side: Side,
    dialect: Dialect,
    quote: Callable[[str], str],
    *,
    mapped: bool = True,
    null_mark: bool = True,
    native: Native | None = None,
) -> str:
    """SQL for the column's canonical text on one side (``\\N`` for NULL unless ``null_mark`` is False).

    ``native`` (the source column's type, when known) lets the SQL skip conversions that change nothing.
    """
    raw = source_expression(column, side, dialect, quote)
    expr = _typed(column, side, dialect, raw, native)
    if mapped and column.map and side == "legacy":
        whens = " ".join(f"WHEN {lit(k, dialect)} THEN {lit(v, dialect)}" for k, v in column.map.items())
        expr = f"(CASE {expr} {whens} ELSE {expr} END)"
    if null_mark and (native is None or native.nullable):
        expr = f"COALESCE({expr}, {lit(NULL_MARK, dialect)})"
    return expr


def _lean(column: ColumnSpec, dialect: Dialect, raw: str, native: Native | None) -> str | None:
    """The raw value itself when the source type already renders as the canonical text (None: convert).

    MariaDB renders integers, ``DECIMAL(p,s)`` (with all ``s`` digits) and ``DATE`` (``YYYY-MM-DD``) as the
    canonical text inside ``CONCAT_WS``; PostgreSQL does with ``::text`` (``DateStyle`` is ISO in every
    dual-run session, see :mod:`monitor.dualrun.sql`).
    """
    if native is None or dialect == "sqlite" or column.type != native.kind or column.map:
        return None  # (a code map compares text: MariaDB would compare an integer column numerically)
    if column.type == "decimal" and native.scale != column.decimal_scale:
        return None
    if column.type not in {"integer", "decimal", "date"}:
        return None
    return raw if dialect == "mysql" else f"CAST({raw} AS text)"


def _typed(  # noqa: PLR0911, PLR0912
    column: ColumnSpec, side: Side, dialect: Dialect, raw: str, native: Native | None = None
) -> str:
    kind = column.type
    lean = _lean(column, dialect, raw, native)
    if lean is not None:
        return lean
    if kind == "text":
        if dialect == "postgresql":
            expr = f"CAST({raw} AS text)"
            expr = f"btrim({expr})" if column.trim else expr
        elif dialect == "mysql":
            string = native is not None and native.kind == "text"
            expr = f"CONVERT({raw if string else f'CAST({raw} AS CHAR)'} USING utf8mb4)"
            expr = f"TRIM({expr})" if column.trim else expr
        else:
            expr = f"CAST({raw} AS TEXT)"
            expr = f"trim({expr})" if column.trim else expr
        if column.case != "preserve":
            fn = "upper" if column.case == "upper" else "lower"
            expr = f"hc_{fn}({expr})" if dialect == "sqlite" else f"{fn.upper()}({expr})"
        return expr
    if kind == "integer":
        if dialect == "postgresql":
            return f"CAST(CAST({raw} AS bigint) AS text)"
        if dialect == "mysql":
            return f"CAST(CAST({raw} AS SIGNED) AS CHAR)"
        return f"hc_int({raw})"
    if kind == "decimal":
        scale = column.decimal_scale
        if dialect == "postgresql":
            return f"CAST(round(CAST({raw} AS numeric), {scale}) AS text)"
        if dialect == "mysql":
            return f"CAST(CAST({raw} AS DECIMAL(38,{scale})) AS CHAR)"
        return f"hc_dec({raw}, {scale})"
    if kind == "boolean":
        if dialect == "postgresql":
            test = f"CAST({raw} AS integer) <> 0"
        elif dialect == "mysql":
            test = f"{raw} <> 0"
        else:
            test = f"{raw} IN (1, '1', 't', 'true', 'TRUE')"
        return f"(CASE WHEN {raw} IS NULL THEN NULL WHEN {test} THEN '1' ELSE '0' END)"
    if kind == "date":
        if dialect == "postgresql":
            return f"to_char(CAST({raw} AS date), 'YYYY-MM-DD')"
        if dialect == "mysql":
            return f"DATE_FORMAT({raw}, '%Y-%m-%d')"
        return f"hc_date({raw})"
    # timestamp
    zone = column.timezone(side)
    if dialect == "postgresql":
        stamp = f"CAST({raw} AS timestamp)"  # timestamptz -> UTC wall time: the session runs in UTC
        if zone != "UTC":
            stamp = f"(({stamp} AT TIME ZONE {literal(zone)}) AT TIME ZONE 'UTC')"
        return f"to_char({stamp}, {literal(_PG_STAMP[column.precision])})"
    if dialect == "mysql":
        stamp = f"CAST({raw} AS DATETIME(6))"
        if zone != "UTC":
            offset = fixed_offset(zone)
            src = _mysql_literal(offset if offset is not None else zone)
            stamp = f"CONVERT_TZ({stamp}, {src}, '+00:00')"
        text = f"DATE_FORMAT({stamp}, '%Y-%m-%dT%H:%i:%s.%f')"
        width = _STAMP_WIDTH[column.precision]
        return text if width == 26 else f"LEFT({text}, {width})"
    return f"hc_ts({raw}, {literal(zone)}, {_STAMP_WIDTH[column.precision]})"


_PG_STAMP = {
    "second": 'YYYY-MM-DD"T"HH24:MI:SS',
    "millisecond": 'YYYY-MM-DD"T"HH24:MI:SS.MS',
    "microsecond": 'YYYY-MM-DD"T"HH24:MI:SS.US',
}
_STAMP_WIDTH = {"second": 19, "millisecond": 23, "microsecond": 26}
"""Characters of ``YYYY-MM-DDTHH:MM:SS.ffffff`` kept at each precision (truncated, never rounded)."""


@dataclass(frozen=True)
class Normalisation:
    """One normalisation a column's config asks for (``memo.trim``, ``posted_at.timezone``...): the rows it
    changes are counted per side, so a report says how many rows matched only after it."""

    name: str
    column: ColumnSpec
    without: ColumnSpec
    """The same column with this one normalisation switched off."""
    sides: tuple[Side, ...]


def normalisations(columns: Sequence[ColumnSpec]) -> list[Normalisation]:
    """Every explicit normalisation of these columns (none by default: values are compared as stored)."""
    found: list[Normalisation] = []
    both: tuple[Side, ...] = ("legacy", "new")
    for c in columns:
        if c.type == "text" and c.trim:
            found.append(Normalisation(f"{c.name}.trim", c, c.model_copy(update={"trim": False}), both))
        if c.type == "text" and c.case != "preserve":
            found.append(Normalisation(f"{c.name}.case", c, c.model_copy(update={"case": "preserve"}), both))
        if c.type == "timestamp":
            zones: tuple[Side, ...] = tuple(s for s in both if c.timezone(s) != "UTC")
            if zones:
                utc = c.model_copy(update={"legacy_timezone": "UTC", "new_timezone": "UTC"})
                found.append(Normalisation(f"{c.name}.timezone", c, utc, zones))
            if c.precision != "microsecond":
                exact = c.model_copy(update={"precision": "microsecond"})
                found.append(Normalisation(f"{c.name}.precision", c, exact, both))
        if c.type == "decimal":
            found.append(Normalisation(f"{c.name}.scale", c, c.model_copy(update={"scale": 12}), both))
        if c.map:
            found.append(Normalisation(f"{c.name}.map", c, c, ("legacy",)))
    return found


def changed_flag(rule: Normalisation, side: Side, dialect: Dialect, quote: Callable[[str], str]) -> str:
    """SQL: 1 when the rule changes this row's value on this side, else 0 (always 0 on a side it skips)."""
    if side not in rule.sides:
        return "0"
    if rule.name.endswith(".map"):
        mapped = canonical(rule.column, side, dialect, quote)
        return _differ(mapped, canonical(rule.column, side, dialect, quote, mapped=False), dialect)
    if rule.name.endswith(".scale"):
        raw = source_expression(rule.column, side, dialect, quote)
        scale = rule.column.decimal_scale
        if dialect == "postgresql":
            number = f"CAST({raw} AS numeric)"
            return f"(CASE WHEN round({number}, {scale}) <> {number} THEN 1 ELSE 0 END)"
        if dialect == "mysql":
            exact, rounded = f"CAST({raw} AS DECIMAL(65,30))", f"CAST({raw} AS DECIMAL(38,{scale}))"
            return f"(CASE WHEN {exact} <> {rounded} THEN 1 ELSE 0 END)"
        return f"hc_rounds({raw}, {scale})"
    return _differ(
        canonical(rule.column, side, dialect, quote), canonical(rule.without, side, dialect, quote), dialect
    )


def _differ(a: str, b: str, dialect: Dialect) -> str:
    """1 when two (non-NULL) texts differ byte for byte (MariaDB's PAD SPACE collations ignore trailing
    spaces in ``<>``: its texts are compared as binary)."""
    if dialect == "mysql":
        a, b = f"CAST({a} AS BINARY)", f"CAST({b} AS BINARY)"
    return f"(CASE WHEN {a} <> {b} THEN 1 ELSE 0 END)"


def needs_zone_tables(columns: Sequence[ColumnSpec], side: Side) -> list[str]:
    """Zones MariaDB can only convert with its time zone tables loaded (zones with DST)."""
    return sorted(
        {
            c.timezone(side)
            for c in columns
            if c.type == "timestamp" and c.timezone(side) != "UTC" and fixed_offset(c.timezone(side)) is None
        }
    )


def concat(parts: Sequence[str], dialect: Dialect) -> str:
    """The parts joined by the separator (parts are never NULL: they carry the NULL marker)."""
    if dialect == "mysql":
        return f"CONCAT_WS({lit(SEPARATOR, dialect)}, {', '.join(parts)})"
    return f" || {literal(SEPARATOR)} || ".join(parts) if len(parts) > 1 else parts[0]


def _pg_sha_hex(text_expr: str, nbytes: int) -> str:
    """PostgreSQL: the first ``nbytes`` bytes of SHA-256(UTF-8 text), as hex."""
    return f"encode(substring(sha256(convert_to({text_expr}, 'UTF8')) from 1 for {nbytes}), 'hex')"


def row_hash(text_expr: str, dialect: Dialect) -> str:
    """An integer: the first 64 bits of SHA-256(text) (signed on PostgreSQL and SQLite, unsigned on MariaDB).

    MariaDB hashes the text's bytes in its character set: the text is utf8mb4 (text columns are converted,
    everything else renders as ASCII).
    """
    if dialect == "postgresql":
        return f"CAST(CAST('x' || {_pg_sha_hex(text_expr, 8)} AS bit(64)) AS bigint)"
    if dialect == "mysql":
        return f"CAST(CONV(LEFT(SHA2({text_expr}, 256), 16), 16, 10) AS UNSIGNED)"
    return f"hc_h64({text_expr})"


def hash_sum(hash_expr: str, dialect: Dialect) -> str:
    """An aggregate over row hashes whose value modulo 2**64 is the same on every engine."""
    if dialect == "sqlite":
        return f"hc_sum64({hash_expr})"
    return f"SUM({hash_expr})"


def key_bucket(text_expr: str, dialect: Dialect) -> str:
    """A 28-bit integer from the SHA-256 of a key's text: buckets for keys that are not integers."""
    if dialect == "postgresql":
        return f"CAST(CAST('x' || substr({_pg_sha_hex(text_expr, 4)}, 1, 7) AS bit(28)) AS integer)"
    if dialect == "mysql":
        return f"CAST(CONV(LEFT(SHA2({text_expr}, 256), 7), 16, 10) AS UNSIGNED)"
    return f"hc_kb({text_expr})"


def mod64(value: Any) -> int:
    """A hash sum as returned by any engine, reduced modulo 2**64."""
    if value is None:
        return 0
    return int(Decimal(str(value))) % MOD64


# --- the same in Python (SQLite functions, and checks in tests) ------------------------------------------


def py_hash64(text: str) -> int:
    """Signed 64-bit: the first 16 hex digits of SHA-256 (what PostgreSQL's bit(64)::bigint gives)."""
    value = int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:16], 16)
    return value - MOD64 if value >= 1 << 63 else value


def py_key_bucket(text: str) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:7], 16)


def py_decimal(value: Any, scale: int) -> str | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    result = number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    return str(result if result != 0 else abs(result))


def py_integer(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return str(int(Decimal(str(value).strip())))
    except (InvalidOperation, ValueError):
        return None


def _parse_stamp(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)  # noqa: DTZ001 - a naive wall time by design
    text = str(value).strip().replace("T", " ")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def py_date(value: Any) -> str | None:
    stamp = _parse_stamp(value)
    return stamp.date().isoformat() if stamp is not None else None


def py_timestamp(value: Any, zone: str, width: int = 26) -> str | None:
    """UTC, ``YYYY-MM-DDTHH:MM:SS.ffffff`` cut to ``width`` characters (19: seconds, 23: milliseconds)."""
    stamp = _parse_stamp(value)
    if stamp is None:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=ZoneInfo(zone))
    utc = stamp.astimezone(UTC).replace(tzinfo=None)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%f")[:width]


def py_rounds(value: Any, scale: int) -> int:
    """1 when rounding the value to ``scale`` decimal places changes it (SQLite's ``hc_rounds``)."""
    if value is None:
        return 0
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return 0
    return int(number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP) != number)


class _Sum64:
    def __init__(self) -> None:
        self.total = 0

    def step(self, value: int | None) -> None:
        if value is not None:
            self.total = (self.total + value) % MOD64

    def finalize(self) -> str:
        return str(self.total)


def register_sqlite_functions(conn: sqlite3.Connection) -> None:
    """Give a SQLite connection the functions the canonical SQL uses (deterministic, so indexable)."""
    conn.create_function("hc_h64", 1, lambda t: None if t is None else py_hash64(t), deterministic=True)
    conn.create_function("hc_kb", 1, lambda t: None if t is None else py_key_bucket(t), deterministic=True)
    conn.create_function("hc_dec", 2, py_decimal, deterministic=True)
    conn.create_function("hc_int", 1, py_integer, deterministic=True)
    conn.create_function("hc_date", 1, py_date, deterministic=True)
    conn.create_function("hc_ts", 3, py_timestamp, deterministic=True)
    conn.create_function("hc_rounds", 2, py_rounds, deterministic=True)
    conn.create_function("hc_upper", 1, lambda t: None if t is None else str(t).upper(), deterministic=True)
    conn.create_function("hc_lower", 1, lambda t: None if t is None else str(t).lower(), deterministic=True)
    conn.create_aggregate("hc_sum64", 1, _Sum64)  # type: ignore[arg-type]  # typeshed wants a Protocol


def days_between(legacy: str, new: str) -> int | None:
    """Whole days from the legacy to the new canonical date/timestamp text, None when not dates."""
    a, b = _parse_stamp(legacy), _parse_stamp(new)
    if a is None or b is None:
        return None
    delta: timedelta = b - a
    return round(delta.total_seconds() / 86_400)
