"""incremental checks: per-check watermarks and per-entity state

``check_watermark`` holds, per incremental check or volume watch and source, the high-water mark of each
watched table at its last pass, the columns of the rows it keeps and when its last full pass ran;
``check_entity_state`` the rows the check's query returned for each entity (monitor/incremental.py).

Revision ID: 0015_incremental
Revises: 0014_auth_sessions
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import core.db

revision: str = "0015_incremental"
down_revision: str | None = "0014_auth_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "check_watermark",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.String(length=140), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("marks", _JSON, nullable=False),
        sa.Column("columns", _JSON, nullable=False),
        sa.Column("last_pass_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_full_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_drift", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_watermark")),
        sa.UniqueConstraint("unit_id", "source", name=op.f("uq_check_watermark_unit_id")),
    )
    op.create_table(
        "check_entity_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.String(length=140), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=500), nullable=False),
        sa.Column("rows", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_entity_state")),
        sa.UniqueConstraint("unit_id", "source", "entity", name=op.f("uq_check_entity_state_unit_id")),
    )


def downgrade() -> None:
    op.drop_table("check_entity_state")
    op.drop_table("check_watermark")
