"""oncall: one-click links used (single use), on-call overrides

``action_link_use`` keeps the nonce of every one-click link of a notification that was used, so a second
use is refused by the primary key; ``oncall_override`` says who covers a rotation from when to when.

Revision ID: 0019_oncall
Revises: 0018_incremental
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0019_oncall"
down_revision: str | None = "0018_incremental"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "action_link_use",
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("used_by", sa.String(length=64), nullable=False),
        sa.Column("used_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_action_link_use_ticket_id_ticket")
        ),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_action_link_use")),
    )
    op.create_index(op.f("ix_action_link_use_ticket_id"), "action_link_use", ["ticket_id"], unique=False)
    op.create_table(
        "oncall_override",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rotation", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("starts_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_override")),
    )
    op.create_index(op.f("ix_oncall_override_rotation"), "oncall_override", ["rotation"], unique=False)
    op.create_index(op.f("ix_oncall_override_ends_at"), "oncall_override", ["ends_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_oncall_override_ends_at"), table_name="oncall_override")
    op.drop_index(op.f("ix_oncall_override_rotation"), table_name="oncall_override")
    op.drop_table("oncall_override")
    op.drop_index(op.f("ix_action_link_use_ticket_id"), table_name="action_link_use")
    op.drop_table("action_link_use")
