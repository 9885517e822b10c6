"""tickets: keyed audit chains (key id per row) and the store-wide chain of seals

``ticket_audit.key_id`` names the audit key that chained a row (HMAC-SHA256, tickets/audit_chain.py);
existing rows keep their plain sha256 hashes and a NULL key id: they verify as legacy, unkeyed, and each
ticket's next row chains on from them with the key. ``ticket_audit_seal`` holds one seal per audit row
written from now on, in commit order with a gap-free ``seq``; ``audit_chain_head`` row 2 is its head
(``last_id`` = last seq, ``last_hash`` = last MAC). Nothing existing is rewritten.

Like ``ticket_audit``, the seals refuse UPDATE and DELETE in the database itself. The column is added with
a plain ``ALTER TABLE ... ADD COLUMN`` (no batch copy on SQLite, which would drop the audit triggers).

Revision ID: 0013_audit_keys
Revises: 0012_ticket_correlation
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_audit_keys"
down_revision: str | None = "0012_ticket_correlation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64
SEAL_HEAD_ID = 2


def upgrade() -> None:
    op.add_column("ticket_audit", sa.Column("key_id", sa.String(length=32), nullable=True))
    op.create_table(
        "ticket_audit_seal",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("audit_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("prev_mac", sa.String(length=64), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ticket_audit_seal")),
        sa.UniqueConstraint("audit_id", name=op.f("uq_ticket_audit_seal_audit_id")),
    )
    op.execute(
        f"INSERT INTO audit_chain_head (id, last_id, last_hash) VALUES ({SEAL_HEAD_ID}, 0, '{GENESIS}')"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION ticket_audit_seal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'ticket_audit_seal is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER ticket_audit_seal_no_change BEFORE UPDATE OR DELETE ON ticket_audit_seal "
            "FOR EACH ROW EXECUTE FUNCTION ticket_audit_seal_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER ticket_audit_seal_no_{verb.lower()} BEFORE {verb} ON ticket_audit_seal "
                "BEGIN SELECT RAISE(ABORT, 'ticket_audit_seal is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ticket_audit_seal_no_change ON ticket_audit_seal")
        op.execute("DROP FUNCTION IF EXISTS ticket_audit_seal_append_only()")
    op.drop_table("ticket_audit_seal")
    op.execute(f"DELETE FROM audit_chain_head WHERE id = {SEAL_HEAD_ID}")
    # a native DROP COLUMN (SQLite 3.35+), not a batch copy, which would drop ticket_audit's triggers
    op.execute("ALTER TABLE ticket_audit DROP COLUMN key_id")
