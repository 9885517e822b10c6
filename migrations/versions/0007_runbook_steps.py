"""runbooks: checklist ticks, diagnostic results, verification runs

Revision ID: 0007_runbook_steps
Revises: 0006_ticket_indexes
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0007_runbook_steps"
down_revision: str | None = "0006_ticket_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # reserved: filled by the change that needs it (ops via alembic.op)


def downgrade() -> None:
    pass
