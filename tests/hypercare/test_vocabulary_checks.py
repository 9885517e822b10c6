"""The store refuses words outside the vocabulary (CHECK constraints of migration 0011) on SQLite and
PostgreSQL, and the migration upgrades and downgrades a store that already holds tickets without losing a
row - SQLite included, where it rebuilds the tables."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import Base
from core.errors import StoreError
from core.schema import MIGRATIONS_DIR
from hypercare.store import downgrade, upgrade

BEFORE = "0010_dashboard_indexes"
LATER_INDEXES = {"ix_ticket_search_text_trgm"}
"""Indexes on ticket that revisions after the vocabulary checks create."""
T = "2026-01-05 09:00:00+00:00"
ROWS: dict[str, dict[str, Any]] = {
    "app_user": {"id": 901, "username": "vocab", "display_name": "", "role": "agent", "password_hash": "x",
                 "active": True, "created_at": T},
    "ticket": {"id": 901, "fingerprint": "fp-vocab", "open_fingerprint": "fp-vocab", "title": "t",
               "description": "", "status": "waiting", "priority": "P2", "impact": "high", "urgency": "medium",
               "category": "data", "source": "erp", "queue": "hypercare", "entity": "{}", "labels": "{}",
               "occurrence_count": 1, "reopen_count": 0, "first_seen_at": T, "last_seen_at": T, "created_at": T,
               "updated_at": T, "sla_elapsed_s": 0, "sla_paused_s": 0, "sla_state": "paused",
               "escalation_level": 0},
    "event": {"id": 901, "fingerprint": "fp-vocab", "action": "trigger", "severity": "P2", "category": "data",
              "summary": "s", "source": "erp", "producer": "monitor", "labels": "{}", "entity": "{}",
              "evidence": "{}", "occurred_at": T, "received_at": T, "ticket_id": 901},
    "occurrence": {"id": 901, "ticket_id": 901, "event_id": 901, "seen_at": T, "summary": "", "evidence": "{}"},
    "ticket_watcher": {"id": 901, "ticket_id": 901, "user_id": 901, "created_at": T},
    "notification_outbox": {"id": 901, "ticket_id": 901, "target": 0, "kind": "opened", "title": "t", "body": "b",
                            "notify_type": "failure", "status": "digested", "attempts": 0, "next_attempt_at": T,
                            "created_at": T, "tags": "[]"},
    "report": {"id": 901, "reporter_id": 901, "ticket_id": 901, "title": "t", "description": "", "module": "AP",
               "category": "user", "urgency": "low", "affected": "me", "impact": "low", "created_at": T},
}  # fmt: skip
"""One row per table, each referring to the others, every vocabulary column filled with a valid word."""
CONSTRAINED = {
    "ticket": ("status", "priority", "impact", "urgency", "category"),
    "event": ("severity", "category"),
    "report": ("category", "urgency", "impact"),
    "notification_outbox": ("status",),
}


def _migration() -> Any:
    path = MIGRATIONS_DIR / "versions" / "0011_vocabulary_checks.py"
    spec = importlib.util.spec_from_file_location("migration_0011", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _insert(conn: Connection, table: str, **change: Any) -> None:
    row = ROWS[table] | change
    columns = ", ".join(row)
    conn.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(':' + c for c in row)})"), row)


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() for table in ROWS}


def _checks(engine: Engine) -> set[str]:
    found = inspect(engine)
    return {str(c["name"]) for table in CONSTRAINED for c in found.get_check_constraints(table)}


def _ticket_indexes(engine: Engine) -> set[str]:
    """By name, from the catalogue (reflection skips SQLite's indexes on expressions)."""
    query = (
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ticket' AND sql IS NOT NULL"
        if engine.dialect.name == "sqlite"
        else "SELECT indexname FROM pg_indexes WHERE tablename = 'ticket'"
    )
    with engine.connect() as conn:
        return set(conn.execute(text(query)).scalars())


EXPECTED = {f"ck_{table}_{column}" for table, columns in CONSTRAINED.items() for column in columns}


@pytest.mark.parametrize(("table", "column"), [(t, c) for t, cs in CONSTRAINED.items() for c in cs])
def test_a_word_outside_the_vocabulary_is_refused_by_the_store(
    session: Session, table: str, column: str
) -> None:
    conn = session.connection()
    for parent in ("app_user", "ticket", "event"):
        _insert(conn, parent)
    if table not in ("ticket", "event"):
        _insert(conn, table)  # the valid row goes in
    bad = "P5" if column in ("priority", "severity") else "Data"  # the column's width, one wrong word
    unique = {"open_fingerprint": None} if table == "ticket" else {}
    with pytest.raises(IntegrityError, match=f"ck_{table}_{column}"), session.begin_nested():
        _insert(session.connection(), table, id=902, **unique, **{column: bad})
    with pytest.raises(IntegrityError, match=f"ck_{table}_{column}"), session.begin_nested():
        session.execute(text(f"UPDATE {table} SET {column} = :bad WHERE id = 901"), {"bad": bad})


def test_the_models_declare_what_the_migration_creates() -> None:
    migration = _migration()
    declared = {
        (table, str(c.name)): str(c.sqltext)
        for table in CONSTRAINED
        for c in Base.metadata.tables[table].constraints
        if c.__class__.__name__ == "CheckConstraint"
    }
    created = {
        (table, f"ck_{table}_{column}"): migration.condition(column, values)
        for table, columns in migration.CHECKS.items()
        for column, values in columns.items()
    }
    assert declared == created


def test_upgrade_and_downgrade_keep_a_store_s_rows(store_engine: Engine) -> None:
    assert _checks(store_engine) == EXPECTED
    downgrade(store_engine, BEFORE)
    assert _checks(store_engine) == set()
    with store_engine.begin() as conn:
        for table in ROWS:
            _insert(conn, table)
    before = _counts(store_engine)
    indexes = _ticket_indexes(store_engine)
    assert {"ix_ticket_open_by_priority", "ix_ticket_open_by_sla_due"} <= indexes

    upgrade(store_engine)
    assert _counts(store_engine) == before == dict.fromkeys(ROWS, 1)
    assert _checks(store_engine) == EXPECTED
    with pytest.raises(IntegrityError), store_engine.begin() as conn:
        conn.execute(text("UPDATE ticket SET status = 'open' WHERE id = 901"))
    # the partial ones SQLite cannot reflect included; later revisions' own (0015: the search text's
    # trigram index, PostgreSQL only) come and go with them
    assert _ticket_indexes(store_engine) - LATER_INDEXES == indexes

    downgrade(store_engine, BEFORE)
    assert _counts(store_engine) == before
    assert _ticket_indexes(store_engine) == indexes
    with store_engine.begin() as conn:  # no constraint any more: the old schema, as it was
        conn.execute(text("UPDATE ticket SET status = 'open' WHERE id = 901"))
    with pytest.raises(StoreError, match=r"ticket\.status = 'open' in 1 row"):
        upgrade(store_engine)
    assert _checks(store_engine) == set()  # refused before anything changed
    with store_engine.begin() as conn:
        conn.execute(text("UPDATE ticket SET status = 'waiting' WHERE id = 901"))
    upgrade(store_engine)
    assert _counts(store_engine) == before and _checks(store_engine) == EXPECTED
