"""dual run: each entity result keeps its normalisation counts and its plan

``dualrun_entity_result.normalised`` (rule -> side -> matched rows the normalisation changed: the rows that
matched only after it) and ``dualrun_entity_result.plan`` (key ranges, or key-hash buckets and why), so a
stored run reports them as the run itself did. Rows stored before have ``{}`` and ``''``.

Revision ID: 0015_dualrun
Revises: 0014_auth_sessions
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015_dualrun"
down_revision: str | None = "0014_auth_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("dualrun_entity_result") as batch:
        batch.add_column(sa.Column("normalised", _json(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("plan", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("dualrun_entity_result") as batch:
        batch.drop_column("plan")
        batch.drop_column("normalised")
