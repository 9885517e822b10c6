"""Fresh databases for dual-run tests: a PostgreSQL database, a MariaDB database or a SQLite file each."""

from __future__ import annotations

import uuid
from collections.abc import Generator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from monitor.dualrun.sql import Source, dualrun_engine
from tests.conftest import MARIADB_URL, PG_URL, unavailable


def fresh_database(kind: str, tmp_path: Path) -> Generator[str, None, None]:
    """A URL of an empty database of this engine, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}"
        return
    base = PG_URL if kind == "postgres" else MARIADB_URL
    name = f"hc_dr_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    quote = '"' if kind == "postgres" else "`"
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {quote}{name}{quote}"))
    except OperationalError as exc:
        admin.dispose()
        unavailable("PostgreSQL" if kind == "postgres" else "MariaDB", exc.orig)
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if kind == "postgres" else ""
            conn.execute(text(f"DROP DATABASE IF EXISTS {quote}{name}{quote}{force}"))
        admin.dispose()


def load(url: str, statements: list[str]) -> None:
    """Run DDL/DML on a test database with a writable engine (the comparison itself reads read-only)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


def source(role: str, url: str) -> Source:
    return Source(role, f"{role}_db", dualrun_engine(url), 30.0)  # type: ignore[arg-type]


ENGINES = [
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
    "sqlite",
]
