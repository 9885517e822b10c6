"""Cutover: dual-run match rate per entity over time against the exit criteria; go / no-go."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboards import present, ui
from dashboards.data_cutover import load_dualrun

ctx = ui.context()
ui.require_access(ctx)  # each page too: Streamlit also serves pages/*.py by URL, without app.py
f = ui.page_filters(ctx)
st.title("Cutover readiness")
status = ui.load(ctx, "dualrun", lambda c: load_dualrun(c, ctx.settings, f, ctx.now), f, ctx.now)
if not status.ran:
    st.info(f"{status.summary}: `hypercare dualrun run` compares the legacy and the new system.")
else:
    cols = st.columns(3)
    verdict = present.status_word(status.go)
    cols[0].metric(
        "Go / no-go",
        "GO" if status.go else "NO-GO",
        delta="✓ cutover gate met" if status.go else f"▲ {len(status.reasons)} open point(s)",
        delta_color=verdict.colour,
        delta_arrow="off",
    )
    cols[1].metric("Entities compared", len(status.entities))
    cols[2].metric("Entities matching", sum(1 for e in status.entities if e.status == "match"))
    for reason in status.reasons:
        st.markdown(f":red[▲ {reason}]")
    st.subheader("Exit criteria of the cutover gate")
    ui.table(status.criteria, "cutover criteria", key="cutover_criteria")
    st.subheader("Match rate per entity over time")
    if status.history:
        ui.chart(
            alt.Chart(ui.data(status.history))
            .mark_line(point=True)
            .encode(
                x=ui.time_x(),
                y=alt.Y("match_rate:Q", axis=alt.Axis(format="%"), title="match rate"),
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
    ui.download("match rate history", status.history, "dualrun_history.csv", key="csv_cutover_history")
    st.subheader("Latest result per entity")
    ui.table(status.entities, "entities", key="cutover_entities")
