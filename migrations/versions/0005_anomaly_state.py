"""anomaly: detector state and alarm post-processing

Revision ID: 0005_anomaly_state
Revises: 0004_ticket_intake

``anomaly_series_state``: one row per watched metric series with its streaming detectors' and alarm's
state (anomaly/state.py), so a restart continues instead of relearning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import core.db

revision: str = "0005_anomaly_state"
down_revision: str | None = "0004_ticket_intake"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "anomaly_series_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("metric", sa.String(length=128), nullable=False),
        sa.Column("series", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("labels", _json(), nullable=False),
        sa.Column("detector", _json(), nullable=False),
        sa.Column("alarm", _json(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("alarm_active", sa.Boolean(), nullable=False),
        sa.Column("last_ts", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anomaly_series_state")),
        sa.UniqueConstraint("key", name=op.f("uq_anomaly_series_state_key")),
    )


def downgrade() -> None:
    op.drop_table("anomaly_series_state")
