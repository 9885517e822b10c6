"""On a server store the housekeeping pass runs in a process of its own beside the serving worker (it no
longer holds the worker's GIL while it walks every open ticket); when that process cannot run, the pass
runs in a thread: housekeeping never stops. The embedded SQLite store keeps the thread."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
import types
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from core.db import utcnow
from core.session import make_engine, session_factory, session_scope
from hypercare.housekeeper import Housekeeper
from tests.tickets.factories import make_event, make_settings, target
from tickets.models import Ticket
from tickets.service import TicketService

ESCALATION = {"levels": {"P2": [{"unacknowledged_min": 15, "notify_tags": ["hypercare-lead"]}]}}
LEAD = target("json://127.0.0.1:9/lead", "P1", tags=("hypercare-lead",))


def waiting_ticket(store_url: str, tmp_path: Path) -> tuple[Housekeeper, int]:
    """A P2 ticket unacknowledged for 20 minutes (due to escalate), and a housekeeper for its store."""
    settings = make_settings(
        tmp_path=tmp_path, database_url=store_url, targets=(LEAD,), escalation=ESCALATION
    )
    factory = session_factory(make_engine(store_url))
    with session_scope(factory) as session:
        ticket = TicketService(session, settings).ingest(make_event(fingerprint="hk", severity="P2")).ticket
        assert ticket is not None
        ticket_id = ticket.id
        session.execute(
            update(Ticket).where(Ticket.id == ticket_id).values(created_at=utcnow() - timedelta(minutes=20))
        )
    return Housekeeper(factory, settings), ticket_id


def done(housekeeper: Housekeeper) -> None:
    housekeeper.close()
    housekeeper.factory.kw["bind"].dispose()


def level_of(housekeeper: Housekeeper, ticket_id: int) -> int:
    with housekeeper.factory() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket.escalation_level


@pytest.mark.parametrize("backend", ["postgres"])
def test_on_a_server_store_a_pass_runs_in_a_process_of_its_own(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as under `hypercare serve`: no script as __main__ for the spawned process to run again (earlier
    # tests in this process leave Streamlit's dashboards/app.py there)
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    housekeeper, ticket_id = waiting_ticket(store_url, tmp_path)
    assert housekeeper.separate
    try:
        report = asyncio.run(housekeeper.run())
        assert report.escalated == 1 and level_of(housekeeper, ticket_id) == 1
        pool = housekeeper._pool
        assert pool is not None, "the pass ran in the housekeeping process"
        children = [p.pid for p in multiprocessing.active_children()]
        assert children and os.getpid() not in children
        assert asyncio.run(housekeeper.run()).escalated == 0, "each level fires once"
    finally:
        done(housekeeper)


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_housekeeping_process_that_dies_leaves_the_pass_to_a_thread(store_url: str, tmp_path: Path) -> None:
    housekeeper, ticket_id = waiting_ticket(store_url, tmp_path)
    # a process that dies as it starts (as one killed by the operating system would)
    housekeeper._pool = ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=os.abort
    )
    report = asyncio.run(housekeeper.run())
    assert report.escalated == 1 and level_of(housekeeper, ticket_id) == 1
    assert housekeeper._pool is None, "the broken process was dropped; the next pass starts a new one"
    done(housekeeper)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_embedded_store_keeps_the_pass_in_a_thread(store_url: str, tmp_path: Path) -> None:
    housekeeper, ticket_id = waiting_ticket(store_url, tmp_path)
    assert not housekeeper.separate
    assert asyncio.run(housekeeper.run()).escalated == 1 and level_of(housekeeper, ticket_id) == 1
    assert housekeeper._pool is None
    done(housekeeper)
