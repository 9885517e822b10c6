"""Connections to monitored systems: read-only from the first byte.

SQLite files open in read-only mode (``mode=ro``), so even a check that slipped past validation cannot
write; PostgreSQL and MySQL/MariaDB checks run in read-only transactions with a statement timeout
(see :func:`monitor.checks.run_check`). Any other engine is refused (:class:`UnsupportedSourceError`):
Hypercare has no means to make its sessions read-only, and it never writes to a monitored system. Use a
least-privilege database user as well: the operator guide lists the grants per engine.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from core.errors import ConfigError
from monitor.settings import SOURCE_DIALECTS

__all__ = [
    "READ_ONLY_DIALECTS",
    "UnsupportedSourceError",
    "read_only_url",
    "require_read_only_engine",
    "source_engine",
    "unsupported_engine",
]

READ_ONLY_DIALECTS = SOURCE_DIALECTS
"""The engines whose sessions :func:`monitor.checks.make_read_only` can make read-only and time-bounded."""


class UnsupportedSourceError(ConfigError, ValueError):
    """A source is on an engine Hypercare cannot make read-only, so it refuses to query it at all.

    A :class:`ConfigError` so the CLI prints it as one line; a ``ValueError`` so the callers that turn a
    source that cannot be opened into an error result (collectors, the scheduler's ping) do so for it too.
    """


def unsupported_engine(dialect: str, source: str = "") -> UnsupportedSourceError:
    """The error for a source (named, when the caller knows its name) on the engine ``dialect``."""
    who = f"source '{source}'" if source else "the source"
    return UnsupportedSourceError(
        f"{who} is a {dialect} database: Hypercare reads only PostgreSQL, MySQL/MariaDB and SQLite "
        "sources, the engines whose sessions it can make read-only"
    )


def require_read_only_engine(url: str | URL, source: str = "") -> str:
    """The URL's engine (``postgresql``, ``mysql``, ``mariadb``, ``sqlite``); any other is refused."""
    dialect = make_url(url).get_backend_name()
    if dialect not in READ_ONLY_DIALECTS:
        raise unsupported_engine(dialect, source)
    return dialect


def read_only_url(url: str | URL) -> URL:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database).resolve()
        if not path.exists():
            raise FileNotFoundError(f"SQLite source database {path} does not exist")
        return parsed.set(database=f"file:{path.as_posix()}?mode=ro", query={"uri": "true"})
    return parsed


def source_engine(url: str | URL) -> Engine:
    """An engine for a monitored database. No pool: collectors connect briefly and let go.

    An engine Hypercare cannot make read-only is refused here, before any connection is made.
    """
    require_read_only_engine(url)
    parsed = read_only_url(url)
    connect_args: dict[str, object] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = 10
        connect_args["application_name"] = "hypercare-monitor"
    elif parsed.get_backend_name() in {"mysql", "mariadb"}:
        connect_args["connect_timeout"] = 10
    return create_engine(parsed, poolclass=NullPool, connect_args=connect_args)
