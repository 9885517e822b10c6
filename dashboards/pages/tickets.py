"""Tickets: flow, backlog by priority and age, MTTA/MTTR, SLA, reopen rate, Pareto, queues, user errors by
module, workarounds and reporter satisfaction."""

from __future__ import annotations

import altair as alt
import streamlit as st
from sqlalchemy.orm import Session

from core.i18n import N_
from dashboards import ui
from dashboards.data import backlog_by_age, flow, response_times
from dashboards.data_service import (
    active_workarounds,
    by_queue,
    pareto,
    reopen_rate,
    satisfaction,
    sla_breaches,
    sla_compliance,
    user_errors_by_module,
)

ctx = ui.context()
ui.require_access(ctx)  # each page too: Streamlit also serves pages/*.py by URL, without app.py
f = ui.page_filters(ctx)
_ = ctx.gettext
st.title(_("Tickets and SLAs"))
st.caption(
    _("%(start)s to %(end)s (%(zone)s days)")
    % {"start": f"{f.start:%d %b %Y}", "end": f"{f.end:%d %b %Y}", "zone": ctx.zone_name}
)

# every query of the page starts now, on the dashboard's query threads (the longest first: MTTA/MTTR rank a
# range's tickets, SLA compliance reads every clock); the layout below waits for each as it needs it
pending_mtta = ui.start(ctx, "mtta", lambda c: response_times(c, f, "MTTA"), f)
pending_mttr = ui.start(ctx, "mttr", lambda c: response_times(c, f, "MTTR"), f)
pending_sla = ui.start(ctx, "sla", lambda c: sla_compliance(c, f, ctx.now), f, ctx.now)
pending_queues = ui.start(ctx, "by_queue", lambda c: by_queue(c, f), f)
pending_ages = ui.start(ctx, "backlog_age", lambda c: backlog_by_age(c, f, ctx.now), f, ctx.now)
pending_days = ui.start(ctx, "flow", lambda c: flow(c, f), f)
pending_reopen = ui.start(ctx, "reopen", lambda c: reopen_rate(c, f), f)
pending_sat = ui.start(ctx, "satisfaction", lambda c: satisfaction(c, f), f)
pending_breaches = ui.start(ctx, "breaches", lambda c: sla_breaches(c, f, ctx.now), f, ctx.now)
pending_pareto = {
    dim: ui.start(ctx, f"pareto_{dim}", lambda c, d=dim: pareto(c, f, d), f)  # type: ignore[misc]
    for dim in ("category", "check_id", "source")
}
pending_modules = ui.start(ctx, "user_modules", lambda c: user_errors_by_module(c, f), f)
pending_workarounds = ui.start(
    ctx, "workarounds", lambda c: active_workarounds(Session(bind=c), f, ctx.now), f, ctx.now
)

days = pending_days.get()
reopen = pending_reopen.get()
sat = pending_sat.get()
cols = st.columns(5)
cols[0].metric(_("Inflow"), sum(d.inflow for d in days))
cols[1].metric(_("Outflow"), sum(d.outflow for d in days))
cols[2].metric(_("Backlog now"), days[-1].backlog if days else 0)
cols[3].metric(
    _("Reopen rate"),
    ui.percent(reopen.value),
    help=_("%(count)s of %(total)s") % {"count": reopen.numerator, "total": reopen.denominator},
)
cols[4].metric(
    _("Satisfaction"),
    _("n/a") if sat.mean is None else f"{sat.mean:.2f} / 5",
    help=_("%(count)s ratings") % {"count": sat.ratings},
)

st.subheader(_("Inflow and outflow per day"))
ui.chart(
    alt.Chart(ui.data(days))
    .transform_fold(["inflow", "outflow"], as_=["flow", "tickets"])
    .mark_line(point=True)
    .encode(
        x=ui.time_x("day", daily=True),
        y=alt.Y("tickets:Q", title=_("tickets")),
        color="flow:N",
        tooltip=[ui.time_tip("day", daily=True), "flow:N", "tickets:Q"],
    )
)
ui.download(N_("daily flow"), days, "ticket_flow.csv", key="csv_tickets_flow")

left, right = st.columns(2)
with left:
    st.subheader(_("Backlog by priority and age"))
    ages = pending_ages.get()
    ui.chart(
        alt.Chart(ui.data(ages))
        .mark_bar()
        .encode(
            x=alt.X("priority:N"),
            y="tickets:Q",
            color=alt.Color("bucket:N", sort=["0-2 d", "3-7 d", "8-14 d", ">14 d"]),
            tooltip=["priority:N", "bucket:N", "tickets:Q"],
        )
    )
    ui.download(N_("backlog by age"), ages, "backlog_age.csv", key="csv_tickets_age")
with right:
    st.subheader(_("SLA compliance"))
    sla = pending_sla.get()
    sla_rows = [
        {
            "priority": r.priority,
            "response_due": r.response_due,
            "response_met": r.response_met,
            "response_ratio": r.response_ratio,
            "resolution_due": r.resolution_due,
            "resolution_met": r.resolution_met,
            "resolution_ratio": r.resolution_ratio,
        }
        for r in sla
    ]
    ui.table(sla_rows, N_("SLA compliance"), key="tickets_sla")

st.subheader(_("MTTA and MTTR by priority (hours)"))
a_times, r_times = pending_mtta.get(), pending_mttr.get()
a_rows, r_rows = a_times.durations, r_times.durations
times = [
    {
        "priority": a.priority,
        "acknowledged": a.tickets,
        "mtta_mean_h": a.mean_h,
        "mtta_median_h": a.median_h,
        "mtta_p90_h": a.p90_h,
        "resolved": r.tickets,
        "mttr_mean_h": r.mean_h,
        "mttr_median_h": r.median_h,
        "mttr_p90_h": r.p90_h,
    }
    for a, r in zip(a_rows, r_rows, strict=True)
]
ui.table(times, N_("MTTA/MTTR"), key="tickets_times")
trend = a_times.trend + r_times.trend
if trend:
    ui.chart(
        alt.Chart(ui.data(trend))
        .mark_line(point=True)
        .encode(
            x=ui.time_x("day", daily=True),
            y=alt.Y("hours:Q", title=_("hours (mean of the day)")),
            color="priority:N",
            strokeDash="measure:N",
            tooltip=[ui.time_tip("day", daily=True), "priority:N", "measure:N", "hours:Q", "tickets:Q"],
        )
    )

st.subheader(_("SLA breaches"))
breaches = pending_breaches.get()
ui.table(breaches, N_("SLA breaches"), key="tickets_breaches", empty=N_("No SLA breach in this range."))

st.subheader(_("Top sources of tickets (Pareto)"))
tabs = st.tabs([_("Categories"), _("Checks"), _("Sources")])
for tab, dim in zip(tabs, ("category", "check_id", "source"), strict=True):
    with tab:
        rows = pending_pareto[dim].get()
        if rows:
            base = alt.Chart(ui.data(rows)).encode(x=alt.X("value:N", sort=None, title=None))
            ui.chart(
                alt.layer(
                    base.mark_bar().encode(
                        y=alt.Y("tickets:Q", title=_("tickets")),
                        tooltip=["value:N", "tickets:Q", alt.Tooltip("share:Q", format=".1%")],
                    ),
                    base.mark_line(color="#d62728", point=True).encode(
                        y=alt.Y("cumulative:Q", title=_("cumulative share"), axis=alt.Axis(format="%"))
                    ),
                ).resolve_scale(y="independent")
            )
        ui.table(rows, _("Pareto by %(what)s") % {"what": dim}, key=f"tickets_pareto_{dim}")

left, right = st.columns(2)
with left:
    st.subheader(_("By queue"))
    queues = pending_queues.get()
    ui.table(queues, N_("queues"), key="tickets_queues")
with right:
    st.subheader(_("User-error tickets by ERP module"))
    st.caption(_("Where training is needed (category: user)."))
    modules = pending_modules.get()
    ui.table(modules, N_("user errors by module"), key="tickets_modules", empty=N_("No user-error ticket."))

st.subheader(_("Active workarounds"))
workarounds = pending_workarounds.get()
ui.table(
    workarounds,
    N_("active workarounds"),
    key="tickets_workarounds",
    empty=N_("No active workaround in the register (none recorded, or every one ended)."),
)

st.subheader(_("Reporter satisfaction"))
sat_rows = [{"score": s, "ratings": n} for s, n in sat.by_score.items()]
ui.table(
    sat_rows if sat.ratings else [],
    N_("ratings"),
    key="tickets_ratings",
    empty=N_("No rating in this range."),
)
