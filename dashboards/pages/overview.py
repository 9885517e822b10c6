"""Overview: go-live day, urgent open tickets, SLA, flow, exit criteria and the burn-down."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboards import ui
from dashboards.data import flow, open_counts, open_urgent
from dashboards.data_cutover import load_dualrun
from dashboards.data_overview import burn_down, exit_criteria, pack_map
from dashboards.data_service import combined, sla_compliance

ctx = ui.context()
ui.require_access(ctx)  # each page too: Streamlit also serves pages/*.py by URL, without app.py
f = ui.page_filters(ctx)
ex = ctx.settings.dashboard.exit
go_live = ctx.settings.dashboard.go_live_date

st.title("Hypercare overview")
if go_live is None:
    st.caption("Set `dashboard.go_live_date` to count the days since go-live.")
    day_text = "not set"
else:
    day_text = str((ctx.today - go_live).days + 1)

last7 = f.last(7, ctx.today)
pack_of = pack_map(ctx.settings)
# every query of the page starts now, on the dashboard's query threads; the layout below waits for each
pending_counts = ui.start(ctx, "open_counts", lambda c: open_counts(c, f), f)
pending_sla7 = ui.start(ctx, "sla7", lambda c: combined(sla_compliance(c, last7, ctx.now)), last7, ctx.now)
pending_days = ui.start(ctx, "flow", lambda c: flow(c, f), f)
pending_urgent = ui.start(ctx, "open_urgent", lambda c: open_urgent(c, f, ctx.now), f, ctx.now)
pending_criteria = ui.start(
    ctx,
    "exit_criteria",
    lambda c: exit_criteria(
        c,
        ctx.settings,
        f,
        ctx.now,
        pack_of=pack_of,
        dualrun=load_dualrun(c, ctx.settings, f, ctx.now),
    ),
    f,
    ctx.now,
)
counts, sla7, days = pending_counts.get(), pending_sla7.get(), pending_days.get()
inflow, outflow = sum(d.inflow for d in days), sum(d.outflow for d in days)

cols = st.columns(6)
cols[0].metric("Go-live day", day_text)
cols[1].metric("Open P1", counts["P1"])
cols[2].metric("Open P2", counts["P2"])
cols[3].metric("Response SLA (7 d)", ui.percent(sla7.response_ratio))
cols[4].metric("Resolution SLA (7 d)", ui.percent(sla7.resolution_ratio))
cols[5].metric("Inflow / outflow", f"{inflow} / {outflow}", delta=inflow - outflow, delta_color="inverse")

left, right = st.columns(2)
with left:
    st.subheader("Open P1 and P2")
    urgent = pending_urgent.get()
    ui.table(urgent, "open P1/P2", key="overview_urgent", empty="No open P1 or P2 ticket.")
with right:
    st.subheader("Exit criteria")
    criteria = pending_criteria.get()
    for crit in criteria:
        mark = {True: ":green[●] GREEN", False: ":red[●] RED", None: ":gray[●] NO DATA"}[crit.ok]
        st.markdown(f"{mark} **{crit.name}** — {crit.value} (target {crit.target})")
    ui.download("exit criteria", criteria, "exit_criteria.csv", key="csv_overview_exit")

st.subheader("Inflow vs outflow")
flow_chart = (
    alt.Chart(ui.data(days))
    .transform_fold(["inflow", "outflow"], as_=["flow", "tickets"])
    .mark_bar(opacity=0.8)
    .encode(
        x=alt.X("day:T", title=None),
        xOffset="flow:N",
        y=alt.Y("tickets:Q"),
        color=alt.Color("flow:N", scale=alt.Scale(range=["#d62728", "#2ca02c"])),
        tooltip=["day:T", "flow:N", "tickets:Q"],
    )
)
ui.chart(flow_chart)

st.subheader("Burn-down")
bd = burn_down(days)
if bd.projected_exit is None:
    st.markdown(f"Backlog **{bd.backlog}**; not shrinking at the recent pace ({bd.daily_burn:+.1f}/day).")
else:
    st.markdown(
        f"Backlog **{bd.backlog}**, burning {bd.daily_burn:.1f}/day: projected empty on "
        f"**{bd.projected_exit.isoformat()}**."
    )
burn_rows = [{"day": d, "backlog": b, "kind": k} for d, b, k in bd.points]
ui.chart(
    alt.Chart(ui.data(burn_rows))
    .mark_line(point=True)
    .encode(
        x=alt.X("day:T", title=None),
        y="backlog:Q",
        color="kind:N",
        strokeDash="kind:N",
        tooltip=["day:T", "backlog:Q", "kind:N"],
    )
)
ui.download("flow and burn-down", days, "flow.csv", key="csv_overview_flow")
