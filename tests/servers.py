"""What the tests run against outside Python: the PostgreSQL and MariaDB servers and Debian's chromium.
One rule when one is missing: the test skips with the reason, except under ``CI=true``, where it fails (in
CI every test must run)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Generator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

PG_URL = os.environ.get("HYPERCARE_TEST_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("HYPERCARE_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def tool(name: str, package: str) -> str:
    """The path of a Debian tool a test runs (promtool, amtool, prometheus...): skipped without it, failed
    under CI, where `.ci/run` installs it."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (Debian package {package!r})"
        if IN_CI:
            pytest.fail(reason + "; CI=true: .ci/run installs it")
        pytest.skip(reason)
    return path


def unavailable(server: str, reason: object) -> None:
    """Skip a test whose database server is missing, or fail it under CI, where it must run."""
    message = (
        f"{server} is not reachable: {str(reason).strip().splitlines()[0] if str(reason).strip() else reason}"
    )
    if IN_CI:
        pytest.fail(message + " (CI=true: these tests must run)")
    pytest.skip(message)


def fresh_database(kind: str, tmp_path: Path, prefix: str = "hc_db") -> Generator[str, None, None]:
    """The URL of an empty database of this engine (``sqlite``, ``postgres``, ``mariadb``), dropped after.

    A generator for fixtures to ``yield from``; without the server the test skips (fails under CI)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}"
        return
    base = PG_URL if kind == "postgres" else MARIADB_URL
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
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
