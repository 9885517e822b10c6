"""The queue's facet counts kept by the store: tickets per (status, priority, queue, category, source,
assignee), appended by triggers on ``ticket`` (migration 0018) and folded now and then by the writers
(tickets/cache.py bumps, about one in :data:`COMPACT_EVERY`). Read by tickets/queries.py."""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class TicketFacetCount(Base):
    """Tickets per facet (status, priority, queue, category, source, assignee), kept by the store itself.

    Triggers on ``ticket`` (migration 0018) append a row of ``n`` = +count / -count for what each
    statement added, removed or moved between facets, in the writing transaction, whatever wrote it (the
    ORM, text SQL, ``psql``); the count of a facet is the sum of its rows. Appending never waits on
    another writer; :func:`compact_facets` folds the rows now and then. The queue's facet counts are then a
    sum over a few hundred rows instead of a GROUP BY over every ticket (tickets/facets.py)."""

    __tablename__ = "ticket_facet_count"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(2))
    queue: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(64))
    assignee_id: Mapped[int | None] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer)


FACET_COLUMNS = ("status", "priority", "queue", "category", "source", "assignee_id")
COMPACT_EVERY = 64
"""On average one tracked commit in this many folds the facet rows (:func:`compact_facets`)."""


def compact_facets(conn: Connection) -> None:
    """Fold the facet rows into one per facet, in the connection's transaction. On PostgreSQL one
    statement sums exactly the rows it deletes (rows appended meanwhile stay as they are); SQLite has one
    writer at a time."""
    cols = ", ".join(FACET_COLUMNS)
    cursor = conn.connection.cursor()
    try:
        if conn.dialect.name == "postgresql":
            cursor.execute(
                f"WITH gone AS (DELETE FROM ticket_facet_count RETURNING {cols}, n) "
                f"INSERT INTO ticket_facet_count ({cols}, n) "
                f"SELECT {cols}, SUM(n) FROM gone GROUP BY {cols} HAVING SUM(n) <> 0"
            )
        else:
            cursor.execute("SELECT MAX(id) FROM ticket_facet_count")
            row = cursor.fetchone()
            if row is None or row[0] is None:
                return
            top = int(row[0])
            cursor.execute(
                f"INSERT INTO ticket_facet_count ({cols}, n) SELECT {cols}, SUM(n) FROM ticket_facet_count "
                f"WHERE id <= {top} GROUP BY {cols} HAVING SUM(n) <> 0"
            )
            cursor.execute(f"DELETE FROM ticket_facet_count WHERE id <= {top}")
    finally:
        cursor.close()
