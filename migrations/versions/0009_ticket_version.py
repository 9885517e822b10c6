"""tickets: the store-wide tickets version (a sharded counter bumped by every ticket change)

Revision ID: 0009_ticket_version
Revises: 0008_dualrun
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_ticket_version"
down_revision: str | None = "0008_dualrun"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHARDS = 16  # tickets.cache.SHARDS


def upgrade() -> None:
    table = op.create_table(
        "ticket_version",
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("shard", name=op.f("pk_ticket_version")),
    )
    op.bulk_insert(table, [{"shard": shard, "version": 0} for shard in range(SHARDS)])


def downgrade() -> None:
    op.drop_table("ticket_version")
