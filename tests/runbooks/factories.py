"""A small monitored ERP (one SQLite file), a check on it and a user runbook with diagnostics: what the
runbook tests open tickets from, run diagnostics on, and verify against."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypercare.config import Settings
from tests.tickets.factories import make_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker
    from starlette.testclient import TestClient

CHECK_ID = "shop.unbalanced_entries"
RUNBOOK_ID = "shop-unbalanced-entries"

CHECKS_YAML = f"""
checks:
  - id: {CHECK_ID}
    title: Posted entries whose debits and credits differ
    source: erp
    category: data
    severity: P2
    key_columns: [entry_number]
    amount_column: difference
    runbook: {RUNBOOK_ID}
    owner: finance-gl
    sql: |
      SELECT e.number AS entry_number, e.created_by, SUM(l.debit) - SUM(l.credit) AS difference
      FROM entry e JOIN line l ON l.entry_id = e.id
      GROUP BY e.number, e.created_by
      HAVING ABS(SUM(l.debit) - SUM(l.credit)) >= 0.005
"""

SECTIONS = (
    "What this means",
    "Business impact",
    "First 15 minutes",
    "Diagnosis",
    "Workaround",
    "Fix",
    "Verify",
    "Escalate",
    "Prevent",
)


def runbook_markdown(diagnostics: str = "", *, runbook_id: str = RUNBOOK_ID, applies: str = CHECK_ID) -> str:
    body = {
        "First 15 minutes": "- [ ] Acknowledge and post the entry number.\n- [ ] Stop the loader.",
        "Fix": "- [ ] Reverse the entry.\n- [ ] Re-post it balanced.",
        "Verify": "- [ ] Press Verify.",
    }
    sections = "\n".join(f"## {name}\n\n{body.get(name, 'Text for ' + name + '.')}\n" for name in SECTIONS)
    return (
        f"---\nid: {runbook_id}\ntitle: Unbalanced entry in the shop ERP\napplies_to: [{applies}]\n"
        "severity: P2\nowner: finance-gl\nescalation:\n  levels: [L2 finance, controller]\n"
        '  vendor_contact: "<vendor: contract, phone>"\n'
        f"{diagnostics}---\n\n{sections}"
    )


DIAGNOSTICS = """diagnostics:
  - name: entry_lines
    title: The entry line by line
    sql: |
      SELECT e.number, l.account, l.debit, l.credit FROM entry e JOIN line l ON l.entry_id = e.id
      WHERE e.number = :entry_number ORDER BY l.id
    params: {entry_number: entity.entry_number}
  - name: same_creator
    title: Other entries by the same creator
    sql: SELECT number, created_by FROM entry WHERE created_by = :created_by ORDER BY number
    params: {created_by: evidence.row.created_by}
  - name: by_label
    title: Needs a label the event does not carry
    sql: SELECT number FROM entry WHERE number = :n
    params: {n: labels.document}
  - name: broken
    title: A query on a table that is gone
    sql: SELECT * FROM entry_archive WHERE number = :entry_number
    params: {entry_number: entity.entry_number}
"""


@dataclass
class ShopErp:
    path: Path
    settings: Settings

    def execute(self, sql: str, *params: Any) -> None:
        with closing(sqlite3.connect(self.path)) as conn, conn:
            conn.execute(sql, params)


def build_shop(
    tmp_path: Path,
    *,
    database_url: str | None = None,
    diagnostics: str = DIAGNOSTICS,
    public_url: str = "http://testserver",
    **extra: Any,
) -> ShopErp:
    tmp_path.mkdir(parents=True, exist_ok=True)
    erp = tmp_path / "shop.db"
    with closing(sqlite3.connect(erp)) as conn, conn:
        conn.executescript(
            """
            CREATE TABLE entry (id INTEGER PRIMARY KEY, number TEXT, created_by TEXT);
            CREATE TABLE line (id INTEGER PRIMARY KEY, entry_id INTEGER, account TEXT, debit NUMERIC, credit NUMERIC);
            INSERT INTO entry VALUES (1, 'JE-1', 'migration'), (2, 'JE-2', 'migration'), (3, 'JE-3', 'alice');
            INSERT INTO line VALUES (1, 1, '1122', 113.00, 0), (2, 1, '6001', 0, 100.00),
                                    (3, 2, '1122', 50.00, 0), (4, 2, '6001', 0, 50.00),
                                    (5, 3, '1405', 10.00, 0), (6, 3, '2202', 0, 10.00);
            """
        )
    checks = tmp_path / "checks.yaml"
    checks.write_text(CHECKS_YAML, encoding="utf-8")
    books = tmp_path / "runbooks"
    books.mkdir(exist_ok=True)
    (books / f"{RUNBOOK_ID}.md").write_text(runbook_markdown(diagnostics), encoding="utf-8")
    settings = make_settings(
        tmp_path=tmp_path,
        database_url=database_url,
        public_url=public_url,
        sources={"erp": {"url": f"sqlite:///{erp}"}},
        checks={"packs": [], "paths": [checks]},
        runbooks_dir=books,
        collectors={"host": {"enabled": False}},
        **extra,
    )
    return ShopErp(erp, settings)


@dataclass
class Shop:
    """The shop ERP after a pipeline pass opened its one ticket, and the app on the store, signed out."""

    erp: ShopErp
    engine: Engine
    factory: sessionmaker[Session]
    client: TestClient
    ticket_id: int
