"""tickets: lifecycle, SLA, routing, workarounds, ratings, hash-chained audit

Revision ID: 0003_ticket_lifecycle
Revises: 0002_monitor_scheduler

Columns are added with plain ``ALTER TABLE ... ADD COLUMN`` (no batch copy on SQLite): copying
``ticket_audit`` would drop its append-only triggers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import core.db

revision: str = "0003_ticket_lifecycle"
down_revision: str | None = "0002_monitor_scheduler"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _at(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, core.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column("ticket", sa.Column("waiting_reason", sa.String(length=16), nullable=True))
    op.add_column("ticket", _at("closed_at"))
    op.add_column("ticket", _at("sla_response_due_at"))
    op.add_column("ticket", _at("sla_resolution_due_at"))
    op.add_column("ticket", sa.Column("sla_elapsed_s", sa.Float(), nullable=False, server_default="0"))
    op.add_column("ticket", _at("sla_clock_at"))
    op.add_column("ticket", sa.Column("sla_paused_s", sa.Float(), nullable=False, server_default="0"))
    op.add_column("ticket", _at("sla_paused_at"))
    op.add_column("ticket", sa.Column("sla_state", sa.String(length=16), nullable=False, server_default="ok"))
    op.add_column("ticket", sa.Column("escalation_level", sa.Integer(), nullable=False, server_default="0"))
    op.create_index(op.f("ix_ticket_sla_response_due_at"), "ticket", ["sla_response_due_at"])
    op.create_index(op.f("ix_ticket_sla_resolution_due_at"), "ticket", ["sla_resolution_due_at"])
    op.create_index(op.f("ix_ticket_sla_state"), "ticket", ["sla_state"])

    op.add_column("ticket_audit", sa.Column("prev_hash", sa.String(length=64), nullable=True))
    op.add_column("ticket_audit", sa.Column("hash", sa.String(length=64), nullable=True))
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=True),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    op.execute(f"INSERT INTO audit_chain_head (id, last_id, last_hash) VALUES (1, NULL, '{GENESIS}')")

    op.add_column("notification_outbox", sa.Column("tags", _json(), nullable=False, server_default="[]"))
    op.add_column("notification_outbox", sa.Column("digest_id", sa.Integer(), nullable=True))
    op.add_column("notification_outbox", sa.Column("silence_id", sa.Integer(), nullable=True))

    op.create_table(
        "ticket_watcher",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        _at("created_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_ticket_watcher_ticket_id_ticket"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_ticket_watcher_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_watcher")),
        sa.UniqueConstraint("ticket_id", "user_id", name=op.f("uq_ticket_watcher_ticket_id")),
    )
    op.create_index(op.f("ix_ticket_watcher_ticket_id"), "ticket_watcher", ["ticket_id"])
    op.create_table(
        "ticket_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("other_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        _at("created_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_ticket_link_ticket_id_ticket"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["other_id"], ["ticket.id"], name=op.f("fk_ticket_link_other_id_ticket"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_link")),
        sa.UniqueConstraint("ticket_id", "other_id", name=op.f("uq_ticket_link_ticket_id")),
    )
    op.create_index(op.f("ix_ticket_link_ticket_id"), "ticket_link", ["ticket_id"])
    op.create_table(
        "workaround",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("what", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        _at("since", nullable=False),
        sa.Column("review_on", sa.Date(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        _at("ended_at"),
        sa.Column("ended_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_workaround_ticket_id_ticket"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workaround")),
    )
    op.create_index(op.f("ix_workaround_ticket_id"), "workaround", ["ticket_id"])
    op.create_index(op.f("ix_workaround_active"), "workaround", ["active"])
    op.create_table(
        "ticket_rating",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("rated_by", sa.String(length=64), nullable=False),
        sa.Column("on_behalf_of", sa.String(length=64), nullable=True),
        _at("rated_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_ticket_rating_ticket_id_ticket"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_rating")),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_ticket_rating_ticket_id")),
    )
    op.create_table(
        "silence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("matchers", _json(), nullable=False),
        _at("starts_at", nullable=False),
        _at("ends_at", nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        _at("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_silence")),
    )
    op.create_index(op.f("ix_silence_ends_at"), "silence", ["ends_at"])


def downgrade() -> None:
    for table in (
        "silence",
        "ticket_rating",
        "workaround",
        "ticket_link",
        "ticket_watcher",
        "audit_chain_head",
    ):
        op.drop_table(table)
    for name in ("silence_id", "digest_id", "tags"):
        with op.batch_alter_table("notification_outbox") as batch_op:
            batch_op.drop_column(name)
    # ticket_audit keeps prev_hash/hash: a batch copy on SQLite would drop its append-only triggers.
    for index in ("ix_ticket_sla_state", "ix_ticket_sla_resolution_due_at", "ix_ticket_sla_response_due_at"):
        op.drop_index(index, table_name="ticket")
    with op.batch_alter_table("ticket") as batch_op:
        for name in (
            "escalation_level",
            "sla_state",
            "sla_paused_at",
            "sla_paused_s",
            "sla_clock_at",
            "sla_elapsed_s",
            "sla_resolution_due_at",
            "sla_response_due_at",
            "closed_at",
            "waiting_reason",
        ):
            batch_op.drop_column(name)
