"""tickets: Alertmanager intake, employees' reports and attachments, token scopes

Revision ID: 0004_ticket_intake
Revises: 0003_ticket_lifecycle

``api_token.scopes`` is added with a plain ``ALTER TABLE ... ADD COLUMN`` (nullable: existing tokens keep
their role's default scopes).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0004_ticket_intake"
down_revision: str | None = "0003_ticket_lifecycle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, core.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column("api_token", sa.Column("scopes", sa.String(length=512), nullable=True))
    op.create_table(
        "alertmanager_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        _at("starts_at", nullable=False),
        _at("ends_at"),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("alertname", sa.String(length=200), nullable=False),
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("receiver", sa.String(length=200), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("notifications", sa.Integer(), nullable=False),
        _at("first_received_at", nullable=False),
        _at("last_received_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_alertmanager_alert_ticket_id_ticket")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alertmanager_alert")),
        sa.UniqueConstraint("fingerprint", "starts_at", name=op.f("uq_alertmanager_alert_fingerprint")),
    )
    op.create_index(op.f("ix_alertmanager_alert_ticket_id"), "alertmanager_alert", ["ticket_id"])
    op.create_table(
        "report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reporter_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("module", sa.String(length=64), nullable=False),
        sa.Column("document_number", sa.String(length=64), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("urgency", sa.String(length=8), nullable=False),
        sa.Column("affected", sa.String(length=8), nullable=False),
        sa.Column("impact", sa.String(length=8), nullable=False),
        sa.Column("amount_at_risk", core.db.Money(precision=20, scale=2), nullable=True),
        _at("created_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["reporter_id"], ["app_user.id"], name=op.f("fk_report_reporter_id_app_user")
        ),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"], name=op.f("fk_report_ticket_id_ticket")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report")),
    )
    op.create_index(op.f("ix_report_reporter_id"), "report", ["reporter_id"])
    op.create_index(op.f("ix_report_ticket_id"), "report", ["ticket_id"])
    op.create_table(
        "report_attachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_name", sa.String(length=64), nullable=False),
        _at("created_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["report.id"],
            name=op.f("fk_report_attachment_report_id_report"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_attachment")),
        sa.UniqueConstraint("storage_name", name=op.f("uq_report_attachment_storage_name")),
    )
    op.create_index(op.f("ix_report_attachment_report_id"), "report_attachment", ["report_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_report_attachment_report_id"), table_name="report_attachment")
    op.drop_table("report_attachment")
    op.drop_index(op.f("ix_report_ticket_id"), table_name="report")
    op.drop_index(op.f("ix_report_reporter_id"), table_name="report")
    op.drop_table("report")
    op.drop_index(op.f("ix_alertmanager_alert_ticket_id"), table_name="alertmanager_alert")
    op.drop_table("alertmanager_alert")
    with op.batch_alter_table("api_token") as batch_op:
        batch_op.drop_column("scopes")
