"""Performance: probe latency and error rate over time with anomalies marked; host and database health."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboards import ui
from dashboards.data_monitor import (
    DB_METRICS,
    HOST_METRICS,
    PROBE_LATENCY,
    PROBE_SUCCESS,
    anomalies,
    error_rate,
    latest_values,
    metric_series,
)

ctx = ui.context()
ui.require_access(ctx)  # each page too: Streamlit also serves pages/*.py by URL, without app.py
f = ui.page_filters(ctx)
st.title("Performance")

# every query of the page starts now, on the dashboard's query threads; the layout below waits for each
pending_latency = ui.start(ctx, "probe_latency", lambda c: metric_series(c, f, PROBE_LATENCY, "probe"), f)
pending_success = ui.start(ctx, "probe_success", lambda c: metric_series(c, f, PROBE_SUCCESS, "probe"), f)
pending_cpu = ui.start(
    ctx, "host_cpu", lambda c: metric_series(c, f, "hypercare_host_cpu_usage_ratio", "source"), f
)
pending_marks = ui.start(ctx, "anomalies", lambda c: anomalies(c, f), f)
pending_host = ui.start(ctx, "host_latest", lambda c: latest_values(c, f, HOST_METRICS), f)
pending_db = ui.start(ctx, "db_latest", lambda c: latest_values(c, f, DB_METRICS), f)

latency = pending_latency.get()
errors = error_rate(pending_success.get())
marks = pending_marks.get()
samples = sum(p.samples for p in latency)
worst = max((p.max for p in latency), default=None)
mean = sum(p.mean * p.samples for p in latency) / samples if samples else None
failed = sum(round((1 - (1 - e.mean)) * e.samples) for e in errors)
runs = sum(e.samples for e in errors)

cols = st.columns(4)
cols[0].metric("Probe runs", samples)
cols[1].metric("Mean latency", "n/a" if mean is None else f"{mean * 1000:.0f} ms")
cols[2].metric(
    "Error rate", ui.percent(failed / runs if runs else None), help=f"{failed} of {runs} runs failed"
)
cols[3].metric("Anomalies", sum(1 for m in marks if m.kind == "anomaly"), help="Detector alarms in the range")

st.subheader("Probe latency (seconds)")
if latency:
    rules = (
        alt.Chart(ui.data(marks))
        .mark_rule(color="#d62728", strokeDash=[4, 3])
        .encode(x="at:T", tooltip=["at:T", "kind:N", "series:N", "summary:N"])
    )
    lines = (
        alt.Chart(ui.data(latency))
        .mark_line(point=True)
        .encode(
            x=alt.X("at:T", title=None),
            y=alt.Y("mean:Q", title="mean latency (s)"),
            color="series:N",
            tooltip=["at:T", "series:N", "mean:Q", "max:Q", "samples:Q"],
        )
    )
    ui.chart(alt.layer(lines, rules) if marks else lines)
ui.table(latency, "probe latency", key="performance_latency", empty="No probe ran in this range.")

st.subheader("Probe error rate")
if errors:
    ui.chart(
        alt.Chart(ui.data(errors))
        .mark_area(opacity=0.6, line=True)
        .encode(
            x=alt.X("at:T", title=None),
            y=alt.Y("mean:Q", title="error rate", axis=alt.Axis(format="%")),
            color="series:N",
            tooltip=["at:T", "series:N", alt.Tooltip("mean:Q", format=".1%"), "samples:Q"],
        )
    )
ui.download("probe error rate", errors, "probe_error_rate.csv", key="csv_performance_errors")

st.subheader("Anomalies and probe failures")
ui.table(marks, "anomalies", key="performance_anomalies", empty="No anomaly in this range.")

left, right = st.columns(2)
with left:
    st.subheader("Host health (latest)")
    host = pending_host.get()
    ui.table(host, "host health", key="performance_host", empty="No host metrics in this range.")
    cpu = pending_cpu.get()
    if cpu:
        ui.chart(
            alt.Chart(ui.data(cpu))
            .mark_line()
            .encode(
                x=alt.X("at:T", title=None),
                y=alt.Y("mean:Q", title="CPU busy", axis=alt.Axis(format="%")),
                color="series:N",
            )
        )
with right:
    st.subheader("Database health (latest)")
    db = pending_db.get()
    ui.table(db, "database health", key="performance_db", empty="No database-health metrics in this range.")
