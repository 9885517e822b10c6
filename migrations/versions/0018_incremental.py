"""incremental: per-check watermarks and per-entity state; ticket facet counts kept by the store

``check_watermark`` holds, per incremental check or volume watch and source, the high-water mark of each
watched table at its last pass, the columns of the rows it keeps and when its last full pass ran;
``check_entity_state`` the rows the check's query returned for each entity (monitor/incremental.py).

``ticket_facet_count`` holds the tickets per (status, priority, queue, category, source, assignee) as rows
of +/- counts appended by triggers on ``ticket`` in the writing transaction, whatever wrote it, and folded
now and then (tickets/facets.py ``compact_facets``): the queue's facet counts no longer count every ticket
after each change. Filled here from the tickets there are.

Revision ID: 0018_incremental
Revises: 0017_i18n
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import core.db

revision: str = "0018_incremental"
down_revision: str | None = "0017_i18n"
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

    op.create_table(
        "ticket_facet_count",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.String(length=2), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_facet_count")),
    )
    op.execute(
        f"INSERT INTO ticket_facet_count ({_COLS}, n) SELECT {_COLS}, COUNT(*) FROM ticket GROUP BY {_COLS}"
    )
    for statement in _PG_TRIGGERS if op.get_bind().dialect.name == "postgresql" else _SQLITE_TRIGGERS:
        op.execute(statement)


_COLS = "status, priority, queue, category, source, assignee_id"
_CHANGED = " OR ".join(
    f"OLD.{c} IS DISTINCT FROM NEW.{c}"
    for c in ("status", "priority", "queue", "category", "source", "assignee_id")
)
_PG_TRIGGERS = (
    # statement-level with transition tables: a set-wise insert of many tickets appends one row per facet
    f"""CREATE FUNCTION ticket_facet_added() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO ticket_facet_count ({_COLS}, n) SELECT {_COLS}, COUNT(*) FROM new_rows GROUP BY {_COLS};
      RETURN NULL;
    END $$""",
    f"""CREATE FUNCTION ticket_facet_removed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO ticket_facet_count ({_COLS}, n) SELECT {_COLS}, -COUNT(*) FROM old_rows GROUP BY {_COLS};
      RETURN NULL;
    END $$""",
    f"""CREATE FUNCTION ticket_facet_moved() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO ticket_facet_count ({_COLS}, n)
      SELECT {_COLS}, SUM(n) FROM (
        SELECT {", ".join(f"o.{c}" for c in _COLS.split(", "))}, -1 AS n
        FROM old_rows o JOIN new_rows w ON w.id = o.id
        WHERE {_CHANGED.replace("OLD.", "o.").replace("NEW.", "w.")}
        UNION ALL
        SELECT {", ".join(f"w.{c}" for c in _COLS.split(", "))}, 1
        FROM old_rows o JOIN new_rows w ON w.id = o.id
        WHERE {_CHANGED.replace("OLD.", "o.").replace("NEW.", "w.")}
      ) moved GROUP BY {_COLS} HAVING SUM(n) <> 0;
      RETURN NULL;
    END $$""",
    "CREATE TRIGGER ticket_facet_insert AFTER INSERT ON ticket REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION ticket_facet_added()",
    "CREATE TRIGGER ticket_facet_delete AFTER DELETE ON ticket REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION ticket_facet_removed()",
    "CREATE TRIGGER ticket_facet_update AFTER UPDATE ON ticket REFERENCING OLD TABLE AS old_rows "
    "NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ticket_facet_moved()",
)
_NEW = ", ".join(f"NEW.{c}" for c in _COLS.split(", "))
_OLD = ", ".join(f"OLD.{c}" for c in _COLS.split(", "))
_SQLITE_TRIGGERS = (
    f"CREATE TRIGGER ticket_facet_insert AFTER INSERT ON ticket BEGIN "
    f"INSERT INTO ticket_facet_count ({_COLS}, n) VALUES ({_NEW}, 1); END",
    f"CREATE TRIGGER ticket_facet_delete AFTER DELETE ON ticket BEGIN "
    f"INSERT INTO ticket_facet_count ({_COLS}, n) VALUES ({_OLD}, -1); END",
    f"CREATE TRIGGER ticket_facet_update AFTER UPDATE OF {_COLS} ON ticket "
    f"WHEN {_CHANGED.replace('IS DISTINCT FROM', 'IS NOT')} BEGIN "
    f"INSERT INTO ticket_facet_count ({_COLS}, n) VALUES ({_OLD}, -1); "
    f"INSERT INTO ticket_facet_count ({_COLS}, n) VALUES ({_NEW}, 1); END",
)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS ticket_facet_{name} ON ticket")
        for name in ("added", "removed", "moved"):
            op.execute(f"DROP FUNCTION IF EXISTS ticket_facet_{name}()")
    else:
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS ticket_facet_{name}")
    op.drop_table("ticket_facet_count")
    op.drop_table("check_entity_state")
    op.drop_table("check_watermark")
