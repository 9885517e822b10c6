"""Every dashboard page through Streamlit's AppTest on a store of known data (SQLite and PostgreSQL): the
numbers shown are the known figures, and the ticket figures are the ones the tickets API returns."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from hypercare.app import ports
from hypercare.commands.dashboard import APP
from hypercare.config import load_settings
from tests.dashboards.known_store import PASSWORD, Known
from tickets.app import create_app

SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])
"""Page layout checks run on SQLite only: the figures behind them are checked on both engines in
test_data.py, and the overview, the API parity and the cutover page run on both here."""


def metrics(at: Any) -> dict[str, str]:
    return {m.label: str(m.value) for m in at.metric}


def _page(at: Any, name: str) -> Any:
    at.switch_page(f"pages/{name}.py").run()
    assert not at.exception, at.exception
    return at


def test_overview_shows_go_live_day_open_p1_p2_sla_flow_and_exit_criteria(
    app_test: Any, known: Known
) -> None:
    at = app_test.run()
    assert not at.exception, at.exception
    shown = metrics(at)
    assert shown["Go-live day"] == "10"
    assert (shown["Open P1"], shown["Open P2"]) == ("1", "2")
    assert shown["Response SLA (7 d)"] == "60.0 %"
    assert shown["Resolution SLA (7 d)"] == "66.7 %"
    assert shown["Inflow / outflow"] == "6 / 2"
    deltas = {m.label: m.delta for m in at.metric}
    assert deltas["Open P1"] == "▲ over target (≤ 0)" and deltas["Response SLA (7 d)"].startswith("▼ under")
    text = " ".join(m.value for m in at.markdown)
    assert ":red[▲ RED] **No open P1, few open P2** — P1 1, P2 2" in text
    assert "Reopen rate (14 d)** — 50.0 % (1/2)" in text
    assert "1 in place" in text and "no dual-run comparison has run yet" in text
    assert "Backlog **5**, growing by" in text  # 6 in, 2 out: the sign is spelled out
    urgent = at.dataframe[0].value
    assert list(urgent["title"]) == ["Ticket 1", "Ticket 3", "Ticket 2"]
    # rows link to their ticket in the queue's UI
    assert all(u.startswith("http://127.0.0.1:8080/tickets/") for u in urgent["id"])


@SQLITE_ONLY
def test_tickets_page_numbers(app_test: Any, known: Known) -> None:
    at = _page(app_test.run(), "tickets")
    shown = metrics(at)
    assert (shown["Inflow"], shown["Outflow"], shown["Backlog now"]) == ("6", "2", "5")
    assert shown["Reopen rate"] == "50.0 %"
    assert shown["Satisfaction"] == "3.00 / 5"
    frames = {tuple(df.value.columns): df.value for df in at.dataframe}
    sla = next(v for k, v in frames.items() if "response_due" in k).set_index("priority")
    assert sla.loc["P2", "response_ratio"] == 50.0 and sla.loc["P3", "resolution_ratio"] == 100.0
    times = next(v for k, v in frames.items() if "mtta_mean_h" in k).set_index("priority")
    assert times.loc["P2", "mtta_mean_h"] == "1.25" and times.loc["P3", "mttr_mean_h"] == "14"
    assert times.loc["P1", "mtta_mean_h"] == "—"  # no acknowledged P1: a dash, never "None"
    modules = next(v for k, v in frames.items() if "module" in k)
    assert list(zip(modules["module"], modules["tickets"], strict=True)) == [("ar", 2), ("ap", 1)]
    workarounds = next(v for k, v in frames.items() if "what" in k)
    assert list(workarounds["what"]) == ["Post the drift by hand"]


@SQLITE_ONLY
def test_filters_change_what_the_page_shows(app_test: Any, known: Known) -> None:
    at = app_test.run()
    assert "service" in at.multiselect(key="queues").options
    at.multiselect(key="queues").select("service").run()
    shown = metrics(at)
    assert (shown["Open P1"], shown["Open P2"], shown["Inflow / outflow"]) == ("0", "0", "1 / 0")
    at.multiselect(key="queues").unselect("service").run()
    at.multiselect(key="sources").select("finance").run()
    shown = metrics(at)
    assert (shown["Open P1"], shown["Open P2"], shown["Inflow / outflow"]) == ("0", "1", "2 / 0")


@SQLITE_ONLY
def test_data_consistency_page_numbers(app_test: Any, known: Known) -> None:
    at = _page(app_test.run(), "consistency")
    shown = metrics(at)
    assert shown["Pass rate (range)"] == "40.0 %"
    assert shown["Checks passing now"] == "50.0 %"
    assert shown["Failing now"] == "1"
    assert shown["Money at risk, open"] == "CNY 1,250.50"
    worst = next(df.value for df in at.dataframe if "last_status" in df.value.columns)
    # a check's row links to its tickets in the queue
    assert list(worst["check_id"]) == [
        "http://127.0.0.1:8080/tickets?q=ar.drift&status=all",
        "http://127.0.0.1:8080/tickets?q=gl.balance&status=all",
    ]


@SQLITE_ONLY
def test_performance_page_numbers(app_test: Any, known: Known) -> None:
    at = _page(app_test.run(), "performance")
    shown = metrics(at)
    assert shown["Probe runs"] == "2"
    assert shown["Slowest probe (p95)"] == "400 ms"  # per probe, never a mean of unlike probes
    assert shown["Probe error rate"] == "25.0 %"
    assert (shown["Anomalies"], shown["Probe failures"]) == ("1", "1")
    frames = {tuple(df.value.columns): df.value for df in at.dataframe}
    probes = next(v for k, v in frames.items() if "p95_ms" in k)
    assert str(int(probes["runs"].sum())) == shown["Probe runs"]
    marks = next(v for k, v in frames.items() if "summary" in k)
    assert sorted(marks["kind"]) == ["anomaly", "probe failure"]  # the two tiles count these rows
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    error_chart = next(s for s in specs if s.get("encoding", {}).get("y", {}).get("title") == "error rate")
    assert error_chart["mark"]["type"] == "bar"  # one hour of data is one bar (an area of one point is empty)
    axes = [s["encoding"]["x"]["axis"]["format"] for s in specs if "x" in s.get("encoding", {})]
    assert axes and all(a == "%d %b %H:%M" for a in axes)


@SQLITE_ONLY
def test_integrations_page_numbers(app_test: Any, known: Known) -> None:
    at = _page(app_test.run(), "integrations")
    shown = metrics(at)
    assert (shown["Interfaces"], shown["Messages waiting"]) == ("1", "12")
    assert shown["Oldest message"] == "90 min"
    assert shown["Failed messages"] == "2"
    assert shown["Open integration tickets"] == "1"  # #3, raised by integration.finance-out.age
    table = at.dataframe[0].value
    assert bool(table.loc[0, "over_limit"]) is True and int(table.loc[0, "open_tickets"]) == 1


@SQLITE_ONLY
def test_cutover_page_says_no_dual_run_yet(app_test: Any, known: Known) -> None:
    at = _page(app_test.run(), "cutover")
    assert any("no dual-run comparison has run yet" in i.value for i in at.info)


def test_ticket_numbers_equal_the_api(app_test: Any, known: Known, store_url: str) -> None:
    """Open tickets per priority, the workaround register and the money at risk of open tickets: the
    dashboard and ``/api/v1`` agree on the same store."""
    at = app_test.run()
    shown = metrics(at)
    settings = load_settings()
    with TestClient(create_app(settings, registry=CollectorRegistry(), ports=ports(settings))) as client:
        auth = {"Authorization": f"Bearer {known.tokens['viewer']}"}
        listing = client.get("/api/v1/tickets", params={"status": "open", "limit": 500}, headers=auth).json()
        register = client.get("/api/v1/workarounds", headers=auth).json()
    by_priority = listing["facets"]["by_priority"]
    assert (shown["Open P1"], shown["Open P2"]) == (str(by_priority["P1"]), str(by_priority["P2"]))
    at = _page(at, "consistency")
    money = sum(
        Decimal(str(t["amount_at_risk"])) for t in listing["items"] if t["amount_at_risk"] is not None
    )
    assert metrics(at)["Money at risk, open"] == f"CNY {money:,.2f}"
    at = _page(at, "tickets")
    workarounds = next(df.value for df in at.dataframe if "what" in df.value.columns)
    assert sorted(workarounds["id"]) == sorted(w["id"] for w in register)
    assert list(workarounds["ticket_id"]) == [
        f"http://127.0.0.1:8080/tickets/{w['ticket_id']}" for w in register
    ]


@SQLITE_ONLY
def test_login_lets_in_managers_and_viewers_only(known: Known) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert [t.value for t in at.title] == ["Hypercare dashboards"] and not at.metric
    for user, password, admitted in (
        ("agent", PASSWORD, False),
        ("manager", "wrong-password", False),
        ("nobody", PASSWORD, False),
        ("viewer", PASSWORD, True),
    ):
        at.text_input(key="login_username").input(user)
        at.text_input(key="login_password").input(password)
        at.button[0].click().run()
        assert not at.exception, at.exception
        assert bool(at.metric) is admitted, user
        assert bool(at.error) is not admitted, user


@SQLITE_ONLY
@pytest.mark.parametrize(
    "page", ["overview", "tickets", "consistency", "performance", "integrations", "cutover"]
)
def test_a_page_opened_by_url_asks_for_the_login(known: Known, page: str) -> None:
    """Streamlit also serves ``pages/*.py`` by URL without running app.py: each page has the gate too."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP.parent / "pages" / f"{page}.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Hypercare dashboards"] and not at.metric and not at.dataframe


def test_cutover_page_shows_the_dual_run_gate(app_test: Any, known: Known, store_url: str) -> None:
    from datetime import timedelta

    from core.session import make_engine, session_factory, session_scope
    from monitor.dualrun.store import DualRunEntityResult, DualRunRun

    engine = make_engine(store_url)
    with session_scope(session_factory(engine)) as session:
        run = DualRunRun(
            comparison="gl-cutover",
            started_at=known.now - timedelta(hours=3),
            status="differ",
            trigger="test",
        )
        run.entities = [
            DualRunEntityResult(entity="journal", matched=100, match_rate=1.0, status="match"),
            DualRunEntityResult(
                entity="invoice",
                matched=90,
                changed=10,
                match_rate=0.9,
                status="differ",
                unexplained=10,
                unexplained_money=Decimal("500.00"),
            ),
        ]
        session.add(run)
    engine.dispose()
    at = _page(app_test.run(), "cutover")
    shown = metrics(at)
    assert (shown["Go / no-go"], shown["Entities compared"], shown["Entities matching"]) == (
        "NO-GO",
        "2",
        "1",
    )
    latest = next(
        df.value
        for df in at.dataframe
        if "match_rate" in df.value.columns and "unexplained" in df.value.columns
    )
    assert dict(zip(latest["entity"], latest["match_rate"], strict=True)) == {
        "invoice": 90.0,
        "journal": 100.0,
    }
