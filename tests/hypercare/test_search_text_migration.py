"""Migration 0020_locale fills the search text of the tickets already stored: their description, entity
keys, labels, first occurrence's evidence and comments, so an old ticket is found by a Chinese term too;
0023 moves it, as it is, to a table of its own and back."""

from __future__ import annotations

import json

from sqlalchemy import Engine, inspect, text

from hypercare.store import downgrade, upgrade
from tests.hypercare.test_vocabulary_checks import ROWS, T


def test_upgrade_fills_the_search_text_of_stored_tickets(store_engine: Engine) -> None:
    downgrade(store_engine, "0014_auth_sessions")
    ticket = ROWS["ticket"] | {"entity": json.dumps({"凭证号": "记-0042"}), "description": "红字发票"}
    occurrence = ROWS["occurrence"] | {"evidence": json.dumps({"sample": [{"科目": "1122 应收账款"}]})}
    comment = {"id": 901, "ticket_id": 901, "at": T, "actor": "agent", "action": "commented"}
    with store_engine.begin() as conn:
        for table, row in (("ticket", ticket), ("event", ROWS["event"]), ("occurrence", occurrence)):
            conn.execute(
                text(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(':' + c for c in row)})"),
                row,
            )
        conn.execute(
            text(
                "INSERT INTO ticket_audit (id, ticket_id, at, actor, action, detail) "
                "VALUES (:id, :ticket_id, :at, :actor, :action, :detail)"
            ),
            comment | {"detail": json.dumps({"text": "已联系供应商核对应付账款"})},
        )
    upgrade(store_engine)
    with store_engine.connect() as conn:
        found = conn.execute(text("SELECT text FROM ticket_search_text WHERE ticket_id = 901")).scalar_one()
    for term in ("红字发票", "凭证号=记-0042", "应收账款", "核对应付账款"):
        assert term in found, (term, found)
    with store_engine.connect() as conn:
        hit = conn.execute(
            text("SELECT ticket_id FROM ticket_search_text WHERE text LIKE :p"), {"p": "%应收账款%"}
        ).all()
    assert [row[0] for row in hit] == [901]


def test_the_search_text_moves_to_its_own_table_and_back(store_engine: Engine) -> None:
    downgrade(store_engine, "0022_page_version")
    row = ROWS["ticket"] | {"search_text": "凭证号=记-0042 应收账款"}
    other = ROWS["ticket"] | {"id": 902, "fingerprint": "fp-other", "open_fingerprint": "fp-other"}
    with store_engine.begin() as conn:
        for ticket in (row, other):
            conn.execute(
                text(
                    f"INSERT INTO ticket ({', '.join(ticket)}) VALUES ({', '.join(':' + c for c in ticket)})"
                ),
                ticket,
            )
    upgrade(store_engine)
    with store_engine.connect() as conn:
        moved = conn.execute(text("SELECT ticket_id, text FROM ticket_search_text")).all()
        columns = {c["name"] for c in inspect(conn).get_columns("ticket")}
    assert [tuple(r) for r in moved] == [(901, "凭证号=记-0042 应收账款")], "a ticket without one gets no row"
    assert "search_text" not in columns
    downgrade(store_engine, "0022_page_version")
    with store_engine.connect() as conn:
        back = conn.execute(text("SELECT id, search_text FROM ticket ORDER BY id")).all()
    assert [tuple(r) for r in back] == [(901, "凭证号=记-0042 应收账款"), (902, None)]
    upgrade(store_engine)
