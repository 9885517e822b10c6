"""Dual-run test databases: filled with writable engines, compared through read-only sources (fresh empty
databases come from ``tests.servers.fresh_database``)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from monitor.dualrun.sql import Source, dualrun_engine


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
