"""tickets: correlation of exceptions about the same business entity (one fault, one ticket)

``ticket_subject``: the entities (``invoice_id=42``) an open ticket is about; ``correlated_fingerprint``:
other exceptions' fingerprints joined to a ticket (their repeats are occurrences there). See
tickets/correlation.py.

Revision ID: 0012_ticket_correlation
Revises: 0011_vocabulary_checks
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0012_ticket_correlation"
down_revision: str | None = "0011_vocabulary_checks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ticket_subject",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_ticket_subject_ticket_id_ticket"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_subject")),
        sa.UniqueConstraint("ticket_id", "subject", name=op.f("uq_ticket_subject_ticket_id")),
    )
    op.create_index(op.f("ix_ticket_subject_subject"), "ticket_subject", ["subject"])
    op.create_table(
        "correlated_fingerprint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("check_id", sa.String(length=128), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("linked_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["ticket.id"],
            name=op.f("fk_correlated_fingerprint_ticket_id_ticket"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_correlated_fingerprint")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_correlated_fingerprint_fingerprint")),
    )
    op.create_index(op.f("ix_correlated_fingerprint_ticket_id"), "correlated_fingerprint", ["ticket_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_correlated_fingerprint_ticket_id"), table_name="correlated_fingerprint")
    op.drop_table("correlated_fingerprint")
    op.drop_index(op.f("ix_ticket_subject_subject"), table_name="ticket_subject")
    op.drop_table("ticket_subject")
