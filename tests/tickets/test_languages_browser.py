"""A Shanghai finance user and a Taipei one in a real browser (Debian's chromium), on a Shanghai site (CNY):
each logs in and sees the queue, the ticket page and the report form in their language (``<html
lang="zh-CN">`` / ``zh-TW``) and their time zone; the first files a report of ¥1,250.00 and triages it, the
second chooses her language and zone on the profile page.

``HYPERCARE_SCREENSHOTS=docs/screenshots`` saves the pages there (``queue-zh-CN.png``, ``ticket-zh-TW.png``,
...), as the other browser tests do."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.session import session_scope
from tests.tickets.conftest import LiveServer, serving
from tests.tickets.factories import PASSWORD
from tests.tickets.test_ticket_browser import seed, shoot
from tickets.auth import create_user


def _log_in(page: Any, base: str, username: str, button: str = "Log in") -> None:
    page.goto(base + "/login")
    page.locator("#username").fill(username)
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name=button).click()


SHANGHAI_SITE = {"timezone": "Asia/Shanghai", "currency": "CNY", "locale": "zh_CN"}


@pytest.fixture
def shanghai_server(tmp_path: Path) -> Iterator[LiveServer]:
    with serving(tmp_path, site=SHANGHAI_SITE) as server:
        yield server


@pytest.mark.browser
def test_a_zh_cn_and_a_zh_tw_user_work_in_their_language(
    shanghai_server: LiveServer, browser_page: Any
) -> None:
    live_server = shanghai_server
    from playwright.sync_api import expect

    ticket_id = seed(live_server)
    with session_scope(live_server.factory) as session:
        mei = create_user(session, "mei", PASSWORD, "agent", display_name="王梅")
        mei.language, mei.timezone = "zh_CN", "Asia/Shanghai"
        create_user(session, "wen", PASSWORD, "agent", display_name="陳文")
    page, base = browser_page, live_server.url
    html = page.locator("html")

    # Simplified Chinese, from her profile (the browser asks for English)
    _log_in(page, base, "mei")
    expect(page).to_have_url(base + "/tickets")
    expect(html).to_have_attribute("lang", "zh-CN")
    expect(page.locator("h1")).to_contain_text("工单队列")
    expect(page.locator("#queue-total")).to_have_text("4 张工单")
    rows = page.locator("tr.ticket")
    expect(rows).to_have_count(4)
    expect(rows.first.locator("td.sla")).to_contain_text("距")
    expect(page.locator('a.facet[data-status="open"]')).to_contain_text("未结")
    page.get_by_label("类别").select_option("data")  # the option reads 数据, its value stays English
    page.get_by_role("button", name="筛选").click()
    expect(page).to_have_url(re.compile(r"category=data"))
    shoot(page, "queue-zh-CN")

    page.goto(f"{base}/tickets/{ticket_id}")
    expect(page.locator("#ticket-status")).to_have_text("新建")
    expect(page.locator("#sla-clock")).to_contain_text("距响应期限")
    page.get_by_role("button", name="确认").click()
    expect(page.get_by_role("status")).to_have_text(f"工单 #{ticket_id} 已确认。")
    expect(page.locator("#ticket-status")).to_have_text("已确认")
    expect(page.locator("section.actions")).to_contain_text("解决")
    expect(page.locator("h2").filter(has_text="审计轨迹")).to_have_count(1)
    shoot(page, "ticket-zh-CN")

    page.get_by_role("link", name="报告问题").click()
    expect(html).to_have_attribute("lang", "zh-CN")
    page.get_by_label("发生了什么？").fill("红字发票 RI-2026-0007 无法冲销应收账款")
    page.get_by_label("发生位置（ERP 模块）").fill("应收账款")
    page.get_by_label("紧急程度").select_option("high")
    expect(page.get_by_label("紧急程度")).to_contain_text("（阻碍工作或影响今日截止事项）")
    page.get_by_label("详细信息").fill("期间关账前需冲销，凭证无法生成。")
    page.locator("#amount_at_risk").fill("¥1,250.00")  # as she writes it
    shoot(page, "report-zh-CN")
    page.get_by_role("button", name="提交报告").click()
    expect(page.get_by_role("status")).to_contain_text("已提交，工单号 #")
    expect(page.get_by_role("status")).to_contain_text("CST (Asia/Shanghai)")  # filed at, in her zone
    expect(page.locator(".ticket-head h1")).to_contain_text("红字发票 RI-2026-0007")
    expect(page.locator("dl.facts")).to_contain_text("¥1,250.00")
    expect(page.locator("tr.audit-entry").first).to_contain_text("CST (Asia/Shanghai)")
    page.get_by_role("button", name="确认").click()  # she triages her own report's ticket
    expect(page.locator("#ticket-status")).to_have_text("已确认")
    shoot(page, "report-ticket-zh-CN")
    page.get_by_role("button", name="退出登录").click()

    # Traditional Chinese, chosen on the profile page
    expect(html).to_have_attribute("lang", "en")
    _log_in(page, base, "wen")
    expect(page.locator("h1")).to_contain_text("Ticket queue")
    page.get_by_role("link", name="陳文").click()
    expect(page).to_have_url(base + "/profile")
    page.get_by_label("Language").select_option("zh_TW")
    page.get_by_label("Time zone").fill("Asia/Taipei")
    page.get_by_role("button", name="Save").click()
    expect(html).to_have_attribute("lang", "zh-TW")
    expect(page.get_by_role("status")).to_have_text("個人設定已儲存。")
    expect(page.get_by_label("語言")).to_have_value("zh_TW")
    expect(page.get_by_label("時區")).to_have_value("Asia/Taipei")

    page.get_by_role("link", name="工單佇列").click()
    expect(html).to_have_attribute("lang", "zh-TW")
    expect(page.locator("#queue-total")).to_have_text("5 張工單")
    expect(page.locator("thead")).to_contain_text("優先級")
    shoot(page, "queue-zh-TW")
    page.goto(f"{base}/tickets/{ticket_id}")
    expect(page.locator("#ticket-status")).to_have_text("已確認")
    expect(page.locator("dl.facts")).to_contain_text("風險金額")
    expect(page.locator("tr.audit-entry").nth(0)).to_contain_text("已建立")
    expect(page.locator("tr.audit-entry").nth(0)).to_contain_text("(Asia/Taipei)")  # her own zone
    shoot(page, "ticket-zh-TW")
    page.get_by_role("link", name="回報問題").click()
    expect(page.locator("h1")).to_have_text("回報問題")
    expect(page.get_by_role("button", name="提交回報")).to_be_visible()
    shoot(page, "report-zh-TW")
