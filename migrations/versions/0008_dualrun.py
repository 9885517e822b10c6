"""dual-run: comparison runs, entity results, differences

Revision ID: 0008_dualrun
Revises: 0007_runbook_steps
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0008_dualrun"
down_revision: str | None = "0007_runbook_steps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # reserved: filled by the change that needs it (ops via alembic.op)


def downgrade() -> None:
    pass
