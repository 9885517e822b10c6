"""runbooks: checklist ticks, diagnostic results, verification runs

Revision ID: 0007_runbook_steps
Revises: 0006_ticket_indexes

``ticket_diagnostic`` holds what a ticket's runbook diagnostics returned when it opened; ``runbook_step``
the checklist steps agents ticked (each tick is also an audit row). Verification runs need no table: the
check result is stored with the others and the proof is an audit row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import core.db

revision: str = "0007_runbook_steps"
down_revision: str | None = "0006_ticket_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str) -> sa.Column[object]:
    return sa.Column(name, core.db.UTCDateTime(timezone=True), nullable=False)


def _json() -> sa.types.TypeEngine[object]:  # JSON on SQLite, JSONB on PostgreSQL
    json: sa.types.TypeEngine[object] = sa.JSON()
    return json.with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _ticket_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["ticket_id"], ["ticket.id"], name=op.f(f"fk_{table}_ticket_id_ticket"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "ticket_diagnostic",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("runbook_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("columns", _json(), nullable=False),
        sa.Column("rows", _json(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=False),
        _at("ran_at"),
        _ticket_fk("ticket_diagnostic"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_diagnostic")),
        sa.UniqueConstraint("ticket_id", "fingerprint", "name", name=op.f("uq_ticket_diagnostic_ticket_id")),
    )
    op.create_index(op.f("ix_ticket_diagnostic_ticket_id"), "ticket_diagnostic", ["ticket_id"])
    op.create_table(
        "runbook_step",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("runbook_id", sa.String(length=128), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("by", sa.String(length=64), nullable=False),
        _at("at"),
        _ticket_fk("runbook_step"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runbook_step")),
        sa.UniqueConstraint("ticket_id", "runbook_id", "step", name=op.f("uq_runbook_step_ticket_id")),
    )
    op.create_index(op.f("ix_runbook_step_ticket_id"), "runbook_step", ["ticket_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_runbook_step_ticket_id"), table_name="runbook_step")
    op.drop_table("runbook_step")
    op.drop_index(op.f("ix_ticket_diagnostic_ticket_id"), table_name="ticket_diagnostic")
    op.drop_table("ticket_diagnostic")
