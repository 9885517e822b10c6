"""Connections to monitored systems: read-only from the first byte.

SQLite files open in read-only mode (``mode=ro``), so even a check that slipped past validation cannot
write; PostgreSQL and MySQL/MariaDB checks run in read-only transactions with a statement timeout
(see :func:`monitor.checks.run_check`). Use a least-privilege database user as well: the operator guide
lists the grants per engine.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool


def read_only_url(url: str | URL) -> URL:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database).resolve()
        if not path.exists():
            raise FileNotFoundError(f"SQLite source database {path} does not exist")
        return parsed.set(database=f"file:{path.as_posix()}?mode=ro", query={"uri": "true"})
    return parsed


def source_engine(url: str | URL) -> Engine:
    """An engine for a monitored database. No pool: collectors connect briefly and let go."""
    parsed = read_only_url(url)
    connect_args: dict[str, object] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = 10
        connect_args["application_name"] = "hypercare-monitor"
    elif parsed.get_backend_name() in {"mysql", "mariadb"}:
        connect_args["connect_timeout"] = 10
    return create_engine(parsed, poolclass=NullPool, connect_args=connect_args)
