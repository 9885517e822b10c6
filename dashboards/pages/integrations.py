"""Integrations: every interface known from its metrics, its checks or its open tickets; backlog and age of
the oldest message where collected; failing checks and open tickets. Every tile is a sum over the table
below it (dashboards/data_health.py)."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboards import present, ui
from dashboards.data_health import integration_status
from dashboards.data_monitor import INTEGRATION_BACKLOG, INTEGRATION_FAILED, metric_series

ctx = ui.context()
ui.require_access(ctx)  # each page too: Streamlit also serves pages/*.py by URL, without app.py
f = ui.page_filters(ctx)
limit_s = ctx.settings.dashboard.exit.max_interface_age_s
st.title("Integrations")

# every query of the page starts now, on the dashboard's query threads; the layout below waits for each
pending_status = ui.start(ctx, "integration_status", lambda c: integration_status(c, f, ctx.now), f, ctx.now)
pending_backlog = ui.start(
    ctx, "integration_backlog", lambda c: metric_series(c, f, INTEGRATION_BACKLOG, "integration"), f
)
pending_failed = ui.start(
    ctx, "integration_failed", lambda c: metric_series(c, f, INTEGRATION_FAILED, "integration"), f
)

status = pending_status.get()
not_collected = "not collected: no integration collector reports it (collectors.integrations)"
age = status.oldest_age_s
cols = st.columns(5)
cols[0].metric("Interfaces", len(status.rows), help="known from metrics, checks or open tickets")
ui.judged(
    cols[1],
    "Open integration tickets",
    str(len(status.tickets)),
    present.at_most(len(status.tickets), 0, "0"),
)
cols[2].metric(
    "Messages waiting",
    "n/a" if status.backlog is None else f"{status.backlog:,.0f}",
    help=not_collected if status.backlog is None else None,
)
ui.judged(
    cols[3],
    "Oldest message",
    "n/a" if age is None else f"{age / 60:,.0f} min",
    present.at_most(None if age is None else age / 60, limit_s / 60, f"{limit_s / 60:.0f} min"),
    help=not_collected if age is None else None,
)
cols[4].metric(
    "Failed messages",
    "n/a" if status.failed_messages is None else f"{status.failed_messages:,.0f}",
    help=not_collected if status.failed_messages is None else None,
)

st.subheader("Per interface")
rows = [
    {
        "interface": r.interface,
        "source": r.source,
        "backlog": r.backlog,
        "oldest_age_min": None if r.oldest_age_s is None else round(r.oldest_age_s / 60, 1),
        "over_limit": r.oldest_age_s is not None and r.oldest_age_s > limit_s,
        "failed_messages": r.failed_messages,
        "failing_checks": r.failing_checks,
        "open_tickets": r.open_tickets,
        "last_seen": r.last_seen,
    }
    for r in status.rows
]
ui.table(
    rows,
    "interfaces",
    key="integrations_status",
    empty="No interface in this range: no integration metric, failing integration check or open ticket.",
)

st.subheader("Open integration tickets")
ui.table(
    status.tickets,
    "open integration tickets",
    key="integrations_tickets",
    empty="No open ticket raised by an integration check.",
)

st.subheader("Backlog over time")
backlog = pending_backlog.get()
if backlog:
    ui.chart(
        alt.Chart(ui.data(backlog))
        .mark_line(point=True)
        .encode(
            x=ui.time_x(),
            y=alt.Y("max:Q", title="messages waiting (max)"),
            color=alt.Color("series:N", title="interface"),
            tooltip=[ui.time_tip(), "series:N", "max:Q", "mean:Q"],
        )
    )
else:
    st.info(f"No backlog history: {not_collected}.")
ui.download("backlog over time", backlog, "integration_backlog.csv", key="csv_integrations_backlog")

st.subheader("Failed messages over time")
failed = pending_failed.get()
if failed:
    ui.chart(
        alt.Chart(ui.data(failed))
        .mark_bar()
        .encode(
            x=ui.time_x(),
            y=alt.Y("max:Q", title="failed messages"),
            color=alt.Color("series:N", title="interface"),
        )
    )
else:
    st.info(f"No failed-message history: {not_collected}.")
ui.download("failed messages", failed, "integration_failed.csv", key="csv_integrations_failed")

st.subheader("Failing integration checks")
ui.table(
    status.checks,
    "failing integration checks",
    key="integrations_checks",
    empty="No integration check failed in this range.",
)
