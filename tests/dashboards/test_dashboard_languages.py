"""The dashboards' translation helper (dashboards/i18n.py) chooses the viewer's language as the ticket UI does:
the profile's (remembered at login), else the browser's, else the site's."""

from __future__ import annotations

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.session import make_engine, session_factory, session_scope
from dashboards.i18n import LANGUAGE_KEY
from tests.dashboards.conftest import APP
from tests.dashboards.known_store import PASSWORD, Known
from tickets.models import User


def _page() -> None:
    import streamlit as st

    from dashboards.i18n import gettext, remember, word

    if st.session_state.get("chosen") is not None:
        remember(st.session_state["chosen"])
    _ = gettext(st.session_state.get("site", "en"))
    st.markdown(_("Ticket queue"))
    st.markdown(word(st.session_state.get("site", "en"), "in_progress"))


def test_the_profile_language_wins_over_the_sites() -> None:
    at = AppTest.from_function(_page, default_timeout=30)
    at.session_state["site"] = "zh_TW"
    at.run()
    assert [m.value for m in at.markdown] == ["工單佇列", "處理中"]  # the site's (no browser header here)
    at.session_state["chosen"] = "zh_CN"
    at.run()
    assert [m.value for m in at.markdown] == ["工单队列", "处理中"]
    at.session_state["site"] = "en"
    at.session_state["chosen"] = "en"
    at.run()
    assert [m.value for m in at.markdown] == ["Ticket queue", "in progress"]


def test_the_login_remembers_the_viewers_profile_language(known: Known, store_url: str) -> None:
    engine = make_engine(store_url)
    try:
        with session_scope(session_factory(engine)) as session:
            session.scalars(select(User).where(User.username == "viewer")).one().language = "zh_TW"
    finally:
        engine.dispose()
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.text_input(key="login_username").input("viewer")
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert at.session_state[LANGUAGE_KEY] == "zh_TW"
