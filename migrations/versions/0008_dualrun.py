"""dual-run: comparison runs and their entity results

Revision ID: 0008_dualrun
Revises: 0007_runbook_steps
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db import JSONType, Money, UTCDateTime

revision: str = "0008_dualrun"
down_revision: str | None = "0007_runbook_steps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dualrun_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("comparison", sa.String(length=64), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("legacy_source", sa.String(length=64), nullable=False),
        sa.Column("new_source", sa.String(length=64), nullable=False),
        sa.Column("materiality", Money(), nullable=False),
        sa.Column("money_affected", Money(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dualrun_run")),
    )
    op.create_index("ix_dualrun_run_comparison_started", "dualrun_run", ["comparison", "started_at"])
    op.create_table(
        "dualrun_entity_result",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("missing_in_new", sa.Integer(), nullable=False),
        sa.Column("extra_in_new", sa.Integer(), nullable=False),
        sa.Column("money_affected", Money(), nullable=False),
        sa.Column("match_rate", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("unexplained", sa.Integer(), nullable=False),
        sa.Column("unexplained_money", Money(), nullable=False),
        sa.Column("by_classification", JSONType, nullable=False),
        sa.Column("money_by_classification", JSONType, nullable=False),
        sa.Column("samples", JSONType, nullable=False),
        sa.Column("aggregates", JSONType, nullable=False),
        sa.Column("rows_legacy", sa.Integer(), nullable=False),
        sa.Column("rows_new", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["dualrun_run.id"],
            name=op.f("fk_dualrun_entity_result_run_id_dualrun_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dualrun_entity_result")),
    )
    op.create_index(
        op.f("ix_dualrun_entity_result_run_id"), "dualrun_entity_result", ["run_id"], unique=False
    )
    op.create_index("ix_dualrun_entity_result_entity_period", "dualrun_entity_result", ["entity", "period"])


def downgrade() -> None:
    op.drop_index("ix_dualrun_entity_result_entity_period", table_name="dualrun_entity_result")
    op.drop_index(op.f("ix_dualrun_entity_result_run_id"), table_name="dualrun_entity_result")
    op.drop_table("dualrun_entity_result")
    op.drop_index("ix_dualrun_run_comparison_started", table_name="dualrun_run")
    op.drop_table("dualrun_run")
