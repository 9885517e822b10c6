"""locale: ``ticket.search_text``, what the queue's text search finds besides title, check and fingerprint

The description, entity keys, labels, evidence and comments of a ticket in one normalised column
(:mod:`core.search`: NFKC, case-folded), so a search for ``应收账款`` or ``invoice_id=4711`` finds the ticket
whose evidence or comments mention it, on every store. Filled here for the tickets already stored (their
first occurrence's evidence and their comments); on PostgreSQL a pg_trgm GIN index on it (skipped with a
warning when the extension cannot be created: the search then scans).

Revision ID: 0020_locale
Revises: 0019_oncall
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db import JSONType
from core.search import extended, flatten

revision: str = "0020_locale"
down_revision: str | None = "0019_oncall"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")
BATCH = 1000

ticket = sa.table(
    "ticket",
    sa.column("id", sa.Integer),
    sa.column("title", sa.String),
    sa.column("description", sa.Text),
    sa.column("entity", JSONType),
    sa.column("labels", JSONType),
    sa.column("search_text", sa.Text),
)
occurrence = sa.table(
    "occurrence",
    sa.column("id", sa.Integer),
    sa.column("ticket_id", sa.Integer),
    sa.column("evidence", JSONType),
)
audit = sa.table(
    "ticket_audit",
    sa.column("id", sa.Integer),
    sa.column("ticket_id", sa.Integer),
    sa.column("action", sa.String),
    sa.column("detail", JSONType),
)


def _backfill(bind: sa.Connection) -> None:
    last = 0
    while True:
        rows = bind.execute(
            sa.select(ticket.c.id, ticket.c.title, ticket.c.description, ticket.c.entity, ticket.c.labels)
            .where(ticket.c.id > last)
            .order_by(ticket.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        ids = [row.id for row in rows]
        last = ids[-1]
        first = (
            sa.select(sa.func.min(occurrence.c.id))
            .where(occurrence.c.ticket_id.in_(ids))
            .group_by(occurrence.c.ticket_id)
        )
        evidence = dict(
            bind.execute(
                sa.select(occurrence.c.ticket_id, occurrence.c.evidence).where(occurrence.c.id.in_(first))
            ).all()
        )
        comments: dict[int, list[str]] = defaultdict(list)
        for ticket_id, detail in bind.execute(
            sa.select(audit.c.ticket_id, audit.c.detail)
            .where(audit.c.ticket_id.in_(ids), audit.c.action == "commented")
            .order_by(audit.c.id)
        ):
            comments[ticket_id].append(str((detail or {}).get("text", "")))
        updates = [
            {
                "tid": row.id,
                "text": extended(
                    None,
                    row.title,
                    row.description or "",
                    flatten(row.entity),
                    flatten(row.labels),
                    flatten(evidence.get(row.id)),
                    *comments.get(row.id, []),
                ),
            }
            for row in rows
        ]
        bind.execute(
            ticket.update()
            .where(ticket.c.id == sa.bindparam("tid"))
            .values(search_text=sa.bindparam("text")),
            updates,
        )


def upgrade() -> None:
    # not in batch mode: SQLite adds (and drops) a column in place, keeping the partial indexes of ticket
    op.add_column("ticket", sa.Column("search_text", sa.Text(), nullable=True))
    bind = op.get_bind()
    _backfill(bind)
    if bind.dialect.name != "postgresql":
        return
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as exc:  # not a superuser, or the contrib package is missing
        log.warning("pg_trgm unavailable; the search text will be scanned: %s", str(exc).splitlines()[0])
        return
    op.execute("CREATE INDEX ix_ticket_search_text_trgm ON ticket USING gin (search_text gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_ticket_search_text_trgm")
    op.drop_column("ticket", "search_text")
