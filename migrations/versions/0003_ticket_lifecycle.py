"""tickets: lifecycle, SLA, routing, workarounds, ratings, hash-chained audit

Revision ID: 0003_ticket_lifecycle
Revises: 0002_monitor_scheduler
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0003_ticket_lifecycle"
down_revision: str | None = "0002_monitor_scheduler"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # reserved: filled by the change that needs it (ops via alembic.op)


def downgrade() -> None:
    pass
