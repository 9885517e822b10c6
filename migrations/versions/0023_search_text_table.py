"""tickets: the search text in a table of its own (``ticket_search_text``), out of the ticket row

``ticket.search_text`` (0020) and its pg_trgm GIN index (hundreds of trigrams per ticket) sat on the ticket
row, so every update of that row that PostgreSQL could not make HOT wrote them into the index again,
whether the text changed or not: every sighting of an open ticket moves ``last_seen_at``, which the
queue's indexes hold. In a storm of new alert episodes that index took most of PostgreSQL's CPU
(docs/benchmarks.md, "Alert intake"). Here it is written only when the text changes. The rows are moved
as they are; the index follows them.

Revision ID: 0023_search_text_table
Revises: 0022_page_version
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_search_text_table"
down_revision: str | None = "0022_page_version"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")
INDEX = "ix_ticket_search_text_trgm"


def _trigrams(bind: sa.Connection) -> bool:
    """pg_trgm is installed (0020 created it where it could; the search scans where it could not)."""
    if bind.dialect.name != "postgresql":
        return False
    found = bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).first()
    if found is None:
        log.warning("pg_trgm unavailable; the search text will be scanned")
    return found is not None


def upgrade() -> None:
    op.create_table(
        "ticket_search_text",
        sa.Column("ticket_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["ticket.id"],
            name=op.f("fk_ticket_search_text_ticket_id_ticket"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_ticket_search_text")),
    )
    op.execute(
        "INSERT INTO ticket_search_text (ticket_id, text) "
        "SELECT id, search_text FROM ticket WHERE search_text IS NOT NULL"
    )
    bind = op.get_bind()
    trigrams = _trigrams(bind)
    if bind.dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
    # not in batch mode: SQLite drops a column in place, keeping the partial indexes of ticket
    op.drop_column("ticket", "search_text")
    if trigrams:
        op.execute(f"CREATE INDEX {INDEX} ON ticket_search_text USING gin (text gin_trgm_ops)")


def downgrade() -> None:
    op.add_column("ticket", sa.Column("search_text", sa.Text(), nullable=True))
    op.execute(
        "UPDATE ticket SET search_text = "
        "(SELECT s.text FROM ticket_search_text s WHERE s.ticket_id = ticket.id)"
    )
    bind = op.get_bind()
    trigrams = _trigrams(bind)
    op.drop_table("ticket_search_text")  # its index with it
    if trigrams:
        op.execute(f"CREATE INDEX {INDEX} ON ticket USING gin (search_text gin_trgm_ops)")
