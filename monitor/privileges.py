"""What a monitored source's database user may do beyond reading, looked at before Hypercare uses it.

Hypercare's read-only guarantee rests on the database: a read-only transaction with a statement timeout
(:func:`monitor.checks.make_read_only`), and a user that could not write anyway. The allow-list
(:mod:`monitor.readonly`) refuses SQL that could do more, as defence in depth. This module checks the user:

* **PostgreSQL** — refused: a superuser; a member of the role owning the database, a monitored schema or
  table (an owner can drop or alter them, and signal their sessions); a user with EXECUTE on ``dblink`` /
  ``dblink_exec`` (a second connection, outside the read-only transaction), on the server's file or
  administration functions (``pg_read_file``, ``pg_ls_dir``, ``lo_import``, ``pg_reload_conf``...) or on
  ``pg_terminate_backend`` / ``pg_cancel_backend`` with ``pg_signal_backend`` (other roles' sessions);
  a member of ``pg_read_server_files``, ``pg_write_server_files`` or ``pg_execute_server_program``; a user
  with INSERT, UPDATE, DELETE or TRUNCATE on a table. ``pg_monitor`` (the database-health collector) is fine.
* **MySQL / MariaDB** — refused: INSERT, UPDATE, DELETE, DROP, ALTER, CREATE, SUPER, FILE or ALL granted
  on ``*.*``, on the monitored schema or on one of its tables (``SHOW GRANTS``, with the roles granted).
* **SQLite** — the file is opened read-only (``mode=ro``) and every session sets ``PRAGMA query_only``: the
  connection cannot write, whatever the file's permissions. Nothing to inspect.

A source whose settings say ``allow_privileged: true`` is used anyway: :func:`announce` logs a warning naming
the source (never its URL or password) and the wiring shows it in ``/readyz``. The least-privilege recipe
the tests use is in docs/operator-guide.md ("Connecting to the monitored ERP: least privilege").
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from core.errors import ConfigError
from monitor.checks import make_read_only
from monitor.settings import SourceSettings
from monitor.sources import source_engine

__all__ = ["RoleReport", "announce", "inspect_source", "inspect_sources", "refuse_privileged"]

log = logging.getLogger(__name__)

PG_FUNCTIONS = (
    *("dblink", "dblink_exec", "dblink_connect", "dblink_connect_u", "dblink_send_query", "dblink_open"),
    *("pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_file_write", "pg_file_rename"),
    *("pg_file_unlink", "lo_import", "lo_export", "pg_reload_conf", "pg_rotate_logfile", "pg_promote"),
    *("pg_switch_wal", "pg_create_restore_point", "pg_backup_start", "pg_start_backup"),
)
"""Functions a read-only user must not be able to execute (PostgreSQL)."""
PG_SIGNALS = ("pg_terminate_backend", "pg_cancel_backend")
"""Executable by everyone, but only on the caller's own sessions unless it has ``pg_signal_backend``."""
PG_ROLES = ("pg_signal_backend", "pg_read_server_files", "pg_write_server_files", "pg_execute_server_program")
"""Built-in roles that reach other sessions or the server's files."""
MY_WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "DROP", "ALTER", "CREATE", "SUPER", "FILE", "ALL"})
"""MySQL/MariaDB privileges (first word) that write, change the schema, or reach the server (SUPER, FILE)."""

_PG_INSPECTION = """
SELECT current_user AS usr,
       r.rolsuper AS superuser,
       pg_has_role(d.datdba, 'USAGE') AS owns_database,
       (SELECT string_agg(n.nspname, ', ' ORDER BY n.nspname) FROM pg_namespace n
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
           AND pg_has_role(n.nspowner, 'USAGE')) AS owned_schemas,
       (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
           AND pg_has_role(c.relowner, 'USAGE')) AS owned_tables,
       (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
           AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')) AS writable_tables,
       (SELECT string_agg(DISTINCT p.proname, ', ' ORDER BY p.proname) FROM pg_proc p
         WHERE p.proname = ANY(:functions) AND has_function_privilege(p.oid, 'EXECUTE')) AS functions,
       (SELECT string_agg(b.rolname, ', ' ORDER BY b.rolname) FROM pg_roles b
         WHERE b.rolname = ANY(:roles) AND pg_has_role(b.oid, 'USAGE')) AS roles
FROM pg_roles r, pg_database d
WHERE r.rolname = current_user AND d.datname = current_database()
"""


@dataclass(frozen=True)
class RoleReport:
    """What one source's user may do beyond reading (``problems``), or why it could not be looked at."""

    source: str
    engine: str
    user: str = ""
    problems: tuple[str, ...] = ()
    allowed: bool = False
    """The source's ``allow_privileged``: problems are then warned about, not refused."""
    note: str = ""
    error: str | None = None
    """Set when the source could not be inspected (down, bad credentials): nothing is known."""

    @property
    def privileged(self) -> bool:
        return bool(self.problems)

    @property
    def refused(self) -> bool:
        return self.privileged and not self.allowed

    def describe(self) -> str:
        """One line for ``config check``, the logs and ``/readyz``: the source, the user, what it may do."""
        who = f"source '{self.source}' ({self.engine}" + (f", user {self.user})" if self.user else ")")
        if self.error is not None:
            return f"{who}: could not inspect its user: {self.error}"
        if not self.problems:
            return f"{who}: {self.note or 'reads only'}"
        what = "; ".join(self.problems)
        if self.allowed:
            return f"{who} runs with a privileged user (allow_privileged: true): {what}"
        return (
            f"{who} may do more than read: {what}. Use a least-privilege user (docs/operator-guide.md), "
            "or set allow_privileged: true on the source knowingly"
        )


def inspect_source(name: str, source: SourceSettings) -> RoleReport:
    """Connect to the source once (read-only, time-bounded) and report what its user may do."""
    url = make_url(source.url.get_secret_value())
    engine_name = url.get_backend_name()
    if engine_name == "sqlite":
        return RoleReport(
            name,
            "sqlite",
            allowed=source.allow_privileged,
            note="opened read-only (mode=ro) with PRAGMA query_only: the connection cannot write",
        )
    try:
        engine = source_engine(url)
    except (ValueError, FileNotFoundError) as exc:
        return RoleReport(name, engine_name, allowed=source.allow_privileged, error=str(exc))
    try:
        with engine.connect() as conn:
            try:
                make_read_only(conn, min(source.statement_timeout_s, 30.0))
                if conn.dialect.name == "postgresql":
                    user, problems = _postgres(conn)
                else:
                    user, problems = _mysql(conn, url.database or "")
            finally:
                conn.rollback()
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)
        first = str(orig if orig is not None else exc).strip().splitlines()
        return RoleReport(
            name,
            engine_name,
            allowed=source.allow_privileged,
            error=(first[0] if first else type(exc).__name__),
        )
    finally:
        engine.dispose()
    return RoleReport(name, engine_name, user, tuple(problems), allowed=source.allow_privileged)


def _postgres(conn: Connection) -> tuple[str, list[str]]:
    row = (
        conn.execute(
            text(_PG_INSPECTION), {"functions": [*PG_FUNCTIONS, *PG_SIGNALS], "roles": list(PG_ROLES)}
        )
        .mappings()
        .one()
    )
    problems: list[str] = []
    if row["superuser"]:
        problems.append("is a superuser")
    if row["owns_database"]:
        problems.append("owns the database (or is a member of its owner)")
    if row["owned_schemas"]:
        problems.append(f"owns schema(s) {row['owned_schemas']}")
    if row["owned_tables"]:
        problems.append(f"owns {row['owned_tables']} table(s) or view(s)")
    if row["writable_tables"]:
        problems.append(f"may INSERT, UPDATE, DELETE or TRUNCATE {row['writable_tables']} table(s)")
    roles = set((row["roles"] or "").split(", ")) - {""}
    executable = set((row["functions"] or "").split(", ")) - {""}
    signalling = set(PG_SIGNALS) & executable if "pg_signal_backend" in roles or row["superuser"] else set()
    dangerous = sorted((executable - set(PG_SIGNALS)) | signalling)
    if dangerous:
        problems.append(f"may EXECUTE {', '.join(dangerous)}")
    if roles:
        problems.append(f"is a member of {', '.join(sorted(roles))}")
    return str(row["usr"]), problems


_GRANT = re.compile(
    r"^GRANT\s+(?P<privileges>.+?)\s+ON\s+(?:(?:TABLE|FUNCTION|PROCEDURE)\s+)?(?P<on>\S+)\s+TO\s", re.I
)


def _privileges(clause: str) -> list[str]:
    """``SELECT (a, b), INSERT, ALL PRIVILEGES`` -> ``['SELECT', 'INSERT', 'ALL']`` (first words)."""
    flat = re.sub(r"\([^)]*\)", "", clause)
    return [part.strip().split()[0].upper() for part in flat.split(",") if part.strip()]


def _scope_hits(on: str, schema: str) -> bool:
    """Whether a grant's ``db.table`` covers the monitored schema (``*.*``, ``erp.*``, ``erp.t``, ``er%.*``).

    The database part is a LIKE pattern in a database-level grant: ``%`` any text, ``_`` any character,
    ``\\_`` an underscore."""
    database = on.split(".", 1)[0].strip("`'\"")
    if database == "*":
        return True
    regex, index = [], 0
    while index < len(database):
        char = database[index]
        if char == "\\" and index + 1 < len(database):
            regex.append(re.escape(database[index + 1]))
            index += 2
            continue
        regex.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        index += 1
    return re.fullmatch("".join(regex), schema, re.IGNORECASE) is not None


def _mysql(conn: Connection, schema: str) -> tuple[str, list[str]]:
    user = str(conn.execute(text("SELECT CURRENT_USER()")).scalar_one())
    lines = [str(r[0]) for r in conn.exec_driver_sql("SHOW GRANTS")]
    seen_roles: set[str] = set()
    pending = [m for line in lines if (m := _role_names(line))]
    while pending and len(seen_roles) < 20:  # roles granted to roles: a short, bounded walk
        for role in pending.pop():
            if role in seen_roles:
                continue
            seen_roles.add(role)
            quoted = "'" + role.replace("'", "''") + "'"
            try:
                more = [str(r[0]) for r in conn.exec_driver_sql(f"SHOW GRANTS FOR {quoted}")]
            except SQLAlchemyError:
                continue  # not visible to this user: its own SHOW GRANTS already listed what applies
            lines += more
            pending += [m for line in more if (m := _role_names(line))]
    problems: list[str] = []
    for line in lines:
        match = _GRANT.match(line)
        if match is None:
            continue
        writes = [p for p in _privileges(match["privileges"]) if p in MY_WRITES]
        if writes and _scope_hits(match["on"], schema):
            where = "every schema" if match["on"].startswith("*") else match["on"].replace("`", "")
            problems.append(f"has {', '.join(dict.fromkeys(writes))} on {where}")
    return user, list(dict.fromkeys(problems))


def _role_names(line: str) -> list[str]:
    """The roles a ``GRANT `role` TO user`` line grants (no ``ON``: not a privilege grant)."""
    if re.search(r"\sON\s", line, re.I) or not line.upper().startswith("GRANT "):
        return []
    body = line[6:].split(" TO ", 1)[0]
    return [name.strip().strip("`'\"") for name in body.split(",") if name.strip()]


def inspect_sources(
    sources: Mapping[str, SourceSettings], names: Iterable[str] | None = None
) -> list[RoleReport]:
    """A report per source (those named, else all), in the settings' order."""
    wanted = set(names) if names is not None else set(sources)
    return [inspect_source(name, source) for name, source in sources.items() if name in wanted]


def refuse_privileged(reports: Iterable[RoleReport]) -> None:
    """Raise :class:`ConfigError` naming every source whose user may do more than read, unless allowed."""
    refused = [report.describe() for report in reports if report.refused]
    if refused:
        raise ConfigError("; ".join(refused))


def announce(reports: Iterable[RoleReport]) -> list[str]:
    """Log what the reports found (a warning per privileged source allowed to run, or not inspectable)
    and return the lines ``/readyz`` shows: the sources running with a privileged user, knowingly."""
    shown: list[str] = []
    for report in reports:
        if report.error is not None:
            log.warning(
                "could not inspect the user of source %s: %s",
                report.source,
                report.error,
                extra={"source": report.source, "error": report.error},
            )
        elif report.privileged and report.allowed:
            line = report.describe()
            log.warning(
                "PRIVILEGED SOURCE: %s",
                line,
                extra={"source": report.source, "user": report.user, "problems": list(report.problems)},
            )
            shown.append(line)
    return shown
