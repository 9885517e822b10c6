"""tickets: indexes for the queue, SLA and text search; audit chains per ticket

Indexes: ``(status, priority, last_seen_at)`` (replaces ``(status, priority)``); ``(queue, category,
priority)`` for a team's view of its queue; partial indexes on the
open tickets in the queue's two main orders (priority, and the SLA due expression); ``(ticket_id, id)`` on
occurrences and audit rows (a ticket's latest ones, its chain in order); on PostgreSQL, ``pg_trgm`` GIN
indexes on ``lower(title)``, ``lower(check_id)`` and ``lower(fingerprint)`` for the queue's substring
search (skipped with a warning when the extension cannot be created: the search then scans).

Audit: ``ticket.audit_hash`` holds the head of each ticket's own hash chain; ``audit_chain_head.last_id``
records where the old global chain ends, so ``hypercare audit verify`` checks it as before.

Revision ID: 0006_ticket_indexes
Revises: 0005_anomaly_state
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_ticket_indexes"
down_revision: str | None = "0005_anomaly_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger(__name__)

OPEN = "status IN ('new', 'acknowledged', 'in_progress', 'waiting', 'reopened')"
SLA_DUE = (
    "(CASE WHEN (acknowledged_at IS NULL) THEN coalesce(sla_response_due_at, sla_resolution_due_at) "
    "ELSE sla_resolution_due_at END)"
)
TRGM = ("title", "check_id", "fingerprint")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("ticket") as batch:
        batch.add_column(sa.Column("audit_hash", sa.String(length=64), nullable=True))
    op.execute("UPDATE audit_chain_head SET last_id = (SELECT max(id) FROM ticket_audit) WHERE id = 1")

    op.drop_index("ix_ticket_status_priority", table_name="ticket")
    op.create_index("ix_ticket_status_priority_last_seen", "ticket", ["status", "priority", "last_seen_at"])
    op.create_index("ix_ticket_queue_category_priority", "ticket", ["queue", "category", "priority"])
    op.create_index(
        "ix_ticket_open_by_priority",
        "ticket",
        ["priority", sa.text("last_seen_at DESC"), sa.text("id DESC")],
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )
    op.create_index(
        "ix_ticket_open_by_sla_due",
        "ticket",
        [sa.text(SLA_DUE), "priority", "id"],
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )

    op.drop_index("ix_occurrence_ticket_id", table_name="occurrence")
    op.create_index("ix_occurrence_ticket_id_id", "occurrence", ["ticket_id", "id"])
    op.drop_index("ix_ticket_audit_ticket_id", table_name="ticket_audit")
    op.create_index("ix_ticket_audit_ticket_id_id", "ticket_audit", ["ticket_id", "id"])

    if dialect == "postgresql":
        _trigram_indexes()


def _trigram_indexes() -> None:
    bind = op.get_bind()
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as exc:  # not a superuser, or the contrib package is missing
        log.warning("pg_trgm unavailable; the queue's text search will scan: %s", str(exc).splitlines()[0])
        return
    for column in TRGM:
        op.execute(f"CREATE INDEX ix_ticket_{column}_trgm ON ticket USING gin (lower({column}) gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for column in TRGM:
            op.execute(f"DROP INDEX IF EXISTS ix_ticket_{column}_trgm")
    op.drop_index("ix_ticket_audit_ticket_id_id", table_name="ticket_audit")
    op.create_index("ix_ticket_audit_ticket_id", "ticket_audit", ["ticket_id"])
    op.drop_index("ix_occurrence_ticket_id_id", table_name="occurrence")
    op.create_index("ix_occurrence_ticket_id", "occurrence", ["ticket_id"])
    op.drop_index("ix_ticket_open_by_sla_due", table_name="ticket")
    op.drop_index("ix_ticket_open_by_priority", table_name="ticket")
    op.drop_index("ix_ticket_queue_category_priority", table_name="ticket")
    op.drop_index("ix_ticket_status_priority_last_seen", table_name="ticket")
    op.create_index("ix_ticket_status_priority", "ticket", ["status", "priority"])
    op.execute("UPDATE audit_chain_head SET last_id = NULL WHERE id = 1")
    with op.batch_alter_table("ticket") as batch:
        batch.drop_column("audit_hash")
