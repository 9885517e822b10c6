"""Engines and units of work on the Hypercare store (SQLite embedded, PostgreSQL in production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core.errors import StoreError
from core.settings import redact_url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


CONNECT_TIMEOUT_S = 5.0
"""How long opening a store connection may take before it fails (a server that accepts and stays silent
would otherwise hold the caller for minutes)."""
POOL_TIMEOUT_S = 10.0
"""How long a request waits for a pooled connection before it fails (then answered 503, retried)."""


def make_engine(url: str, *, statement_timeout_s: float | None = None, **kwargs: Any) -> Engine:
    """An engine for the store. SQLite files get their directory, WAL mode and foreign keys; PostgreSQL
    connections a connect timeout, TCP keepalives (a dead peer is noticed in about a minute) and, when
    given, a server-side ``statement_timeout`` (the served processes set one; migrations do not)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in kwargs:  # a NullPool (tests, one-off tools) takes no pool arguments
        kwargs.setdefault("pool_timeout", POOL_TIMEOUT_S)
    if parsed.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {**pg_connect_args(statement_timeout_s), **kwargs.get("connect_args", {})}
    return create_engine(url, **kwargs)


def pg_connect_args(statement_timeout_s: float | None = None) -> dict[str, Any]:
    """libpq options of every store connection: a connect timeout, TCP keepalives and a user timeout (a
    vanished server is noticed in about a minute), and a server-side statement timeout when given."""
    args: dict[str, Any] = {
        "connect_timeout": max(1, round(CONNECT_TIMEOUT_S)),
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 30_000,  # ms: data a vanished server never acknowledged
    }
    if statement_timeout_s is not None:
        args["options"] = f"-c statement_timeout={int(statement_timeout_s * 1000)}"
    return args


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def ping(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except SQLAlchemyError as exc:
        raise StoreError(f"store {redact_url(str(engine.url))} is unreachable: {first_line(exc)}") from None


def first_line(exc: BaseException) -> str:
    """The first line of a database error's message (the driver's, when there is one)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
