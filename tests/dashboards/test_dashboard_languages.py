"""The dashboards' translation helper (dashboards/i18n.py) chooses the viewer's language as the ticket UI does:
the profile's (remembered at login), else the browser's, else the site's."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.session import make_engine, session_factory, session_scope
from dashboards.i18n import LANGUAGE_KEY
from tests.dashboards.conftest import APP
from tests.dashboards.known_store import PASSWORD, Known, assert_as_of_shanghai
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


def _overview_as(app_test: Any, language: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The overview as a viewer of ``language`` (remembered at login) on a Shanghai site."""
    monkeypatch.setenv("HYPERCARE_SITE__TIMEZONE", "Asia/Shanghai")
    app_test.session_state[LANGUAGE_KEY] = language
    at = app_test.run()
    assert not at.exception, at.exception
    return at


def _shown(at: Any) -> str:
    """Every word the page shows in its body, sidebar and tiles (their labels and verdicts)."""
    parts = [t.value for t in at.title] + [s.value for s in at.subheader] + [c.value for c in at.caption]
    parts += [m.value for m in at.markdown] + [i.value for i in at.info]
    parts += [f"{m.label} {m.delta or ''}" for m in at.metric]
    return "\n".join(str(p) for p in parts)


def test_a_zh_cn_viewer_reads_the_overview_in_simplified_chinese_and_shanghai_time(
    app_test: Any, known: Known, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _overview_as(app_test, "zh_CN", monkeypatch)
    assert at.title[0].value == "Hypercare 总览"
    labels = {m.label: m for m in at.metric}
    assert {"上线第几天", "未关闭 P1", "未关闭 P2", "响应服务水平（7 天）", "新增 / 关闭"} <= set(labels)
    assert labels["未关闭 P1"].value == "1" and labels["未关闭 P1"].delta == "▲ 超出目标（≤ 0）"
    assert labels["响应服务水平（7 天）"].delta.startswith("▼ 未达标")
    assert [s.value for s in at.subheader][:3] == ["未关闭的 P1 和 P2", "退出标准", "新增与关闭"]
    text = _shown(at)
    assert ":red[▲ 红灯]" in text and "积压 **5**，每天增加" in text
    assert ":red[▲ 红灯] **无未关闭 P1，P2 很少** — P1 1, P2 2（目标 P1 0, P2 ≤ 3）" in text
    assert "**双轨运行**" in text and "**重开率（14 天）** — 50.0 % (1/2)" in text
    # the page's "now" is the Shanghai wall clock, the zone named, in the caption and the sidebar
    shanghai = known.now.astimezone(ZoneInfo("Asia/Shanghai"))
    assert_as_of_shanghai(text, "数据截至", since=known.now)
    assert "时间为 CST (Asia/Shanghai)。" in text
    # the range picker counts Shanghai days: today there is its last day
    picker = at.date_input(key="range")
    assert picker.label == "日期范围（CST (Asia/Shanghai)）"
    assert picker.value[-1] == shanghai.date()
    assert next(b.label for b in at.get("download_button")) == "下载未关闭 P1/P2 工单（CSV）"
    assert "Open P1" not in text and "Exit criteria" not in text
    # stored statuses in words (the CSV keeps the stored values); the ticket titles as written
    urgent = at.dataframe[0].value
    assert list(urgent["title"]) == ["Ticket 1", "Ticket 3", "Ticket 2"]
    assert set(urgent["status"]) <= {"新建", "已确认", "处理中", "等待中"}, set(urgent["status"])


def test_a_zh_tw_viewer_reads_the_overview_in_traditional_chinese(
    app_test: Any, known: Known, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _overview_as(app_test, "zh_TW", monkeypatch)
    assert at.title[0].value == "Hypercare 總覽"
    labels = {m.label: m for m in at.metric}
    assert {"上線第幾天", "未結案 P1", "未結案 P2", "回應服務水準（7 天）", "新增 / 結案"} <= set(labels)
    assert labels["未結案 P1"].delta == "▲ 超出目標（≤ 0）"
    text = _shown(at)
    assert ":red[▲ 紅燈]" in text and "積壓 **5**，每天增加" in text and "退出標準" in text
    assert "**無未結案 P1，P2 很少**" in text and "**雙軌運行**" in text
    assert_as_of_shanghai(text, "資料截至", since=known.now)
    # Traditional throughout: none of the Simplified forms of the page's words
    assert not set("关积压标线时间数据") & set(text), text
