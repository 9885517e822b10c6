"""The schema-currency gate: which migration revision the code needs and which one a store is at.

Reading revisions needs only the migration scripts (they import :mod:`core.db`); running them
(``hypercare.store.upgrade``) goes through Alembic's ``env.py``, which registers every part's tables and
therefore belongs to the wiring.
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from core.errors import SchemaOutOfDate, StoreError
from core.session import first_line
from core.settings import redact_url

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["url"] = url
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:
        raise StoreError(f"{MIGRATIONS_DIR} holds no migrations: the installation is incomplete")
    return head


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except OperationalError as exc:
        raise StoreError(f"store {redact_url(str(engine.url))} is unreachable: {first_line(exc)}") from None


def require_current_schema(engine: Engine) -> None:
    """Refuse to run against a store whose schema is missing or at another revision."""
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        state = "has no schema" if current is None else f"is at revision {current}"
        raise SchemaOutOfDate(
            f"store {redact_url(str(engine.url))} {state}; this Hypercare needs {head}: "
            "run `hypercare db upgrade`"
        )
