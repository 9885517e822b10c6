"""Runbooks at ticket intake: what linking runbooks and running their diagnostics costs, per ticket.

A pipeline pass over a small SQLite ERP whose one check flags ``--entities`` entries (each its own
ticket), three ways, each on a fresh store:

- ``runbook, no diagnostics``: the check's runbook has no diagnostics (events without any);
- ``runbook, 2 diagnostics``: the runbook runs two read-only queries per ticket.

It times the pipeline's two steps apart, per ticket: the intake transaction (results stored, events,
tickets opened: unchanged by runbooks) and the attach step after its commit (runbook linking, and the
diagnostics with their stored results), then the attach step once more (nothing left to run).
Loopback files only; bounded by ``--entities``.

    .venv/bin/python bench/runbook_intake.py --entities 200
"""

from __future__ import annotations

import argparse
import secrets
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the shop ERP of the runbook tests

from anomaly.rules import events_for_results
from core.session import make_engine, session_factory, session_scope
from hypercare.pipeline import open_fingerprints
from hypercare.store import upgrade
from monitor.checks import load_checks
from monitor.collect import collect, store_collection
from runbooks.diagnostics import attach_runbooks
from runbooks.library import load_runbooks, shipped_runbooks
from tests.runbooks.factories import build_shop
from tickets.audit_chain import use_keyring
from tickets.audit_keys import Keyring
from tickets.service import TicketService

TWO = """diagnostics:
  - name: entry_lines
    title: The entry line by line
    sql: |
      SELECT e.number, l.account, l.debit, l.credit
      FROM entry e JOIN line l ON l.entry_id = e.id WHERE e.number = :n
    params: {n: entity.entry_number}
  - name: same_creator
    title: Entries by the same creator
    sql: SELECT number FROM entry WHERE created_by = :c LIMIT 20
    params: {c: evidence.row.created_by}
"""


def run(directory: Path, entities: int, diagnostics: str) -> tuple[float, float, float, int]:
    """(intake s, first attach s, second attach s, tickets): the pipeline's two steps, timed apart."""
    shop = build_shop(directory, diagnostics=diagnostics)
    with closing(sqlite3.connect(shop.path)) as conn, conn:
        for n in range(entities):
            conn.execute("INSERT INTO entry VALUES (?, ?, 'loader')", (100 + n, f"JE-B{n}"))
            conn.execute(
                "INSERT INTO line (entry_id, account, debit, credit) VALUES (?, '1122', 10, 0)", (100 + n,)
            )
    tickets = shop.settings.tickets.model_copy(update={"group_threshold": 100_000})
    settings = shop.settings.model_copy(update={"tickets": tickets})
    engine = make_engine(f"sqlite:///{directory / 'store.db'}")
    upgrade(engine)
    factory = session_factory(engine)
    use_keyring(Keyring({"bench": secrets.token_bytes(32)}, "a throwaway benchmark key"))
    collection = collect(settings, load_checks((), settings.checks.paths))
    load_runbooks(settings.runbooks_dir)  # parsed once per process (timed apart, in main)
    t0 = time.perf_counter()
    with session_scope(factory) as session:  # what process_collection does in its transaction
        store_collection(session, collection)
        events = events_for_results(
            collection.results, group_threshold=100_000, open_fingerprints=open_fingerprints(session)
        )
        service = TicketService(session, settings)
        opened = [r.ticket.id for r in map(service.ingest, events) if r.ticket is not None]
    intake = time.perf_counter() - t0
    t1 = time.perf_counter()
    attach_runbooks(settings, factory, opened)  # what process_collection does after the commit
    first = time.perf_counter() - t1
    t2 = time.perf_counter()
    attach_runbooks(settings, factory, opened)  # already ran: the cost of finding there is nothing to do
    second = time.perf_counter() - t2
    engine.dispose()
    return intake, first, second, len(opened)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entities", type=int, default=200)
    args = parser.parse_args()
    t0 = time.perf_counter()
    shipped = shipped_runbooks()
    took = 1000 * (time.perf_counter() - t0)
    print(f"shipped runbooks parsed once per process: {len(shipped)} in {took:.0f} ms")
    rows = []
    for label, diagnostics in (("runbook, no diagnostics", ""), ("runbook, 2 diagnostics", TWO)):
        with tempfile.TemporaryDirectory() as tmp:
            rows.append((label, *run(Path(tmp), args.entities, diagnostics)))
    print(f"{'case':<24} {'tickets':>7} {'intake ms/t':>12} {'attach ms/t':>12} {'re-attach ms/t':>15}")
    for label, intake, first, second, opened in rows:
        print(
            f"{label:<24} {opened:>7} {1000 * intake / opened:>12.2f} {1000 * first / opened:>12.2f}"
            f" {1000 * second / opened:>15.3f}"
        )


if __name__ == "__main__":
    main()
