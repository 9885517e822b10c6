"""Hypercare's dashboards for managers: ``hypercare dashboard`` (or ``streamlit run dashboards/app.py``).

Reads the store named by the settings (``HYPERCARE_CONFIG`` / ``HYPERCARE_*``), read-only. Access: a Hypercare
login with a dashboard role (``dashboard.login_roles``).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboards import ui

PAGES = Path(__file__).resolve().parent / "pages"


def main() -> None:
    st.set_page_config(page_title="Hypercare dashboards", page_icon=":material/monitoring:", layout="wide")
    ctx = ui.context()
    who = ui.require_access(ctx)
    _ = ctx.gettext
    navigation = st.navigation(
        [
            st.Page(PAGES / "overview.py", title=_("Overview"), icon=":material/dashboard:", default=True),
            st.Page(PAGES / "tickets.py", title=_("Tickets"), icon=":material/confirmation_number:"),
            st.Page(PAGES / "consistency.py", title=_("Data consistency"), icon=":material/rule:"),
            st.Page(PAGES / "performance.py", title=_("Performance"), icon=":material/speed:"),
            st.Page(PAGES / "integrations.py", title=_("Integrations"), icon=":material/sync_alt:"),
            st.Page(PAGES / "cutover.py", title=_("Cutover"), icon=":material/swap_horiz:"),
        ]
    )
    st.session_state[ui.WHO_KEY] = who
    navigation.run()


main()
