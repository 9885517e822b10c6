"""The agents' pages merged after the first translation (problem records, on-call, bulk actions, one-click links) in the
reader's language: a zh_CN user reads them in Simplified Chinese, stored values and URLs unchanged."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from starlette.testclient import TestClient

from core.db import utcnow
from tests.tickets.factories import open_ticket, ticket_app_on
from tests.tickets.receiver import Receiver
from tests.tickets.test_oncall import SHANGHAI
from tests.tickets.test_ui_languages import set_language
from tests.tickets.web import csrf_of, login
from tickets import action_links
from tickets.settings import NotificationTarget


def test_a_zh_cn_user_sees_problems_on_call_and_bulk_outcomes_in_chinese(
    store_url: str, tmp_path: Path
) -> None:
    with ticket_app_on(store_url, tmp_path, oncall=SHANGHAI) as app, TestClient(app.app) as client:
        ids = [open_ticket(app, fingerprint=f"cn-{n}", summary=f"Voucher {n} not posted") for n in range(2)]
        set_language(app, "agent", "zh_CN")
        login(client, "agent")
        token = csrf_of(client.get("/problems").text)
        opened = client.post("/problems", data={"csrf": token, "title": "Bank file format changed"})
        assert re.search(r"问题记录 #\d+ 已创建。", opened.text)  # the flash message
        problems = client.get("/problems", headers={"Accept-Language": "en"}).text  # the profile wins
        assert '<html lang="zh-CN">' in problems
        for words in ("一个根本原因，多个事件", "已知错误匹配条件", "事件工单", "新建问题记录", "未结"):
            assert words in problems, words
        assert "Bank file format changed" in problems and "one root cause" not in problems

        oncall = client.get("/oncall", params={"at": "2026-11-30T09:30"}).text
        for words in (
            "2026-11-30 09:30 的值班",
            "时间按 Asia/Shanghai 显示",
            "轮换",
            "备岗",
            "即将生效的代班",
        ):
            assert words in oncall, words
        assert '<td class="oncall-who">oncall' in oncall and "On call" not in oncall

        queue = client.get("/tickets").text
        assert '<option value="acknowledge">确认</option>' in queue  # the value stays English
        bulk = client.post(
            "/tickets/bulk", data={"csrf": csrf_of(queue), "action": "acknowledge", "ids": ids}
        )
        assert bulk.status_code == 200
        assert "批量操作：确认：2 项完成" in bulk.text and bulk.text.count("✓ 已确认") == 2
        assert "<th>结果</th>" in bulk.text and "Bulk" not in bulk.text
        form = {"csrf": csrf_of(queue), "action": "resolve", "reason": "bank file fixed", "ids": ids}
        assert "批量操作：解决：2 项完成" in client.post("/tickets/bulk", data=form).text
        again = client.post("/tickets/bulk", data=form).text  # resolved already: refused, ticket by ticket
        assert "批量操作：解决：0 项完成，2 项未完成" in again and again.count("✗ 未完成：") == 2


def test_a_one_click_link_speaks_the_browser_language(
    store_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    target = NotificationTarget.model_validate(
        {"url": receiver.url("phone"), "name": "phone", "min_priority": "P4"}
    )
    with ticket_app_on(store_url, tmp_path, targets=(target,)) as app, TestClient(app.app) as client:
        ticket_id = open_ticket(app)
        key = action_links.link_key(app.settings)
        link = action_links.new_link(ticket_id, "acknowledge", 0, utcnow() + timedelta(hours=1))
        path, tw = f"/act/{action_links.sign(key, link)}", {"Accept-Language": "zh-TW"}  # nobody logs in
        page = client.get(path, headers=tw).text
        assert f"確認工單 #{ticket_id}：由您接手，其升級隨即停止。" in page and "連結有效期至" in page
        done = client.post(path, headers=tw).text
        assert f"工單 #{ticket_id} 已確認。" in done and "開啟工單" in done
        used = client.post(path, headers=tw)
        assert used.status_code == 410 and "此連結已被使用；每個連結只能使用一次。" in used.text
        assert "already been used" in client.post(path, headers={"Accept-Language": "en"}).text
