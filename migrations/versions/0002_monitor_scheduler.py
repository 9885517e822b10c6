"""monitor: scheduler leases and collector state

Revision ID: 0002_monitor_scheduler
Revises: 0001_initial
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0002_monitor_scheduler"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "work_lease",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("next_due_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("leased_by", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_started_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_finished_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.String(length=8), nullable=True),
        sa.Column("run_count", sa.Integer(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("backoff_until", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_lease")),
        sa.UniqueConstraint("key", name=op.f("uq_work_lease_key")),
    )
    with op.batch_alter_table("work_lease", schema=None) as batch_op:
        batch_op.create_index("ix_work_lease_due", ["next_due_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("work_lease", schema=None) as batch_op:
        batch_op.drop_index("ix_work_lease_due")
    op.drop_table("work_lease")
