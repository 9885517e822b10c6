"""agents' work: the comment conversation, ticket attachments, saved queue views, problem records

``ticket_comment`` holds a ticket's conversation (internal notes, replies to the reporter, @mentions),
``ticket_attachment`` the files agents attach to a ticket, ``saved_view`` named queue filters (a user's own
or shared with a team), ``problem`` and ``problem_ticket`` problem records and the incidents linked to them.

Revision ID: 0021_agentui
Revises: 0020_locale
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import core.db

revision: str = "0021_agentui"
down_revision: str | None = "0020_locale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "problem",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("root_cause", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("workaround", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("match_check_id", sa.String(length=128), nullable=True),
        sa.Column("match_subject", sa.String(length=300), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_problem")),
    )
    with op.batch_alter_table("problem", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_problem_match_check_id"), ["match_check_id"], unique=False)

    op.create_table(
        "saved_view",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=True),
        sa.Column(
            "params",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["app_user.id"], name=op.f("fk_saved_view_owner_id_app_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_view")),
        sa.UniqueConstraint("owner_id", "name", name=op.f("uq_saved_view_owner_id")),
    )
    with op.batch_alter_table("saved_view", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_saved_view_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_saved_view_team"), ["team"], unique=False)

    op.create_table(
        "problem_ticket",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("problem_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("linked_by", sa.String(length=64), nullable=False),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("linked_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["problem_id"],
            ["problem.id"],
            name=op.f("fk_problem_ticket_problem_id_problem"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_problem_ticket_ticket_id_ticket"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_problem_ticket")),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_problem_ticket_ticket_id")),
    )
    with op.batch_alter_table("problem_ticket", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_problem_ticket_problem_id"), ["problem_id"], unique=False)

    op.create_table(
        "ticket_attachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_name", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["ticket.id"],
            name=op.f("fk_ticket_attachment_ticket_id_ticket"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_attachment")),
        sa.UniqueConstraint("storage_name", name=op.f("uq_ticket_attachment_storage_name")),
    )
    with op.batch_alter_table("ticket_attachment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_attachment_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "ticket_comment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("visibility", sa.String(length=8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "mentions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_ticket_comment_ticket_id_ticket"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_comment")),
    )
    with op.batch_alter_table("ticket_comment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_comment_ticket_id"), ["ticket_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ticket_comment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_comment_ticket_id"))

    op.drop_table("ticket_comment")
    with op.batch_alter_table("ticket_attachment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_attachment_ticket_id"))

    op.drop_table("ticket_attachment")
    with op.batch_alter_table("problem_ticket", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_problem_ticket_problem_id"))

    op.drop_table("problem_ticket")
    with op.batch_alter_table("saved_view", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_saved_view_team"))
        batch_op.drop_index(batch_op.f("ix_saved_view_owner_id"))

    op.drop_table("saved_view")
    with op.batch_alter_table("problem", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_problem_match_check_id"))

    op.drop_table("problem")
