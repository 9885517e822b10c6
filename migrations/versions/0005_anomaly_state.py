"""anomaly: detector state and alarm post-processing

Revision ID: 0005_anomaly_state
Revises: 0004_ticket_intake
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0005_anomaly_state"
down_revision: str | None = "0004_ticket_intake"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # reserved: filled by the change that needs it (ops via alembic.op)


def downgrade() -> None:
    pass
