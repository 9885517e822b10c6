"""tickets: CHECK constraints holding the domain vocabulary (priority, category, level, ticket and outbox status)

Every column that holds one of the words of ``core/vocabulary.py`` gets ``CHECK (column IN (...))``,
named ``ck_<table>_<column>``: ``ticket`` (status, priority, impact, urgency, category), ``event``
(severity, category), ``report`` (category, urgency, impact) and ``notification_outbox`` (status).

The values are spelled out here, as they stand at this revision: a later change of the vocabulary is a new
migration, not an edit of this one (tests/hypercare/test_vocabulary_checks.py keeps the two in step).

A store holding a value outside the vocabulary is refused with the rows to fix, before anything changes.
On SQLite the tables are rebuilt (batch mode); ``hypercare.store`` runs migrations there with foreign key
enforcement off, so dropping the old ``ticket`` table cascades nowhere, and checks the keys afterwards.
The rebuild would lose the open-ticket indexes of migration 0006 (SQLite cannot reflect an index on an
expression, nor the WHERE of a partial index), so they are dropped first and made again after.

Revision ID: 0011_vocabulary_checks
Revises: 0010_dashboard_indexes
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.errors import StoreError

revision: str = "0011_vocabulary_checks"
down_revision: str | None = "0010_dashboard_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRIORITY = ("P1", "P2", "P3", "P4")
CATEGORY = ("data", "process", "technical", "user")
LEVEL = ("high", "medium", "low")
TICKET_STATUS = ("new", "acknowledged", "in_progress", "waiting", "reopened", "resolved", "closed")
OUTBOX_STATUS = ("pending", "held", "muted", "digested", "sent", "dead")

CHECKS: dict[str, dict[str, tuple[str, ...]]] = {
    "ticket": {
        "status": TICKET_STATUS,
        "priority": PRIORITY,
        "impact": LEVEL,
        "urgency": LEVEL,
        "category": CATEGORY,
    },
    "event": {"severity": PRIORITY, "category": CATEGORY},
    "report": {"category": CATEGORY, "urgency": LEVEL, "impact": LEVEL},
    "notification_outbox": {"status": OUTBOX_STATUS},
}
"""table -> column -> the values it may hold."""

# migration 0006's partial indexes on the open tickets (rebuilt around the SQLite table copy)
OPEN = "status IN ('new', 'acknowledged', 'in_progress', 'waiting', 'reopened')"
SLA_DUE = (
    "(CASE WHEN (acknowledged_at IS NULL) THEN coalesce(sla_response_due_at, sla_resolution_due_at) "
    "ELSE sla_resolution_due_at END)"
)


def condition(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _refuse_unknown_values() -> None:
    bind = op.get_bind()
    problems = []
    for table, columns in CHECKS.items():
        for column, values in columns.items():
            query = (
                f"SELECT {column}, count(*) FROM {table} "
                f"WHERE {column} IS NOT NULL AND NOT ({condition(column, values)}) GROUP BY {column}"
            )
            for value, count in bind.execute(sa.text(query)):
                problems.append(f"{table}.{column} = {value!r} in {count} row(s)")
    if problems:
        raise StoreError(
            "the store holds values outside the vocabulary; correct them, then upgrade again: "
            + "; ".join(problems)
        )


def _drop_open_ticket_indexes() -> None:
    op.drop_index("ix_ticket_open_by_sla_due", table_name="ticket")
    op.drop_index("ix_ticket_open_by_priority", table_name="ticket")


def _create_open_ticket_indexes() -> None:
    op.create_index(
        "ix_ticket_open_by_priority",
        "ticket",
        ["priority", sa.text("last_seen_at DESC"), sa.text("id DESC")],
        sqlite_where=sa.text(OPEN),
    )
    op.create_index(
        "ix_ticket_open_by_sla_due",
        "ticket",
        [sa.text(SLA_DUE), "priority", "id"],
        sqlite_where=sa.text(OPEN),
    )


def upgrade() -> None:
    _refuse_unknown_values()
    if op.get_bind().dialect.name != "sqlite":
        for table, columns in CHECKS.items():
            for column, values in columns.items():
                op.create_check_constraint(op.f(f"ck_{table}_{column}"), table, condition(column, values))
        return
    _drop_open_ticket_indexes()
    for table, columns in CHECKS.items():
        with op.batch_alter_table(table, recreate="always") as batch:
            for column, values in columns.items():
                batch.create_check_constraint(op.f(f"ck_{table}_{column}"), condition(column, values))
    _create_open_ticket_indexes()


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        for table, columns in reversed(CHECKS.items()):
            for column in reversed(columns):
                op.drop_constraint(op.f(f"ck_{table}_{column}"), table, type_="check")
        return
    _drop_open_ticket_indexes()
    for table, columns in reversed(CHECKS.items()):
        with op.batch_alter_table(table, recreate="always") as batch:
            for column in reversed(columns):
                batch.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")
    _create_open_ticket_indexes()
