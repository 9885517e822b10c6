"""tickets: indexes for the queue, SLA and text search

Revision ID: 0006_ticket_indexes
Revises: 0005_anomaly_state
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0006_ticket_indexes"
down_revision: str | None = "0005_anomaly_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # reserved: filled by the change that needs it (ops via alembic.op)


def downgrade() -> None:
    pass
