"""Integrations: every interface known from its metrics, its checks or its open tickets; backlog and age of
the oldest message where collected; failing checks and open tickets. Every tile is a sum over the table
below it (dashboards/data_health.py)."""

from __future__ import annotations

import altair as alt
import streamlit as st

from core.i18n import N_
from dashboards import present, ui
from dashboards.data_health import integration_status
from dashboards.data_monitor import INTEGRATION_BACKLOG, INTEGRATION_FAILED, metric_series

ctx = ui.context()
ui.require_access(ctx)  # each page too: Streamlit also serves pages/*.py by URL, without app.py
f = ui.page_filters(ctx)
_ = ctx.gettext
limit_s = ctx.settings.dashboard.exit.max_interface_age_s
st.title(_("Integrations"))

# every query of the page starts now, on the dashboard's query threads; the layout below waits for each
pending_status = ui.start(ctx, "integration_status", lambda c: integration_status(c, f, ctx.now), f, ctx.now)
pending_backlog = ui.start(
    ctx, "integration_backlog", lambda c: metric_series(c, f, INTEGRATION_BACKLOG, "integration"), f
)
pending_failed = ui.start(
    ctx, "integration_failed", lambda c: metric_series(c, f, INTEGRATION_FAILED, "integration"), f
)

status = pending_status.get()
not_collected = N_("not collected: no integration collector reports it (collectors.integrations)")
age = status.oldest_age_s
cols = st.columns(5)
cols[0].metric(_("Interfaces"), len(status.rows), help=_("known from metrics, checks or open tickets"))
ui.judged(
    cols[1],
    _("Open integration tickets"),
    str(len(status.tickets)),
    present.at_most(len(status.tickets), 0, "0", _),
)
cols[2].metric(
    _("Messages waiting"),
    _("n/a") if status.backlog is None else f"{status.backlog:,.0f}",
    help=not_collected if status.backlog is None else None,
)
ui.judged(
    cols[3],
    _("Oldest message"),
    _("n/a") if age is None else _("%(minutes)s min") % {"minutes": f"{age / 60:,.0f}"},
    present.at_most(
        None if age is None else age / 60,
        limit_s / 60,
        _("%(minutes)s min") % {"minutes": f"{limit_s / 60:.0f}"},
        _,
    ),
    help=not_collected if age is None else None,
)
cols[4].metric(
    _("Failed messages"),
    _("n/a") if status.failed_messages is None else f"{status.failed_messages:,.0f}",
    help=not_collected if status.failed_messages is None else None,
)

st.subheader(_("Per interface"))
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
    N_("interfaces"),
    key="integrations_status",
    empty=N_("No interface in this range: no integration metric, failing integration check or open ticket."),
)

st.subheader(_("Open integration tickets"))
ui.table(
    status.tickets,
    N_("open integration tickets"),
    key="integrations_tickets",
    empty=N_("No open ticket raised by an integration check."),
)

st.subheader(_("Backlog over time"))
backlog = pending_backlog.get()
if backlog:
    ui.chart(
        alt.Chart(ui.data(backlog))
        .mark_line(point=True)
        .encode(
            x=ui.time_x(),
            y=alt.Y("max:Q", title=_("messages waiting (max)")),
            color=alt.Color("series:N", title=_("interface")),
            tooltip=[ui.time_tip(), "series:N", "max:Q", "mean:Q"],
        )
    )
else:
    st.info(_("No backlog history: %(why)s.") % {"why": _(not_collected)})
ui.download(N_("backlog over time"), backlog, "integration_backlog.csv", key="csv_integrations_backlog")

st.subheader(_("Failed messages over time"))
failed = pending_failed.get()
if failed:
    ui.chart(
        alt.Chart(ui.data(failed))
        .mark_bar()
        .encode(
            x=ui.time_x(),
            y=alt.Y("max:Q", title=_("failed messages")),
            color=alt.Color("series:N", title=_("interface")),
        )
    )
else:
    st.info(_("No failed-message history: %(why)s.") % {"why": _(not_collected)})
ui.download(N_("failed messages"), failed, "integration_failed.csv", key="csv_integrations_failed")

st.subheader(_("Failing integration checks"))
ui.table(
    status.checks,
    N_("failing integration checks"),
    key="integrations_checks",
    empty=N_("No integration check failed in this range."),
)
