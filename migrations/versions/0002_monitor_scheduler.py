"""monitor: scheduler leases and collector state

Revision ID: 0002_monitor_scheduler
Revises: 0001_initial
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0002_monitor_scheduler"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # reserved: filled by the change that needs it (ops via alembic.op)


def downgrade() -> None:
    pass
