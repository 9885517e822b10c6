"""Overview: go-live day, urgent open tickets, SLA, flow, exit criteria and the burn-down."""

from __future__ import annotations

import altair as alt
import streamlit as st

from core.i18n import N_
from core.localtime import format_time
from dashboards import present, ui
from dashboards.data import flow, open_counts, open_urgent
from dashboards.data_cutover import load_dualrun
from dashboards.data_overview import burn_down, burn_down_text, exit_criteria, go_live_status, pack_map
from dashboards.data_service import combined, sla_compliance

ctx = ui.context()
ui.require_access(ctx)  # each page too: Streamlit also serves pages/*.py by URL, without app.py
f = ui.page_filters(ctx)
ex = ctx.settings.dashboard.exit
_ = ctx.gettext
go_live = ctx.settings.dashboard.go_live_date

st.title(_("Hypercare overview"))
st.caption(_("As of %(when)s") % {"when": format_time(ctx.now, ctx.zone)})

last7 = f.last(7, ctx.today)
pack_of = pack_map(ctx.settings)
# every query of the page starts now, on the dashboard's query threads; the layout below waits for each
pending_golive = ui.start(ctx, "go_live", lambda c: go_live_status(c, go_live, ctx.today), go_live, ctx.today)
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
        _=_,
    ),
    f,
    ctx.now,
    ctx.language,
)
counts, sla7, days = pending_counts.get(), pending_sla7.get(), pending_days.get()
inflow, outflow = sum(d.inflow for d in days), sum(d.outflow for d in days)

golive = pending_golive.get()
sla_target = present.pct(ex.sla_min_ratio, 0)
cols = st.columns(6)
caveat = golive.caveat(_)
cols[0].metric(
    _("Go-live day"),
    golive.text(_),
    delta=caveat,
    delta_color="orange",
    delta_arrow="off",
    help=_("Set `dashboard.go_live_date` to count the days since go-live.") if go_live is None else caveat,
)
ui.judged(cols[1], _("Open P1"), str(counts["P1"]), present.at_most(counts["P1"], 0, "0", _))
ui.judged(
    cols[2],
    _("Open P2"),
    str(counts["P2"]),
    present.at_most(counts["P2"], ex.max_open_p2, str(ex.max_open_p2), _),
)
ui.judged(
    cols[3],
    _("Response SLA (7 d)"),
    ui.percent(sla7.response_ratio),
    present.at_least(sla7.response_ratio, ex.sla_min_ratio, sla_target, _),
    help=_("%(met)s of %(due)s response clocks met") % {"met": sla7.response_met, "due": sla7.response_due},
)
ui.judged(
    cols[4],
    _("Resolution SLA (7 d)"),
    ui.percent(sla7.resolution_ratio),
    present.at_least(sla7.resolution_ratio, ex.sla_min_ratio, sla_target, _),
    help=_("%(met)s of %(due)s resolution clocks met")
    % {"met": sla7.resolution_met, "due": sla7.resolution_due},
)
net = inflow - outflow
cols[5].metric(
    _("Inflow / outflow"),
    f"{inflow} / {outflow}",
    delta=_("▲ backlog +%(net)s") % {"net": net}
    if net > 0
    else (_("▼ backlog %(net)s") % {"net": net} if net < 0 else _("= backlog flat")),
    delta_color="red" if net > 0 else "green",
    delta_arrow="off",
)

left, right = st.columns(2)
with left:
    st.subheader(_("Open P1 and P2"))
    urgent = pending_urgent.get()
    ui.table(urgent, N_("open P1/P2"), key="overview_urgent", empty=N_("No open P1 or P2 ticket."))
with right:
    st.subheader(_("Exit criteria"))
    criteria = pending_criteria.get()
    for crit in criteria:
        st.markdown(
            _("%(mark)s **%(name)s** — %(value)s (target %(target)s)")
            % {
                "mark": present.status_word(crit.ok, _).mark,
                "name": crit.name,
                "value": crit.value,
                "target": crit.target,
            }
        )
    ui.download(N_("exit criteria"), criteria, "exit_criteria.csv", key="csv_overview_exit")

st.subheader(_("Inflow vs outflow"))
flow_chart = (
    alt.Chart(ui.data(days))
    .transform_fold(["inflow", "outflow"], as_=["flow", "tickets"])
    .mark_bar(opacity=0.8)
    .encode(
        x=ui.day_band("day"),
        xOffset="flow:N",
        y=alt.Y("tickets:Q", title=_("tickets")),
        color=alt.Color("flow:N", scale=alt.Scale(range=["#d62728", "#2ca02c"])),
        tooltip=[ui.time_tip("day", daily=True), "flow:N", "tickets:Q"],
    )
)
ui.chart(flow_chart)

st.subheader(_("Burn-down"))
bd = burn_down(days)
st.markdown(burn_down_text(bd, _))
burn_rows = [{"day": d, "backlog": b, "kind": k} for d, b, k in bd.points]
ui.chart(
    alt.Chart(ui.data(burn_rows))
    .mark_line(point=True)
    .encode(
        x=ui.time_x("day", daily=True),
        y=alt.Y("backlog:Q", title=_("open tickets")),
        color=alt.Color("kind:N", title=None),
        strokeDash="kind:N",
        tooltip=[ui.time_tip("day", daily=True), "backlog:Q", "kind:N"],
    )
)
ui.download(N_("flow and burn-down"), days, "flow.csv", key="csv_overview_flow")
