"""tickets: Alertmanager intake, reports and attachments, silences, roles and token scopes

Revision ID: 0004_ticket_intake
Revises: 0003_ticket_lifecycle
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0004_ticket_intake"
down_revision: str | None = "0003_ticket_lifecycle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # reserved: filled by the change that needs it (ops via alembic.op)


def downgrade() -> None:
    pass
