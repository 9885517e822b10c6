from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from core.errors import SchemaOutOfDate, StoreError
from core.schema import head_revision, require_current_schema
from core.session import make_engine
from tickets.models import Ticket, TicketAudit


def test_migrated_store_is_current(store_engine: Engine) -> None:
    require_current_schema(store_engine)


def test_empty_store_is_refused_with_the_command_to_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(SchemaOutOfDate, match=r"has no schema.*hypercare db upgrade"):
        require_current_schema(engine)
    assert head_revision()


def test_unreachable_store_is_one_clear_error() -> None:
    engine = make_engine("postgresql+psycopg://nobody:s3cret@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(StoreError, match="unreachable") as info:
        require_current_schema(engine)
    assert "s3cret" not in str(info.value)


def test_audit_trail_refuses_update_and_delete(session: Session) -> None:
    ticket = Ticket(
        fingerprint="f",
        title="t",
        priority="P3",
        impact="medium",
        urgency="medium",
        category="data",
        source="erp",
    )
    session.add(ticket)
    session.flush()
    session.add(TicketAudit(ticket_id=ticket.id, actor="system", action="opened"))
    session.commit()  # the row is chained at the commit's flush and sealed
    assert session.scalar(text("SELECT count(*) FROM ticket_audit_seal")) == 1
    for sql in (
        "UPDATE ticket_audit SET actor = 'mallory'",
        "DELETE FROM ticket_audit",
        "UPDATE ticket_audit_seal SET mac = 'x'",
        "DELETE FROM ticket_audit_seal",
    ):
        with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
            session.execute(text(sql))
