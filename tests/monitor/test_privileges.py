"""The read-only promise against real databases: the operator guide's least-privilege users run checks and
pass inspection; privileged users are refused unless allowed; with dblink installed, a check calling
dblink_exec (or a server-signal, file, notify or lock function) is refused when its file loads and never
reaches the ERP; and the guide's PostgreSQL role could not have run dblink_exec even so."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import yaml
from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from core.errors import ConfigError
from monitor.checks import CheckDefinitionError, CheckSpec, load_path, run_check
from monitor.privileges import announce, inspect_source, refuse_privileged
from monitor.settings import SourceSettings
from monitor.sources import source_engine
from tests.servers import MARIADB_URL, PG_URL, fresh_database

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operator-guide.md"
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
PASSWORD = "Hc-s3cret-pw"
JOURNAL = [
    "CREATE TABLE journal (id integer PRIMARY KEY, account varchar(10), amount numeric(12,2))",
    *(f"INSERT INTO journal VALUES ({n}, '{1000 + n % 3}', {n * 10}.50)" for n in range(1, 19)),
]
UNBALANCED = CheckSpec(
    id="gl.large_lines",
    title="Journal lines above 150",
    source="erp",
    sql="SELECT id, amount FROM journal WHERE amount > :limit ORDER BY id",
    params={"limit": 150},
    category="data",
    severity="P3",
    key_columns=("id",),
)


def guide_recipe(engine: str, *, user: str, database: str, password: str = PASSWORD) -> str:
    """The operator guide's least-privilege SQL for ``engine`` (its heading), for this user and database."""
    guide = GUIDE.read_text(encoding="utf-8")
    found = re.search(rf"\*\*{re.escape(engine)}\*\*\n```sql\n(.*?)```", guide, re.S)
    assert found is not None, f"docs/operator-guide.md has no {engine} recipe"
    sql = found.group(1).replace("hc_monitor", user).replace("'...'", f"'{password}'")
    return re.sub(r"\berp\b", database, sql)


@dataclass
class PgErp:
    admin_url: str
    database: str
    roles: list[str] = field(default_factory=list)
    """Roles made for the test (roles are the cluster's: dropped after the database)."""

    def url_as(self, user: str, password: str = PASSWORD) -> str:
        return make_url(self.admin_url).set(username=user, password=password).render_as_string(False)

    def run(self, sql: str) -> None:
        """As the database's owner (a superuser here), in autocommit: the recipe, grants, DDL."""
        conninfo = make_url(self.admin_url).set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql.encode())  # no parameters: '%s' in the recipe's format() stays as written


@pytest.fixture
def pg_erp(tmp_path: Path) -> Iterator[PgErp]:
    """An ERP database with 18 journal lines and the dblink extension; the roles made in it dropped after."""
    database = fresh_database("postgres", tmp_path)
    url = next(database)
    erp = PgErp(url, make_url(url).database or "")
    erp.run("CREATE EXTENSION dblink")
    erp.run(";\n".join(JOURNAL))
    yield erp
    next(database, None)  # drops the database, and with it the roles' grants there
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for role in erp.roles:
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
    admin.dispose()


def new_role(erp: PgErp, *, recipe: bool = True) -> str:
    role = f"hc_ro_{uuid.uuid4().hex[:8]}"
    erp.roles.append(role)
    if recipe:
        erp.run(guide_recipe("PostgreSQL", user=role, database=erp.database))
    else:
        erp.run(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
    return role


def settings_for(url: str, *, allow: bool = False) -> SourceSettings:
    return SourceSettings(url=SecretStr(url), allow_privileged=allow)


# --- PostgreSQL ----------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_the_guides_postgres_role_runs_checks_and_passes_inspection(pg_erp: PgErp) -> None:
    role = new_role(pg_erp)
    report = inspect_source("erp", settings_for(pg_erp.url_as(role)))
    assert report.error is None and report.problems == () and not report.refused, report.describe()
    assert report.user == role
    engine = source_engine(pg_erp.url_as(role))
    result = run_check(UNBALANCED, engine, now=NOW)
    engine.dispose()
    assert result.status == "fail" and result.error is None
    assert [e["id"] for e in result.entities] == [str(n) for n in range(15, 19)]


@pytest.mark.postgres
def test_the_guides_postgres_role_cannot_run_dblink_exec_even_past_the_allow_list(pg_erp: PgErp) -> None:
    """Defence in depth: the database refuses what the allow-list refuses first."""
    role = new_role(pg_erp)
    engine = create_engine(pg_erp.url_as(role))
    target = f"dbname={pg_erp.database} user={role} password={PASSWORD} host=127.0.0.1"
    with (
        engine.connect() as conn,
        pytest.raises(DBAPIError, match="permission denied for function dblink_exec"),
    ):
        conn.execute(text("SELECT dblink_exec(:target, 'DELETE FROM journal')"), {"target": target})
    engine.dispose()


@pytest.mark.postgres
def test_a_superuser_is_refused_and_its_password_never_shown(pg_erp: PgErp) -> None:
    url = make_url(pg_erp.admin_url).set(password="Never-sh0wn").render_as_string(False)
    report = inspect_source("erp", settings_for(url))
    assert report.refused and "is a superuser" in report.problems
    assert report.describe().startswith(f"source 'erp' (postgresql, user {make_url(url).username}) may do")
    with pytest.raises(ConfigError, match=r"source 'erp' .* is a superuser.*allow_privileged: true"):
        refuse_privileged([report])
    assert "Never-sh0wn" not in report.describe()


@pytest.mark.postgres
def test_a_privileged_source_allowed_knowingly_runs_with_a_loud_warning(
    pg_erp: PgErp, caplog: pytest.LogCaptureFixture
) -> None:
    url = make_url(pg_erp.admin_url).set(password="Never-sh0wn").render_as_string(False)
    report = inspect_source("erp", settings_for(url, allow=True))
    refuse_privileged([report])  # allowed: no refusal
    with caplog.at_level(logging.WARNING, logger="monitor.privileges"):
        shown = announce([report])
    assert shown == [report.describe()]
    assert "runs with a privileged user (allow_privileged: true): is a superuser" in shown[0]
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and record.source == "erp"  # type: ignore[attr-defined]
    assert "PRIVILEGED SOURCE: source 'erp'" in record.getMessage()
    assert "Never-sh0wn" not in caplog.text


@pytest.mark.postgres
def test_the_owner_of_the_monitored_tables_is_refused(pg_erp: PgErp) -> None:
    role = new_role(pg_erp, recipe=False)
    pg_erp.run(f"GRANT CONNECT ON DATABASE {pg_erp.database} TO {role}; ALTER TABLE journal OWNER TO {role}")
    report = inspect_source("erp", settings_for(pg_erp.url_as(role)))
    assert report.refused
    assert "owns 1 table(s) or view(s)" in report.problems


@pytest.mark.parametrize(
    ("grant", "problem"),
    [
        ("GRANT EXECUTE ON FUNCTION dblink_exec(text, text) TO {role}", "may EXECUTE dblink_exec"),
        ("GRANT EXECUTE ON FUNCTION pg_read_file(text) TO {role}", "may EXECUTE pg_read_file"),
        ("GRANT EXECUTE ON FUNCTION pg_ls_dir(text) TO {role}", "may EXECUTE pg_ls_dir"),
        ("GRANT pg_signal_backend TO {role}", "pg_cancel_backend, pg_terminate_backend"),
        ("GRANT pg_read_server_files TO {role}", "is a member of pg_read_server_files"),
        ("GRANT INSERT, DELETE ON journal TO {role}", "may INSERT, UPDATE, DELETE or TRUNCATE 1 table(s)"),
    ],
)
@pytest.mark.postgres
def test_a_role_that_could_reach_outside_or_write_is_refused(pg_erp: PgErp, grant: str, problem: str) -> None:
    role = new_role(pg_erp)
    pg_erp.run(grant.format(role=role))
    report = inspect_source("erp", settings_for(pg_erp.url_as(role)))
    assert report.refused
    assert any(problem in p for p in report.problems), report.problems


@pytest.mark.postgres
def test_without_the_guides_dblink_revoke_every_role_could_run_dblink(pg_erp: PgErp) -> None:
    """Why the recipe revokes dblink: the extension grants EXECUTE to PUBLIC."""
    role = new_role(pg_erp, recipe=False)
    pg_erp.run(f"GRANT CONNECT ON DATABASE {pg_erp.database} TO {role}")
    report = inspect_source("erp", settings_for(pg_erp.url_as(role)))
    assert report.refused and any("dblink_exec" in p for p in report.problems), report.problems


HOSTILE = [
    pytest.param(
        "dblink_exec",
        "SELECT * FROM dblink_exec('dbname={db} user=root host=127.0.0.1', "
        "'INSERT INTO journal VALUES (99, ''x'', 1)') AS t(status text)",
        id="dblink_exec-insert",
    ),
    pytest.param(
        "dblink_exec",
        "SELECT id FROM journal\nWHERE dblink_exec('dbname={db} user=root host=127.0.0.1', "
        "'DELETE FROM journal WHERE id = 1') IS NOT NULL",
        id="dblink_exec-delete-per-row",
    ),
    pytest.param("pg_terminate_backend", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"),
    pytest.param("pg_cancel_backend", "SELECT pg_cancel_backend(pid) FROM pg_stat_activity"),
    pytest.param("pg_read_file", "SELECT pg_read_file('/etc/passwd') AS secret"),
    pytest.param("pg_notify", "SELECT pg_notify('erp_events', 'boom')"),
    pytest.param("pg_advisory_lock", "SELECT pg_advisory_lock(42)"),
]


@pytest.mark.parametrize(("function", "sql"), HOSTILE)
@pytest.mark.postgres
def test_a_check_calling_a_function_off_the_allow_list_is_refused_when_its_file_loads(
    pg_erp: PgErp, function: str, sql: str, tmp_path: Path
) -> None:
    sql = sql.format(db=pg_erp.database)
    pack = tmp_path / "hostile.yaml"
    check = {
        "id": "x.hostile",
        "title": "t",
        "source": "erp",
        "sql": sql,
        "category": "data",
        "severity": "P1",
    }
    pack.write_text(yaml.safe_dump({"checks": [check]}), encoding="utf-8")
    with pytest.raises(CheckDefinitionError) as refused:
        load_path(pack)
    assert f"check x.hostile: field 'sql': must only read: calls {function}() at line " in str(refused.value)
    assert "which is not on the read-only allow-list of functions" in str(refused.value)
    # built past validation (as a plugin or a bug might), the run refuses it before the database sees it
    sneaky = CheckSpec.model_construct(
        **{**UNBALANCED.model_dump(), "id": "x.hostile", "sql": sql, "params": {}}
    )
    engine = source_engine(pg_erp.admin_url)
    result = run_check(sneaky, engine, now=NOW)
    engine.dispose()
    assert result.status == "error" and f"calls {function}()" in (result.error or "")
    check_engine = create_engine(pg_erp.admin_url)
    with check_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*), min(id), max(id) FROM journal")).one() == (18, 1, 18)
    check_engine.dispose()


# --- MariaDB -------------------------------------------------------------------------------------------


@pytest.fixture
def maria_erp(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    url_gen = fresh_database("mariadb", tmp_path)
    url = next(url_gen)
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in JOURNAL:
            conn.exec_driver_sql(statement)
    engine.dispose()
    users: list[str] = []
    yield url, users
    as_root([f"DROP USER IF EXISTS '{user}'@'%'" for user in users])
    next(url_gen, None)


def as_root(statements: list[str]) -> None:
    """Account statements on MariaDB, through the driver as written ('%' is a host, not a placeholder)."""
    admin = create_engine(MARIADB_URL)
    raw = admin.raw_connection()
    try:
        cursor = raw.cursor()
        for statement in statements:
            cursor.execute(statement)  # no arguments: the driver leaves '%' alone
        raw.commit()
    finally:
        raw.close()
        admin.dispose()


def maria_user(url: str, users: list[str], *extra: str) -> str:
    user = f"hc_ro_{uuid.uuid4().hex[:8]}"
    users.append(user)
    database = make_url(url).database or ""
    recipe = guide_recipe("MySQL / MariaDB", user=user, database=database)
    statements = [line.split("--")[0] for line in recipe.split(";\n") if line.strip()]
    as_root([*statements, *(e.format(user=user, db=database) for e in extra)])
    return make_url(url).set(username=user, password=PASSWORD).render_as_string(False)


@pytest.mark.mariadb
def test_the_guides_mariadb_user_runs_checks_and_passes_inspection(maria_erp: tuple[str, list[str]]) -> None:
    url, users = maria_erp
    user_url = maria_user(url, users)
    report = inspect_source("erp", settings_for(user_url))
    assert report.error is None and report.problems == (), report.describe()
    engine = source_engine(user_url)
    result = run_check(UNBALANCED, engine, now=NOW)
    engine.dispose()
    assert result.status == "fail" and len(result.entities) == 4


@pytest.mark.parametrize(
    ("grant", "problem"),
    [
        ("GRANT INSERT, UPDATE ON `{db}`.* TO '{user}'@'%'", "has INSERT, UPDATE on {db}.*"),
        ("GRANT DELETE ON `{db}`.`journal` TO '{user}'@'%'", "has DELETE on {db}.journal"),
        ("GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%'", "has ALL on every schema"),
        ("GRANT FILE ON *.* TO '{user}'@'%'", "has FILE on every schema"),
    ],
)
@pytest.mark.mariadb
def test_a_mariadb_user_with_write_grants_on_the_schema_is_refused(
    maria_erp: tuple[str, list[str]], grant: str, problem: str
) -> None:
    url, users = maria_erp
    user_url = maria_user(url, users, grant)
    report = inspect_source("erp", settings_for(user_url))
    database = make_url(url).database or ""
    assert report.refused and problem.format(db=database) in report.problems, report.problems


@pytest.mark.mariadb
def test_write_grants_on_another_schema_are_not_the_monitored_schemas(
    maria_erp: tuple[str, list[str]],
) -> None:
    url, users = maria_erp
    user_url = maria_user(url, users, "GRANT INSERT ON `hc_elsewhere`.* TO '{user}'@'%'")
    assert inspect_source("erp", settings_for(user_url)).problems == ()


# --- SQLite --------------------------------------------------------------------------------------------


def test_a_sqlite_source_is_read_only_by_construction(tmp_path: Path) -> None:
    path = tmp_path / "erp.db"
    create_engine(f"sqlite:///{path}").dispose()
    report = inspect_source("erp", settings_for(f"sqlite:///{path}"))
    assert not report.privileged and report.error is None
    assert report.describe() == (
        "source 'erp' (sqlite): opened read-only (mode=ro) with PRAGMA query_only: the connection cannot write"
    )
