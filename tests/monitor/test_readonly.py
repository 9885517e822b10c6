"""The read-only allow-list (monitor/readonly.py): what a query or an expression for a monitored source may
hold, in every engine's reading at load and in the source's own dialect at run time, and how a user's
expression is rendered from its syntax tree instead of pasted."""

from __future__ import annotations

import pytest
from sqlglot import exp

from monitor.checks import CheckDefinitionError, parse_checks
from monitor.readonly import (
    ALLOWED_FUNCTIONS,
    ReadOnlyRefusal,
    check_query,
    expression_refusal,
    query_refusal,
    render_expression,
    render_query,
)

READS = [
    "SELECT e.id, sum(l.debit) - sum(l.credit) AS diff FROM entry e JOIN line l ON l.entry_id = e.id "
    "GROUP BY e.id HAVING abs(sum(l.debit) - sum(l.credit)) >= 0.005",
    "WITH t AS (SELECT account, amount FROM line WHERE posted_at <= :as_of) "
    "SELECT account, count(*) AS n, coalesce(max(amount), 0) AS top FROM t GROUP BY account",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n) SELECT x FROM c",
    "SELECT id, row_number() OVER (PARTITION BY account ORDER BY posted_at DESC) AS rn, "
    "lag(amount) OVER (ORDER BY id) AS previous FROM line",
    "SELECT CASE WHEN amount < 0 THEN 'credit' ELSE 'debit' END AS side, CAST(amount AS DECIMAL(12, 2)) AS a "
    "FROM line WHERE id IN (SELECT line_id FROM flag) AND EXISTS (SELECT 1 FROM entry WHERE state = 'posted')",
    "SELECT lower(trim(name)) AS name, substr(code, 1, 4) AS prefix, length(name) AS n FROM partner "
    "WHERE name LIKE 'A%' AND code BETWEEN '1000' AND '1999' AND note IS NOT NULL",
    "SELECT id FROM a UNION SELECT id FROM b EXCEPT SELECT id FROM c",
    "SELECT \"update\" AS u, note FROM t WHERE note <> 'delete me; drop table t'",
]
PG_READS = [
    "SELECT date_trunc('month', posted_at) AS m, extract(year FROM posted_at) AS y, now() - posted_at AS age, "
    "to_char(posted_at, 'YYYY-MM') AS ym, x::text AS t FROM line WHERE posted_at > now() - interval '1 day'",
    "SELECT count(*) FILTER (WHERE state = 'idle in transaction') AS idle, pg_blocking_pids(pid) AS blockers "
    "FROM pg_stat_activity WHERE pid <> pg_backend_pid()",
    "SELECT g FROM generate_series(1, 3) AS g",
    "SELECT string_agg(code, ',' ORDER BY code) AS codes FROM account",
]
MYSQL_READS = [
    "SELECT DATE_FORMAT(posted_at, '%Y-%m') AS ym, IFNULL(note, '') AS note, "
    "TIMESTAMPDIFF(SECOND, started_at, finished_at) AS s, CONCAT_WS('-', a, b) AS ab FROM line",
]
SQLITE_READS = [
    "SELECT strftime('%Y-%m', posted_at) AS ym, julianday('now') - julianday(posted_at) AS d FROM line"
]


@pytest.mark.parametrize("sql", READS + PG_READS + MYSQL_READS + SQLITE_READS)
def test_queries_that_only_read_are_on_the_allow_list(sql: str) -> None:
    assert query_refusal(sql) is None


@pytest.mark.parametrize(("sql", "engine"), [(s, "postgresql") for s in READS + PG_READS])
def test_postgres_reads_pass_in_postgres_own_dialect_at_run_time(sql: str, engine: str) -> None:
    assert query_refusal(sql, engine) is None


@pytest.mark.parametrize(
    ("sql", "refusal"),
    [
        (
            "SELECT * FROM dblink_exec('dbname=erp', 'INSERT INTO t VALUES (1)') AS t(s text)",
            "must only read: calls dblink_exec() at line 1, column 15, which is not on the read-only "
            "allow-list of functions",
        ),
        (
            "SELECT a\nFROM t\nWHERE pg_terminate_backend(a) IS NULL",
            "calls pg_terminate_backend() at line 3, column 7",
        ),
        ("SELECT pg_cancel_backend(42)", "calls pg_cancel_backend()"),
        ("SELECT pg_read_file('/etc/passwd')", "calls pg_read_file()"),
        ("SELECT pg_ls_dir('.')", "calls pg_ls_dir()"),
        ("SELECT pg_notify('c', 'x')", "calls pg_notify()"),
        ("SELECT pg_advisory_lock(1)", "calls pg_advisory_lock()"),
        ("SELECT set_config('search_path', 'evil', false)", "calls set_config()"),
        ("SELECT nextval('seq')", "calls nextval()"),
        ("SELECT pg_sleep(600)", "calls pg_sleep()"),
        ("SELECT query_to_xml('UPDATE journal SET amount = 0', true, true, '')", "calls query_to_xml()"),
        ("SELECT erp_post_invoice(42) AS posted", "calls erp_post_invoice()"),
        ("SELECT SLEEP(5), BENCHMARK(1000000, SHA2('x', 256))", "calls SLEEP()"),
        ("SELECT LOAD_FILE('/etc/passwd')", "calls LOAD_FILE()"),
        ("SELECT GET_LOCK('x', 10)", "calls GET_LOCK()"),
        (
            "SELECT public.lower(name) FROM partner",
            "calls public.lower() at line 1, column 15: a schema-qualified function",
        ),
        (
            "WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone",
            "must only read: holds DELETE at line 1",
        ),
        ("WITH u AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM u", "must only read: holds UPDATE"),
        ("WITH i AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM i", "must only read: holds INSERT"),
        ("SELECT id INTO copy FROM t", "holds SELECT ... INTO at line 1, column 11, which creates a table"),
        ("SELECT id INTO @total FROM t", "holds SELECT ... INTO"),
        (
            "SELECT id FROM t INTO OUTFILE '/tmp/x'",
            "is not SQL any supported engine can read",
        ),  # fails closed
        (
            "SELECT id FROM t FOR UPDATE",
            "holds FOR UPDATE / FOR SHARE at line 1, column 18, which locks rows",
        ),
        ("SELECT id FROM t FOR SHARE", "holds FOR UPDATE / FOR SHARE"),
        ("SELECT id FROM t FOR NO KEY UPDATE", "holds FOR UPDATE / FOR SHARE"),
        ("SELECT id FROM t LOCK IN SHARE MODE", "holds FOR UPDATE / FOR SHARE"),
        ("SELECT 1; SELECT 2", "must be one statement (found ';')"),
        ("SELECT '/*' AS a; DELETE FROM t; SELECT '*/' AS b", "must be one statement (found ';')"),
        (
            "UPDATE journal SET amount = 0",
            "must be a single SELECT (or WITH ... SELECT) statement, not UPDATE",
        ),
        ("COPY t TO '/tmp/x'", "must be a single SELECT"),
        ("CALL post_all()", "must be a single SELECT (or WITH ... SELECT) statement, not CALL"),
        ("SELECT 1 /*!50000 , SLEEP(10) */", "must not hold a MySQL executable comment"),
        ("SELECT 1 /*M! , SLEEP(10) */", "must not hold a MySQL executable comment"),
        ("SELECT 'unclosed", "is not SQL any supported engine can read"),
    ],
)
def test_anything_off_the_allow_list_is_refused_naming_what_and_where(sql: str, refusal: str) -> None:
    found = query_refusal(sql)
    assert found is not None and refusal in found, found
    with pytest.raises(ReadOnlyRefusal):
        check_query(sql)


def test_a_function_hidden_from_one_reading_is_seen_in_another() -> None:
    """MySQL reads '#' as a comment, PostgreSQL does not: what any engine could run counts at load."""
    sql = "SELECT 1 # a note\n, pg_terminate_backend(42)"
    assert "calls pg_terminate_backend()" in (query_refusal(sql) or "")


def test_the_run_time_judgement_reads_the_sources_own_dialect() -> None:
    # PostgreSQL's E'' string ends where MySQL's would not: judged as PostgreSQL reads it
    sql = "SELECT E'a\\'', pg_sleep(1)"
    assert "calls pg_sleep()" in (query_refusal(sql, "postgresql") or "")
    assert "does not parse as sqlite SQL" in (
        query_refusal("SELECT x::text FROM t WHERE a # b", "sqlite") or ""
    )
    assert query_refusal("SELECT 1 AS one", "mariadb") is None


def test_a_check_file_names_the_check_the_field_the_function_and_the_line() -> None:
    text = (
        "checks:\n  - id: x.sneaky\n    title: t\n    source: erp\n    category: data\n    severity: P1\n"
        "    sql: |\n      SELECT id\n      FROM journal\n      WHERE dblink_exec('dbname=erp', 'DELETE FROM journal') = 'x'\n"
    )
    with pytest.raises(CheckDefinitionError) as refused:
        parse_checks(text, "checks.yaml")
    assert str(refused.value) == (
        "checks.yaml: check x.sneaky: field 'sql': must only read: calls dblink_exec() at line 3, column 7, "
        "which is not on the read-only allow-list of functions"
    )


@pytest.mark.parametrize(
    ("expression", "refusal"),
    [
        ("log_row(id) IS NOT NULL", "calls log_row() at line 1, column 1"),
        ("id IN (SELECT id FROM journal FOR UPDATE)", "holds FOR UPDATE / FOR SHARE"),
        ("SELECT 1", "must be an SQL expression (a condition or a value), not a query"),
        ("company = 'A'; DELETE FROM t", "must be one SQL expression, not statements (found ';')"),
        ("company = 'A') OR (1 = 1", "has a ')' without its '('"),
        ("company = 'A' -- the rest", "must not hold a comment"),
        ("", "must be an SQL expression; it is empty"),
    ],
)
def test_expressions_are_judged_by_the_same_allow_list(expression: str, refusal: str) -> None:
    found = expression_refusal(expression)
    assert found is not None and refusal in found, found


@pytest.mark.parametrize(
    ("expression", "engine", "rendered"),
    [
        ("status = 'A' AND posted_at <= :as_of", "postgresql", "status = 'A' AND posted_at <= :as_of"),
        ("status = 'A' AND posted_at <= :as_of", "mysql", "status = 'A' AND posted_at <= :as_of"),
        ("note <> 'it''s'", "sqlite", "note <> 'it''s'"),
        ("note <> 'back\\'slash'", "mysql", "note <> 'back''slash'"),
        ("sum(debit - credit)", "mysql", "SUM(debit - credit)"),
        ("substr(posting_date, 1, 7)", "postgresql", "SUBSTRING(posting_date FROM 1 FOR 7)"),
    ],
)
def test_expressions_are_rendered_from_their_syntax_tree_for_the_target_engine(
    expression: str, engine: str, rendered: str
) -> None:
    assert render_expression(expression, engine) == rendered


def test_a_rendered_query_keeps_its_meaning_and_drops_comments() -> None:
    sql = "SELECT code /* the key */, name FROM partner -- customers only\nWHERE kind = 'customer'"
    assert render_query(sql, "postgresql") == "SELECT code, name FROM partner WHERE kind = 'customer'"


def test_rendering_refuses_what_the_allow_list_refuses() -> None:
    with pytest.raises(ReadOnlyRefusal, match=r"calls write_row\(\)"):
        render_expression("write_row(id) = 1", "postgresql")
    with pytest.raises(ReadOnlyRefusal, match="holds UPDATE"):
        render_query("WITH u AS (UPDATE journal SET amount = 0 RETURNING *) SELECT * FROM u", "postgresql")


def test_every_allowed_function_type_is_one_sqlglot_knows() -> None:
    """A sqlglot upgrade that renames a function type must not silently shrink (or widen) the list."""
    unknown = sorted(n for n in ALLOWED_FUNCTIONS if not issubclass(getattr(exp, n, object), exp.Func))
    assert unknown == []


@pytest.mark.parametrize(
    ("sql", "engine"),
    [
        (
            "SELECT localtimestamp, justify_interval(now() - started_at), md5(code), initcap(name), "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY amount), data->>'ref' FROM t "
            "WHERE a IS DISTINCT FROM b AND c = ANY(ARRAY[1, 2]) ORDER BY a NULLS LAST",
            "postgresql",
        ),
        (
            "SELECT GROUP_CONCAT(code SEPARATOR ','), IF(a, b, c), DATE_SUB(NOW(), INTERVAL 1 DAY), "
            "CONVERT_TZ(a, '+00:00', '+08:00'), SEC_TO_TIME(s) FROM t WHERE b REGEXP '^x' LIMIT 5, 10",
            "mariadb",
        ),
        ("SELECT date('now', '-1 day'), typeof(a), total(x), iif(a, 1, 0) FROM t", "sqlite"),
    ],
)
def test_everyday_functions_of_each_engine_are_allowed_in_its_dialect(sql: str, engine: str) -> None:
    assert query_refusal(sql, engine) is None
