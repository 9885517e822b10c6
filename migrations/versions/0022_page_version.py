"""tickets: per-ticket page versions (a write moves only the ticket pages it can change)

``ticket_page_version`` holds one counter per ticket whose page changed, and row 0, moved by a write that
may change every ticket page (tickets/cache.py). A ticket page's version is its row plus row 0.

Revision ID: 0022_page_version
Revises: 0021_agentui
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_page_version"
down_revision: str | None = "0021_agentui"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "ticket_page_version",
        sa.Column("ticket_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_ticket_page_version")),
    )
    op.bulk_insert(table, [{"ticket_id": 0, "version": 0}])  # the epoch: ticket pages may be cached


def downgrade() -> None:
    op.drop_table("ticket_page_version")
