"""Migration 0015_locale fills the search text of the tickets already stored: their description, entity
keys, labels, first occurrence's evidence and comments, so an old ticket is found by a Chinese term too."""

from __future__ import annotations

import json

from sqlalchemy import Engine, text

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
        found = conn.execute(text("SELECT search_text FROM ticket WHERE id = 901")).scalar_one()
    for term in ("红字发票", "凭证号=记-0042", "应收账款", "核对应付账款"):
        assert term in found, (term, found)
    with store_engine.connect() as conn:
        hit = conn.execute(text("SELECT id FROM ticket WHERE search_text LIKE :p"), {"p": "%应收账款%"}).all()
    assert [row[0] for row in hit] == [901]
