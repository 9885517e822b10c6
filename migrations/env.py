"""Alembic environment. The URL (or an open connection) comes from hypercare.store.alembic_config."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, Index, create_engine, pool

from hypercare.store import all_metadata

config = context.config
target_metadata = all_metadata()


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Leave out of ``alembic check`` the indexes a model marks ``info={"skip_compare": True}``: indexes on
    expressions (the database reads them back in its own words) or made only on one dialect."""
    if type_ != "index":
        return True
    model = compare_to if reflected else obj
    return not (isinstance(model, Index) and model.info.get("skip_compare"))


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=_include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.attributes["url"], poolclass=pool.NullPool)
    with engine.begin() as conn:
        _run(conn)


if context.is_offline_mode():
    context.configure(url=config.attributes["url"], target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
