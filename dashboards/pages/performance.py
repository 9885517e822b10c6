"""Performance: probe latency per probe (p95, not a mean of unlike probes) and error rate over time with
anomalies marked; host and database health. Every tile is a sum or a pick over the table below it
(dashboards/data_health.py)."""

from __future__ import annotations

import altair as alt
import streamlit as st

from core.i18n import N_
from dashboards import present, ui
from dashboards.data_health import count_by_kind, probe_errors, probe_latency, slowest, total_errors
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

ERROR_TARGET = 0.05
"""Probe error rate above which the tile turns red (5 %)."""

ctx = ui.context()
ui.require_access(ctx)  # each page too: Streamlit also serves pages/*.py by URL, without app.py
f = ui.page_filters(ctx)
_ = ctx.gettext
st.title(_("Performance"))

# every query of the page starts now, on the dashboard's query threads; the layout below waits for each
pending_stats = ui.start(ctx, "probe_latency_stats", lambda c: probe_latency(c, f), f)
pending_latency = ui.start(ctx, "probe_latency", lambda c: metric_series(c, f, PROBE_LATENCY, "probe"), f)
pending_success = ui.start(ctx, "probe_success", lambda c: metric_series(c, f, PROBE_SUCCESS, "probe"), f)
pending_cpu = ui.start(
    ctx, "host_cpu", lambda c: metric_series(c, f, "hypercare_host_cpu_usage_ratio", "source"), f
)
pending_marks = ui.start(ctx, "anomalies", lambda c: anomalies(c, f), f)
pending_host = ui.start(ctx, "host_latest", lambda c: latest_values(c, f, HOST_METRICS), f)
pending_db = ui.start(ctx, "db_latest", lambda c: latest_values(c, f, DB_METRICS), f)

stats = pending_stats.get()
latency = pending_latency.get()
success = pending_success.get()
errors, per_probe = error_rate(success), probe_errors(success)
marks = pending_marks.get()
kinds = count_by_kind(marks)
worst = slowest(stats)
total = total_errors(per_probe)

cols = st.columns(5)
cols[0].metric(
    _("Probe runs"), sum(p.runs for p in stats), help=_("%(count)s probe(s)") % {"count": len(stats)}
)
cols[1].metric(
    _("Slowest probe (p95)"),
    _("n/a") if worst is None else present.duration_ms(worst.p95_ms),
    help=_("no probe ran in this range")
    if worst is None
    else _("probe %(probe)s, %(runs)s runs") % {"probe": worst.probe, "runs": worst.runs},
)
ui.judged(
    cols[2],
    _("Probe error rate"),
    present.pct(total.error_rate),
    present.at_most(total.error_rate, ERROR_TARGET, present.pct(ERROR_TARGET, 0), _),
    help=_("%(failed)s of %(runs)s runs failed") % {"failed": total.failed, "runs": total.runs},
)
cols[3].metric(
    _("Anomalies"), kinds["anomaly"], help=_("Detector alarms in the range (rows of the table below)")
)
cols[4].metric(
    _("Probe failures"), kinds["probe failure"], help=_("Failed probe runs (rows of the table below)")
)

st.subheader(_("Latency per probe"))
ui.table(stats, N_("latency per probe"), key="performance_probes", empty=N_("No probe ran in this range."))
if latency:
    rules = (
        alt.Chart(ui.data(marks))
        .mark_rule(color="#d62728", strokeDash=[4, 3])
        .encode(x=ui.time_x(), tooltip=[ui.time_tip(), "kind:N", "series:N", "summary:N"])
    )
    lines = (
        alt.Chart(ui.data(latency))
        .mark_line(point=True)
        .encode(
            x=ui.time_x(),
            y=alt.Y("max:Q", title=_("slowest run of the hour (s)")),
            color=alt.Color("series:N", title=_("probe")),
            tooltip=[
                ui.time_tip(),
                alt.Tooltip("series:N", title=_("probe")),
                "mean:Q",
                "max:Q",
                "samples:Q",
            ],
        )
    )
    ui.chart(alt.layer(lines, rules) if marks else lines)
ui.download(N_("probe latency over time"), latency, "probe_latency.csv", key="csv_performance_latency")

st.subheader(_("Probe errors"))
ui.table(
    per_probe, N_("probe errors"), key="performance_errors_table", empty=N_("No probe ran in this range.")
)
if errors:
    # bars, not an area: one hour of data is one bar (an area of one point draws nothing)
    ui.chart(
        alt.Chart(ui.data(errors))
        .mark_bar()
        .encode(
            x=ui.time_x(),
            y=alt.Y(
                "mean:Q", title=_("error rate"), axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])
            ),
            color=alt.Color("series:N", title=_("probe")),
            tooltip=[
                ui.time_tip(),
                "series:N",
                alt.Tooltip("mean:Q", title=_("error rate"), format=".1%"),
                "samples:Q",
            ],
        )
    )
ui.download(N_("probe error rate"), errors, "probe_error_rate.csv", key="csv_performance_errors")

st.subheader(_("Anomalies and probe failures"))
ui.table(
    marks,
    N_("anomalies"),
    key="performance_anomalies",
    empty=N_("No detector alarm and no failed probe run in this range."),
)

left, right = st.columns(2)
with left:
    st.subheader(_("Host health (latest)"))
    host = pending_host.get()
    ui.table(
        host,
        N_("host health"),
        key="performance_host",
        empty=N_("No host metrics in this range: is the host collector enabled (collectors.host)?"),
    )
    cpu = pending_cpu.get()
    if cpu:
        ui.chart(
            alt.Chart(ui.data(cpu))
            .mark_line()
            .encode(
                x=ui.time_x(),
                y=alt.Y("mean:Q", title=_("CPU busy"), axis=alt.Axis(format="%")),
                color=alt.Color("series:N", title=_("source")),
            )
        )
with right:
    st.subheader(_("Database health (latest)"))
    db = pending_db.get()
    ui.table(
        db,
        N_("database health"),
        key="performance_db",
        empty=N_("No database-health metrics in this range: is the db_health collector enabled?"),
    )
