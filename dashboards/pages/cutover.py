"""Cutover: dual-run match rate per entity over time against the exit criteria; go / no-go."""

from __future__ import annotations

import altair as alt
import streamlit as st

from core.i18n import N_
from dashboards import present, ui
from dashboards.data_cutover import load_dualrun

ctx = ui.context()
ui.require_access(ctx)  # each page too: Streamlit also serves pages/*.py by URL, without app.py
f = ui.page_filters(ctx)
_ = ctx.gettext
st.title(_("Cutover readiness"))
status = ui.load(ctx, "dualrun", lambda c: load_dualrun(c, ctx.settings, f, ctx.now), f, ctx.now)
if not status.ran:
    st.info(
        _("%(summary)s: `hypercare dualrun run` compares the legacy and the new system.")
        % {"summary": status.summary}
    )
else:
    cols = st.columns(3)
    verdict = present.status_word(status.go, _)
    cols[0].metric(
        _("Go / no-go"),
        _("GO") if status.go else _("NO-GO"),
        delta=_("✓ cutover gate met")
        if status.go
        else _("▲ %(count)s open point(s)") % {"count": len(status.reasons)},
        delta_color=verdict.colour,
        delta_arrow="off",
    )
    cols[1].metric(_("Entities compared"), len(status.entities))
    cols[2].metric(_("Entities matching"), sum(1 for e in status.entities if e.status == "match"))
    for reason in status.reasons:
        st.markdown(f":red[▲ {reason}]")
    st.subheader(_("Exit criteria of the cutover gate"))
    ui.table(status.criteria, N_("cutover criteria"), key="cutover_criteria")
    st.subheader(_("Match rate per entity over time"))
    if status.history:
        ui.chart(
            alt.Chart(ui.data(status.history))
            .mark_line(point=True)
            .encode(
                x=ui.time_x(),
                y=alt.Y("match_rate:Q", axis=alt.Axis(format="%"), title=_("match rate")),
                color="entity:N",
                strokeDash="comparison:N",
                tooltip=[
                    ui.time_tip(),
                    "comparison:N",
                    "entity:N",
                    "status:N",
                    "match_rate:Q",
                    "differences:Q",
                ],
            )
        )
    ui.download(N_("match rate history"), status.history, "dualrun_history.csv", key="csv_cutover_history")
    st.subheader(_("Latest result per entity"))
    ui.table(status.entities, N_("entities"), key="cutover_entities")
