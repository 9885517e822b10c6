"""The read-only allow-list: the one judge of SQL Hypercare sends a monitored system.

Every query a user writes for a monitored source passes here when its file loads and again, in the
source's own dialect, right before it runs: check and reconciliation queries (:mod:`monitor.specs`), the
integration, job and trace queries of the settings (:mod:`monitor.settings`), runbook diagnostics
(``runbooks.lint``, ``runbooks.diagnostics``) and dual-run side queries, filters, measures and column
expressions (:mod:`monitor.dualrun.model`, :mod:`monitor.dualrun.sql`).

The SQL is parsed with sqlglot, per dialect (PostgreSQL, MySQL/MariaDB, SQLite), and every node of the
tree must be on an allow-list: a SELECT (or WITH ... SELECT, UNION ...) with joins, subqueries, aggregates,
window functions, arithmetic, comparisons, CASE, CAST and the functions of :data:`ALLOWED_FUNCTIONS` /
:data:`ALLOWED_FUNCTION_NAMES` (pure computations: strings, numbers, dates, aggregates, a few read-only
catalog functions). Anything else is refused, naming what and where: an unknown function (``dblink_exec``,
``pg_terminate_backend``, ``pg_read_file``, ``pg_advisory_lock``, ``nextval``, a user-defined function
that could write), a schema-qualified function, DML/DDL anywhere (a writable CTE too), ``SELECT ... INTO``,
``FOR UPDATE`` / ``FOR SHARE`` / ``LOCK IN SHARE MODE``, several statements, and MySQL's executable
comments (``/*! ... */``, which MySQL runs and every parser skips).

A file does not say which engine its SQL runs on, so at load time the text is judged in every reading that
parses (what any engine could see counts); at run time only the source's dialect is read. Expressions a user
writes for generated SQL (dual-run filters, measures, column expressions, side queries) are never pasted:
:func:`render_expression` / :func:`render_query` parse them, check them and render them from the tree.

This is defence in depth. What protects the ERP is the database itself: a least-privilege role
(:mod:`monitor.privileges` inspects it) in a read-only transaction with a statement timeout
(:func:`monitor.checks.make_read_only`). docs/security.md says what this covers and what it relies on.
"""
# size: the allow-lists themselves (functions per family, constructs) are most of the module

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from sqlglot import exp

__all__ = [
    "ALLOWED_FUNCTIONS",
    "ALLOWED_FUNCTION_NAMES",
    "READINGS",
    "ReadOnlyRefusal",
    "check_expression",
    "check_query",
    "expression_refusal",
    "query_refusal",
    "render_expression",
    "render_query",
    "require_read_only_sql",
    "sqlglot_dialect",
]

Reading = Literal["postgres", "mysql", "sqlite"]
READINGS: tuple[Reading, ...] = ("postgres", "mysql", "sqlite")
"""The engines a source can be (:data:`monitor.settings.SOURCE_DIALECTS`), as sqlglot reads them."""


class ReadOnlyRefusal(ValueError):
    """SQL for a monitored source that is not on the read-only allow-list; the message says what and where."""


# --- the allow-lists -----------------------------------------------------------------------------------

ALLOWED_FUNCTIONS = frozenset(
    {
        # aggregates
        "Sum", "Count", "Avg", "Min", "Max", "ArrayAgg", "GroupConcat", "Stddev", "StddevPop", "StddevSamp",
        "Variance", "VariancePop", "AnyValue", "LogicalAnd", "LogicalOr", "PercentileCont", "PercentileDisc",
        "Median", "CountIf", "ApproxDistinct",
        # window functions
        "RowNumber", "Rank", "DenseRank", "PercentRank", "CumeDist", "Ntile", "Lag", "Lead", "FirstValue",
        "LastValue", "NthValue",
        # conditionals and casts
        "Coalesce", "Nullif", "If", "Greatest", "Least", "Cast", "TryCast",
        # numbers
        "Abs", "Round", "Floor", "Ceil", "Sign", "Pow", "Sqrt", "Ln", "Log", "Exp", "Trunc",
        # text
        "Lower", "Upper", "Trim", "Substring", "Length", "ByteLength", "BitLength", "Concat", "ConcatWs",
        "Left", "Right", "Replace", "RegexpReplace", "RegexpLike", "RegexpILike", "RegexpExtract",
        "StrPosition", "Pad", "Initcap", "SubstringIndex", "SplitPart", "Reverse", "Chr", "Ascii", "Hex",
        "MD5", "SHA", "SHA2", "Encode", "Decode", "StringToArray", "ArrayToString", "ArraySize", "Translate",
        # dates and times
        "CurrentDate", "CurrentTimestamp", "CurrentTime", "CurrentDatetime", "DateTrunc", "TimestampTrunc",
        "Extract", "DateAdd", "DateSub", "DateDiff", "TimestampDiff", "TimestampAdd", "TimestampSub",
        "TimeToStr", "StrToTime", "StrToDate", "TsOrDsToTimestamp", "TsOrDsToDate", "Date", "Year", "Month",
        "Day", "Quarter", "Week", "DayOfWeek", "DayOfMonth", "DayOfYear", "WeekOfYear", "ToChar", "ToNumber",
        "UnixToTime", "TimeToUnix", "TimeStrToTime", "LastDay", "MonthsBetween", "AddMonths", "Localtime",
        "Localtimestamp", "JustifyDays", "JustifyHours", "JustifyInterval", "MakeInterval", "DateBin",
        "TimeFromParts", "TimestampFromParts", "DateFromParts", "ConvertTimezone", "UtcDate", "UtcTimestamp",
        "UtcTime", "Hour", "Minute", "Second",
        # sets and catalog
        "GenerateSeries", "ExplodingGenerateSeries", "Unnest", "CurrentDatabase", "CurrentUser",
        "CurrentSchema", "CurrentVersion", "Typeof", "ArrayPosition", "StartsWith", "Format", "SHA2Digest",
        "WidthBucket", "Elt", "Unicode", "JSONExtract", "JSONExtractScalar",
    }
)  # fmt: skip
"""Functions sqlglot knows by type (its ``exp`` class names): pure computations on every engine."""

ALLOWED_FUNCTION_NAMES = frozenset(
    {
        # PostgreSQL: text, numbers, dates, arrays, hashing
        "now", "age", "to_char", "to_date", "to_timestamp", "to_number", "date_part", "date_bin",
        "justify_days", "justify_hours", "justify_interval", "make_date", "make_time", "make_timestamp",
        "make_interval", "isfinite", "clock_timestamp", "statement_timestamp", "transaction_timestamp",
        "btrim", "ltrim", "rtrim", "lpad", "rpad", "strpos", "position", "split_part", "format", "concat",
        "md5", "sha256", "sha512", "encode", "convert_to", "convert_from", "cardinality", "array_length",
        "array_position", "string_agg", "array_agg", "bool_and", "bool_or", "every", "width_bucket", "div",
        "mod", "power", "trunc", "ceiling", "char_length", "character_length", "octet_length", "quote_ident",
        "quote_literal", "regexp_match", "regexp_matches", "regexp_split_to_array", "starts_with",
        "jsonb_extract_path_text", "json_extract_path_text", "to_jsonb", "to_json", "row_to_json",
        "jsonb_build_object", "json_build_object", "version", "current_setting",
        # PostgreSQL statistics and catalog reads (the database-health runbooks; pg_monitor grants them)
        "pg_backend_pid", "pg_blocking_pids", "pg_database_size", "pg_relation_size", "pg_table_size",
        "pg_indexes_size", "pg_total_relation_size", "pg_size_pretty", "pg_is_in_recovery",
        "pg_is_wal_replay_paused", "pg_last_wal_receive_lsn", "pg_last_wal_replay_lsn",
        "pg_last_xact_replay_timestamp", "pg_current_wal_lsn", "pg_wal_lsn_diff", "pg_postmaster_start_time",
        "pg_get_userbyid", "pg_get_indexdef", "pg_get_viewdef", "pg_get_constraintdef", "pg_typeof",
        "obj_description", "col_description", "has_table_privilege", "has_schema_privilege",
        # MySQL / MariaDB
        "ifnull", "date_format", "str_to_date", "datediff", "timestampdiff", "timestampadd", "date_add",
        "date_sub", "adddate", "subdate", "curdate", "curtime", "sysdate", "utc_timestamp", "utc_date",
        "unix_timestamp", "from_unixtime", "convert_tz", "conv", "sha1", "sha2", "locate", "instr", "lcase",
        "ucase", "makedate", "last_day", "dayofmonth", "dayofweek", "dayofyear", "weekday", "weekofyear",
        "yearweek", "hour", "minute", "second", "microsecond", "time_to_sec", "sec_to_time", "timediff",
        "period_diff", "period_add", "field", "elt", "find_in_set", "format_bytes", "json_extract",
        "json_unquote", "json_value", "database", "schema",
        # SQLite
        "julianday", "strftime", "date", "time", "datetime", "unixepoch", "printf", "total", "substr",
        "group_concat", "iif", "typeof", "likelihood", "unicode", "char", "glob", "quote",
        # spelt as functions by some readings
        "year", "month", "day", "extract", "coalesce", "nullif", "greatest", "least", "abs", "round", "floor",
        "ceil", "sign", "lower", "upper", "trim", "length", "replace", "left", "right", "reverse",
    }
)  # fmt: skip
"""Functions sqlglot does not know by type, allowed by their (lower-case) name on any engine."""

_ALLOWED_NODES = frozenset(
    {
        # queries
        "Select", "Union", "Intersect", "Except", "With", "CTE", "Subquery", "From", "Join", "Where",
        "Group", "Having", "Order", "Ordered", "Limit", "Offset", "Fetch", "Distinct", "Lateral", "Values",
        "Qualify", "Window", "WindowSpec", "Filter", "WithinGroup", "Cube", "Rollup", "GroupingSets",
        # names and values
        "Column", "Identifier", "Star", "Literal", "Null", "Boolean", "Alias", "Aliases", "TableAlias",
        "Table", "Paren", "Tuple", "Array", "Bracket", "Dot", "Placeholder", "Parameter", "DataType",
        "DataTypeParam", "Interval", "IntervalSpan", "Var", "Collate", "National", "HexString", "ByteString",
        "RawString", "Slice", "PseudoType", "ColumnDef",
        # operators
        "And", "Or", "Xor", "Not", "Neg", "Is", "In", "Between", "Like", "ILike", "SimilarTo", "Escape",
        "EQ", "NEQ", "GT", "GTE", "LT", "LTE", "NullSafeEQ", "NullSafeNEQ", "Add", "Sub", "Mul", "Div",
        "IntDiv", "Mod", "DPipe", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot",
        "BitwiseLeftShift", "BitwiseRightShift", "Any", "All", "Exists", "Case", "Overlaps", "AtTimeZone",
        "RegexpLike", "RegexpILike", "JSONExtract", "JSONExtractScalar", "JSONBExtract",
        "JSONBExtractScalar", "JSONBContains", "ArrayContains", "ArrayContainsAll", "ArrayOverlaps",
        "JSONPath", "JSONPathRoot", "JSONPathKey", "JSONPathSubscript",
    }
)  # fmt: skip
"""sqlglot node types (exact, not subclasses) a read-only query may hold besides allowed functions."""

_WRITES = {
    "Insert": "INSERT",
    "Update": "UPDATE",
    "Delete": "DELETE",
    "Merge": "MERGE",
    "Create": "CREATE",
    "Drop": "DROP",
    "Alter": "ALTER",
    "TruncateTable": "TRUNCATE",
    "Copy": "COPY",
    "Grant": "GRANT",
    "Revoke": "REVOKE",
    "Set": "SET",
    "Pragma": "PRAGMA",
    "Command": "a statement",
    "Use": "USE",
    "Attach": "ATTACH",
    "Analyze": "ANALYZE",
    "Cache": "CACHE",
    "LoadData": "LOAD DATA",
}
"""Node types that write or change the session, named as the user wrote them."""

_EXECUTABLE_COMMENT = re.compile(r"/\*M?!")
_LOCKING = re.compile(
    r"\bFOR\s+(?:NO\s+KEY\s+)?(?:UPDATE|SHARE|KEY\s+SHARE)\b|\bLOCK\s+IN\s+SHARE\s+MODE\b", re.I
)
_INTO = re.compile(r"\bINTO\b", re.I)


def sqlglot_dialect(engine: str) -> Reading:
    """sqlglot's name of an engine: ``postgresql`` -> ``postgres``; ``mariadb`` reads as ``mysql``."""
    if engine in {"postgresql", "postgres"}:
        return "postgres"
    if engine in {"mysql", "mariadb"}:
        return "mysql"
    if engine == "sqlite":
        return "sqlite"
    raise ReadOnlyRefusal(f"SQL for a {engine} source cannot be judged read-only")


# --- judging -------------------------------------------------------------------------------------------


def _position(sql: str, offset: int) -> str:
    line = sql.count("\n", 0, offset) + 1
    column = offset - (sql.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def _where(node: exp.Expr, sql: str, pattern: re.Pattern[str] | None = None) -> str:
    """`` at line L, column C`` of the node: where ``pattern`` (its keyword) is, else the first thing in it
    the parser placed."""
    if pattern is not None and (found := pattern.search(sql)) is not None:
        return f" at {_position(sql, found.start())}"
    for inner in node.walk():
        start = inner.meta.get("start") if inner.meta else None
        if isinstance(start, int):
            return f" at {_position(sql, start)}"
    return ""


def _spelt(node: exp.Expr, sql: str) -> str:
    """A function's name as the user wrote it."""
    from sqlglot import exp  # noqa: PLC0415 - sqlglot is large: imported when SQL is first judged

    start, end = node.meta.get("start"), node.meta.get("end")
    if isinstance(start, int) and isinstance(end, int) and 0 <= start <= end < len(sql):
        return sql[start : end + 1]
    if isinstance(node, exp.Func) and not isinstance(node, exp.Anonymous):
        return node.sql_name().lower()
    return node.name


def _node_problem(node: exp.Expr, sql: str) -> str | None:  # noqa: PLR0911 - one return per refusal
    from sqlglot import exp  # noqa: PLC0415 - sqlglot is large: imported when SQL is first judged

    kind = type(node).__name__
    if isinstance(node, exp.Func) and kind not in _ALLOWED_NODES:
        name = _spelt(node, sql)
        if isinstance(node.parent, exp.Dot) and node.parent.expression is node:
            qualified = node.parent.this.sql()
            return (
                f"calls {qualified}.{name}(){_where(node, sql)}: a schema-qualified function; only the "
                "built-in functions of the read-only allow-list may be called"
            )
        allowed = (
            node.name.lower() in ALLOWED_FUNCTION_NAMES
            if isinstance(node, exp.Anonymous)
            else kind in ALLOWED_FUNCTIONS
        )
        if not allowed:
            return f"calls {name}(){_where(node, sql)}, which is not on the read-only allow-list of functions"
        return None
    if kind in _ALLOWED_NODES:
        return None
    if kind in _WRITES:
        return f"holds {_WRITES[kind]}{_where(node, sql)}: only SELECT reads"
    if isinstance(node, exp.Into):
        return f"holds SELECT ... INTO{_where(node, sql, _INTO)}, which creates a table or writes a file"
    if isinstance(node, exp.Lock):
        return f"holds FOR UPDATE / FOR SHARE{_where(node, sql, _LOCKING)}, which locks rows"
    return f"holds {kind.upper()}{_where(node, sql)}, which is not on the read-only allow-list of constructs"


def _tree_problem(tree: exp.Expr, sql: str) -> str | None:
    for node in tree.walk():
        problem = _node_problem(node, sql)
        if problem is not None:
            return f"must only read: {problem}"
    return None


def _parsed(sql: str, reading: Reading) -> list[exp.Expr] | str:
    """The statements of ``sql`` in one reading, or why it does not parse."""
    import sqlglot  # noqa: PLC0415 - sqlglot is large: imported when SQL is first judged
    from sqlglot.errors import SqlglotError  # noqa: PLC0415 - as above

    try:
        return [s for s in sqlglot.parse(sql, read=reading) if s is not None]
    except SqlglotError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return first[:200]


def _tokens_problem(text: str, reading: Reading) -> str | None:
    """What an expression pasted into generated SQL must not hold, seen token by token (today's rules)."""
    from sqlglot import TokenError, TokenType, tokenize  # noqa: PLC0415 - sqlglot is large

    try:
        tokens = tokenize(text, read=reading)
    except TokenError:
        return None  # this reading cannot read it; the parse says so if none can
    if not tokens:
        return "must be an SQL expression; it is empty"
    depth = 0
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            return "must be one SQL expression, not statements (found ';')"
        if token.comments:
            return "must not hold a comment ('--', '/* */' or '#')"
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
            if depth < 0:
                return "has a ')' without its '('"
    return "has a '(' without its ')'" if depth else None


@lru_cache(maxsize=2048)
def _judge(sql: str, reading: Reading | None, expression: bool) -> str | None:
    if expression and not sql.strip():
        return "must be an SQL expression; it is empty"
    if _EXECUTABLE_COMMENT.search(sql):
        return "must not hold a MySQL executable comment ('/*!' or '/*M!'): MySQL runs what is inside"
    readings = READINGS if reading is None else (reading,)
    trees: list[tuple[Reading, list[exp.Expr]]] = []
    errors: list[str] = []
    for name in readings:
        if expression and (problem := _tokens_problem(sql, name)) is not None:
            return problem
        parsed = _parsed(sql, name)
        if isinstance(parsed, str):
            errors.append(parsed)
        else:
            trees.append((name, parsed))
    if not trees:
        if reading is None:
            return f"is not SQL any supported engine can read: {errors[0]}"
        return f"does not parse as {reading} SQL: {errors[0]}"
    problems = (_statements_problem(statements, sql, expression) for _name, statements in trees)
    return next((p for p in problems if p is not None), None)


def _statements_problem(statements: list[exp.Expr], sql: str, expression: bool) -> str | None:
    from sqlglot import exp  # noqa: PLC0415 - sqlglot is large: imported when SQL is first judged

    if expression:
        if len(statements) != 1:
            return "must be one SQL expression, not statements (found ';')"
        if isinstance(statements[0], exp.Query) and not isinstance(statements[0], exp.Subquery):
            return "must be an SQL expression (a condition or a value), not a query"
    elif len(statements) > 1:
        return "must be one statement (found ';')"
    elif not statements:
        return "must be a single SELECT (or WITH ... SELECT) statement"
    elif not isinstance(statements[0], exp.Query):
        return f"must be a single SELECT (or WITH ... SELECT) statement, not {_statement_kind(statements[0])}"
    return _tree_problem(statements[0], sql)


def _statement_kind(tree: exp.Expr) -> str:
    """What a statement that is not a query is, as a user would name it (``DELETE``, ``CALL``)."""
    from sqlglot import exp  # noqa: PLC0415 - sqlglot is large: imported when SQL is first judged

    if isinstance(tree, exp.Command):
        return str(tree.this).upper()
    kind = type(tree).__name__
    return _WRITES.get(kind, kind.upper())


def query_refusal(sql: str, dialect: str | None = None) -> str | None:
    """Why ``sql`` is not one read-only query (None when it is). ``dialect``: the engine that runs it
    (``postgresql``, ``mysql``, ``mariadb``, ``sqlite``); None: judged in every reading that parses."""
    return _judge(sql, None if dialect is None else sqlglot_dialect(dialect), False)


def expression_refusal(text: str, dialect: str | None = None) -> str | None:
    """Why ``text`` is not one read-only SQL expression (a condition, a value, an aggregate)."""
    return _judge(text, None if dialect is None else sqlglot_dialect(dialect), True)


def check_query(sql: str, dialect: str | None = None) -> str:
    """``sql`` unchanged when it is one read-only query; else :class:`ReadOnlyRefusal` (a ValueError)."""
    problem = query_refusal(sql, dialect)
    if problem is not None:
        raise ReadOnlyRefusal(problem)
    return sql


def check_expression(text: str, dialect: str | None = None) -> str:
    """``text`` unchanged when it is one read-only expression; else :class:`ReadOnlyRefusal`."""
    problem = expression_refusal(text, dialect)
    if problem is not None:
        raise ReadOnlyRefusal(problem)
    return text


def require_read_only_sql(sql: str, engine: str, what: str = "query") -> None:
    """The run-time gate: ``sql`` judged in the dialect of the engine about to run it."""
    problem = query_refusal(sql, engine)
    if problem is not None:
        raise ReadOnlyRefusal(f"refused {what}: {problem}")


# --- rendering -----------------------------------------------------------------------------------------


def _named_binds(tree: exp.Expr) -> exp.Expr:
    """``:name`` binds kept as ``:name`` whatever the dialect renders placeholders as (SQLAlchemy binds)."""
    from sqlglot import exp  # noqa: PLC0415 - sqlglot is large: imported when SQL is first judged

    def keep(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Placeholder) and node.name:
            return exp.var(f":{node.name}")
        return node

    return tree.transform(keep)


@lru_cache(maxsize=1024)
def _render(text: str, engine: str, expression: bool) -> str:
    reading = sqlglot_dialect(engine)
    problem = _judge(text, reading, expression)
    if problem is not None:
        raise ReadOnlyRefusal(problem)
    statements = _parsed(text, reading)
    assert not isinstance(statements, str)  # noqa: S101 - _judge parsed this very text in this reading
    return _named_binds(statements[0]).sql(dialect=reading, comments=False)


def render_expression(text: str, engine: str) -> str:
    """A user's expression, checked and rendered from its syntax tree for ``engine``: never pasted."""
    return _render(text, engine, True)


def render_query(sql: str, engine: str) -> str:
    """A user's query, checked and rendered from its syntax tree for ``engine`` (comments dropped)."""
    return _render(sql, engine, False)
