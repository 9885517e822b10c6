"""Data consistency: pass rate per pack and check over time, money at risk still open, the worst checks."""

from __future__ import annotations

from decimal import Decimal

import altair as alt
import streamlit as st

from core.i18n import N_
from dashboards import present, ui
from dashboards.data_monitor import (
    check_pass_rates,
    check_summaries,
    latest_pass_ratio,
    open_money_at_risk,
    per_pack,
)
from dashboards.data_overview import pack_map

ctx = ui.context()
ui.require_access(ctx)  # each page too: Streamlit also serves pages/*.py by URL, without app.py
f = ui.page_filters(ctx)
_ = ctx.gettext
pack_of = pack_map(ctx.settings)
st.title(_("Data consistency"))

pack_key = tuple(sorted(pack_of.items()))
pending_rates = ui.start(ctx, "pass_rates", lambda c: check_pass_rates(c, f, pack_of), f, pack_key)
pending_summaries = ui.start(ctx, "check_summaries", lambda c: check_summaries(c, f, pack_of), f, pack_key)
pending_money = ui.start(ctx, "money_at_risk", lambda c: open_money_at_risk(c, f), f)
rates, summaries, money = pending_rates.get(), pending_summaries.get(), pending_money.get()
executed = sum(r.executed for r in rates)
passed = sum(r.passed for r in rates)
total_money = sum((m.amount for m in money), Decimal("0.00"))
currency = ctx.settings.anomaly.currency
min_pass = ctx.settings.dashboard.exit.min_check_pass_ratio

cols = st.columns(4)
ui.judged(
    cols[0],
    _("Pass rate (range)"),
    ui.percent(passed / executed if executed else None),
    present.at_least(passed / executed if executed else None, min_pass, present.pct(min_pass, 0), _),
    help=_("%(passed)s of %(runs)s runs") % {"passed": passed, "runs": executed},
)
now_ratio = latest_pass_ratio(summaries)
ui.judged(
    cols[1],
    _("Checks passing now"),
    ui.percent(now_ratio),
    present.at_least(now_ratio, min_pass, present.pct(min_pass, 0), _),
    help=_("%(count)s checks") % {"count": len(summaries)},
)
cols[2].metric(_("Failing now"), sum(1 for s in summaries if s.last_status in ("fail", "error")))
cols[3].metric(
    _("Money at risk, open"),
    present.money(total_money, currency),
    help=_("%(count)s open ticket(s) with an amount at risk") % {"count": sum(m.tickets for m in money)},
)

st.subheader(_("Pass rate per pack"))
packs = per_pack(rates)
if packs:
    ui.chart(
        alt.Chart(ui.data(packs))
        .mark_line(point=True)
        .encode(
            x=ui.time_x("day", daily=True),
            y=alt.Y(
                "pass_ratio:Q",
                title=_("pass rate"),
                axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1]),
            ),
            color="pack:N",
            tooltip=[
                ui.time_tip("day", daily=True),
                "pack:N",
                "executed:Q",
                "passed:Q",
                alt.Tooltip("pass_ratio:Q", format=".1%"),
            ],
        )
    )
ui.table(
    packs,
    N_("pass rate per pack"),
    key="consistency_packs",
    empty=N_("No data-consistency check ran in this range."),
)

st.subheader(_("Pass rate per check"))
check_rows = [
    {
        "day": r.day,
        "pack": r.pack,
        "check_id": r.check_id,
        "executed": r.executed,
        "passed": r.passed,
        "pass_ratio": r.pass_ratio,
    }
    for r in rates
]
if check_rows:
    ui.chart(
        alt.Chart(ui.data(check_rows))
        .mark_rect()
        .encode(
            x=alt.X("utcmonthdate(day):O", title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("check_id:N", title=None),
            color=alt.Color(
                "pass_ratio:Q",
                title=_("pass rate"),
                legend=alt.Legend(format="%"),
                scale=alt.Scale(scheme="redyellowgreen", domain=[0, 1]),
            ),
            tooltip=[
                ui.time_tip("day", daily=True),
                "check_id:N",
                "executed:Q",
                "passed:Q",
                alt.Tooltip("pass_ratio:Q", format=".1%"),
            ],
        )
    )
ui.download(N_("pass rate per check"), check_rows, "pass_rate_checks.csv", key="csv_consistency_checks")

left, right = st.columns(2)
with left:
    st.subheader(_("Worst checks"))
    ui.table(
        summaries[:20],
        N_("worst checks"),
        key="consistency_worst",
        empty=N_("No data-consistency check ran in this range: `hypercare check run` runs them."),
    )
with right:
    st.subheader(_("Money at risk still open"))
    ui.table(
        money,
        N_("money at risk"),
        key="consistency_money",
        empty=N_("No open ticket carries an amount at risk."),
    )
