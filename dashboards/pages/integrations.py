"""Integrations: backlog and age of the oldest message per interface; failed messages."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboards import ui
from dashboards.data_monitor import (
    INTEGRATION_BACKLOG,
    INTEGRATION_FAILED,
    failing_checks,
    interfaces,
    metric_series,
    worst_age,
)
from monitor import check_ids

ctx = ui.context()
ui.require_access(ctx)  # each page too: Streamlit also serves pages/*.py by URL, without app.py
f = ui.page_filters(ctx)
limit_s = ctx.settings.dashboard.exit.max_interface_age_s
st.title("Integrations")

# every query of the page starts now, on the dashboard's query threads; the layout below waits for each
pending_status = ui.start(ctx, "interfaces", lambda c: interfaces(c, f), f)
pending_backlog = ui.start(
    ctx, "integration_backlog", lambda c: metric_series(c, f, INTEGRATION_BACKLOG, "integration"), f
)
pending_failed = ui.start(
    ctx, "integration_failed", lambda c: metric_series(c, f, INTEGRATION_FAILED, "integration"), f
)
pending_checks = ui.start(
    ctx, "integration_checks", lambda c: failing_checks(c, f, f"{check_ids.INTEGRATION}."), f
)

status = pending_status.get()
age = worst_age(status)
cols = st.columns(4)
cols[0].metric("Interfaces", len(status))
cols[1].metric("Messages waiting", f"{sum(s.backlog or 0 for s in status):,.0f}")
cols[2].metric(
    "Oldest message", "n/a" if age is None else f"{age / 60:.0f} min", help=f"limit {limit_s / 60:.0f} min"
)
cols[3].metric("Failed messages", f"{sum(s.failed or 0 for s in status):,.0f}")

st.subheader("Per interface (latest)")
rows = [
    {
        "integration": s.integration,
        "source": s.source,
        "backlog": s.backlog,
        "oldest_age_min": None if s.oldest_age_s is None else round(s.oldest_age_s / 60, 1),
        "over_limit": s.oldest_age_s is not None and s.oldest_age_s > limit_s,
        "failed": s.failed,
        "at": s.at,
    }
    for s in status
]
ui.table(rows, "interfaces", key="integrations_status", empty="No integration metrics in this range.")

st.subheader("Backlog over time")
backlog = pending_backlog.get()
if backlog:
    ui.chart(
        alt.Chart(ui.data(backlog))
        .mark_line(point=True)
        .encode(
            x=alt.X("at:T", title=None),
            y=alt.Y("max:Q", title="messages waiting (max)"),
            color="series:N",
            tooltip=["at:T", "series:N", "max:Q", "mean:Q"],
        )
    )
ui.download("backlog over time", backlog, "integration_backlog.csv", key="csv_integrations_backlog")

st.subheader("Failed messages over time")
failed = pending_failed.get()
if failed:
    ui.chart(
        alt.Chart(ui.data(failed))
        .mark_bar()
        .encode(
            x=alt.X("at:T", title=None),
            y=alt.Y("max:Q", title="failed messages"),
            color="series:N",
        )
    )
ui.download("failed messages", failed, "integration_failed.csv", key="csv_integrations_failed")

st.subheader("Failing integration checks")
checks = pending_checks.get()
ui.table(
    checks, "failing integration checks", key="integrations_checks", empty="No integration check failed."
)
