"""The UI, the API and the CLI in the reader's language: a user's profile (language, time zone), else the
browser's Accept-Language, else the site's ``site.language``; stored values stay English enums."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sqlalchemy import select
from starlette.testclient import TestClient

from core.session import make_engine, session_factory, session_scope
from tests.tickets.factories import TicketApp, open_ticket, ticket_app_on
from tests.tickets.test_cli_users import Cli
from tests.tickets.web import csrf_of, login
from tickets.models import Ticket, User


def set_language(ticket_app: TicketApp, username: str, language: str | None) -> None:
    with session_scope(ticket_app.factory) as session:
        session.scalars(select(User).where(User.username == username)).one().language = language


def test_a_zh_cn_user_sees_the_queue_and_the_ticket_in_simplified_chinese(
    client: TestClient, ticket_app: TicketApp
) -> None:
    ticket_id = open_ticket(ticket_app)
    set_language(ticket_app, "agent", "zh_CN")
    login(client, "agent")
    queue = client.get("/tickets", headers={"Accept-Language": "en-US"})  # the profile wins
    assert queue.headers["content-language"] == "zh-CN"
    assert "Accept-Language" in queue.headers["vary"]
    assert '<html lang="zh-CN">' in queue.text
    assert "工单队列" in queue.text and "1 张工单" in queue.text and "报告问题" in queue.text
    assert '<option value="in_progress">处理中</option>' in queue.text  # the value stays English
    assert re.search(r'data-status="new">新建 <b>1</b>', queue.text)
    assert "距响应期限" in queue.text  # the SLA clock, filled in per request
    page = client.get(f"/tickets/{ticket_id}").text
    assert '<html lang="zh-CN">' in page
    for words in ("确认", "解决", "优先级", "类别", "数据", "风险金额", "审计轨迹", "影响 高，紧急程度 中"):
        assert words in page, words
    assert "Journal entry JE-1001 does not balance" in page  # what people wrote is shown as written
    assert "<td>已创建</td>" in page  # the audit trail's action, translated
    token = csrf_of(page)
    done = client.post(f"/tickets/{ticket_id}/acknowledge", data={"csrf": token}).text
    assert f"工单 #{ticket_id} 已确认。" in done  # the flash message
    refused = client.post(f"/tickets/{ticket_id}/status", data={"csrf": token, "to": "waiting", "reason": ""})
    assert "未改为“等待中”：请说明原因。" in refused.text


def test_the_browser_language_applies_until_the_user_chooses_and_each_language_is_cached_apart(
    client: TestClient, ticket_app: TicketApp
) -> None:
    open_ticket(ticket_app)
    login(client, "viewer")
    for _ in range(2):  # the second of each is a cache hit (tickets/cache.py): still its own language
        tw = client.get("/tickets", headers={"Accept-Language": "zh-TW,zh;q=0.9"}).text
        en = client.get("/tickets", headers={"Accept-Language": "en-GB"}).text
        cn = client.get("/tickets", headers={"Accept-Language": "zh-Hans-CN"}).text
        assert '<html lang="zh-TW">' in tw and "工單佇列" in tw and "1 張工單" in tw
        assert '<html lang="en">' in en and "Ticket queue" in en and "1 ticket<" in en
        assert '<html lang="zh-CN">' in cn and "工单队列" in cn
    assert '<html lang="en">' in client.get("/tickets").text  # no header: the site's default


def test_the_site_default_language_serves_users_who_chose_none(tmp_path: Path, store_url: str) -> None:
    with ticket_app_on(store_url, tmp_path, site={"language": "zh_TW"}) as app, TestClient(app.app) as client:
        assert '<html lang="zh-TW">' in client.get("/login").text
        assert "登入" in client.get("/login").text
        assert "使用者名稱或密碼錯誤。" in login(client, "agent", "wrong-password").text
        assert '<html lang="en">' in client.get("/login", headers={"Accept-Language": "en"}).text


def test_a_user_chooses_language_and_time_zone_on_the_profile_page(
    client: TestClient, ticket_app: TicketApp
) -> None:
    login(client, "reporter")  # every role has a profile
    page = client.get("/profile")
    assert page.status_code == 200 and 'name="timezone"' in page.text
    token = csrf_of(page.text)
    assert client.post("/profile", data={"language": "zh_TW", "timezone": "Asia/Taipei"}).status_code == 422
    saved = client.post("/profile", data={"csrf": token, "language": "zh_TW", "timezone": "Asia/Taipei"})
    assert '<html lang="zh-TW">' in saved.text and "個人設定已儲存。" in saved.text
    with ticket_app.factory() as session:
        user = session.scalars(select(User).where(User.username == "reporter")).one()
        assert (user.language, user.timezone) == ("zh_TW", "Asia/Taipei")

    bad = client.post("/profile", data={"csrf": token, "language": "zh_TW", "timezone": "Asia/Taipeh"})
    assert bad.status_code == 422
    assert "unknown time zone &#39;Asia/Taipeh&#39;" in bad.text and "Asia/Shanghai" in bad.text
    bad = client.post("/profile", data={"csrf": token, "language": "fr", "timezone": ""})
    assert bad.status_code == 422 and "unknown language &#39;fr&#39;" in bad.text

    client.post("/profile", data={"csrf": token, "language": "", "timezone": ""})  # back to defaults
    with ticket_app.factory() as session:
        user = session.scalars(select(User).where(User.username == "reporter")).one()
        assert (user.language, user.timezone) == (None, None)
    report = client.get("/report", headers={"Accept-Language": "zh-CN"}).text
    assert "报告问题" in report and "提交报告" in report and '<option value="data">数据</option>' in report


def test_the_report_form_says_what_is_missing_in_the_users_language(
    client: TestClient, ticket_app: TicketApp
) -> None:
    set_language(ticket_app, "reporter", "zh_CN")
    login(client, "reporter")
    token = csrf_of(client.get("/report").text)
    form = {"csrf": token, "title": "", "module": "AP", "category": "data", "urgency": "high"}
    answer = client.post("/report", data=form)
    assert answer.status_code == 422 and "请用一句话说明发生了什么。" in answer.text
    answer = client.post("/report", data={**form, "title": "红字发票无法冲销", "amount_at_risk": "abc"})
    assert "风险金额必须是数字" in answer.text
    filed = client.post("/report", data={**form, "title": "红字发票无法冲销"})
    assert re.search(r"报告 #\d+ 已提交", filed.text)
    with ticket_app.factory() as session:  # stored as English enums, whatever the reader's language
        ticket = session.scalars(select(Ticket).where(Ticket.title == "红字发票无法冲销")).one()
        assert (ticket.category, ticket.status) == ("data", "new")


def test_each_user_reads_and_changes_their_own_profile_over_the_api(
    client: TestClient, ticket_app: TicketApp
) -> None:
    me = client.get("/api/v1/me", headers=ticket_app.auth("viewer"))
    assert me.status_code == 200
    assert me.json() == {
        "username": "viewer",
        "display_name": "Viewer User",
        "role": "viewer",
        "language": None,
        "timezone": None,
    }
    changed = client.patch("/api/v1/me", json={"language": "zh-cn"}, headers=ticket_app.auth("viewer"))
    assert changed.status_code == 200 and changed.json()["language"] == "zh_CN"
    changed = client.patch(
        "/api/v1/me", json={"timezone": "Asia/Shanghai"}, headers=ticket_app.auth("viewer")
    )
    assert (changed.json()["language"], changed.json()["timezone"]) == ("zh_CN", "Asia/Shanghai")
    bad = client.patch("/api/v1/me", json={"timezone": "Mars/Olympus"}, headers=ticket_app.auth("viewer"))
    assert bad.status_code == 422 and "unknown time zone 'Mars/Olympus'" in bad.json()["error"]["message"]
    bad = client.patch("/api/v1/me", json={"colour": "red"}, headers=ticket_app.auth("viewer"))
    assert bad.status_code == 422
    cleared = client.patch("/api/v1/me", json={"language": None}, headers=ticket_app.auth("viewer"))
    assert (cleared.json()["language"], cleared.json()["timezone"]) == (None, "Asia/Shanghai")
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers=ticket_app.auth("agent")).json()["language"] is None


def test_the_cli_sets_a_users_language_and_time_zone(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    assert cli("db", "upgrade").returncode == 0
    made = cli("users", "add", "mei", "--password", "mei-pass-123", "--language", "zh-TW")
    assert made.returncode == 0, made.stderr
    bad = cli("users", "add", "li", "--password", "li-pass-1234", "--timezone", "Asia/Beijing")
    assert bad.returncode != 0 and "unknown time zone 'Asia/Beijing'" in bad.stderr + bad.stdout
    done = cli("users", "profile", "mei", "--timezone", "Asia/Taipei")
    assert done.returncode == 0 and "language zh_TW, time zone Asia/Taipei" in done.stdout
    bad = cli("users", "profile", "mei", "--language", "de")
    assert bad.returncode != 0 and "unknown language 'de'" in bad.stderr + bad.stdout
    assert cli("users", "profile", "nobody").returncode != 0
    listed = json.loads(cli("users", "list", "--json").stdout)
    assert [(u["username"], u["language"], u["timezone"]) for u in listed] == [
        ("mei", "zh_TW", "Asia/Taipei")
    ]
    engine = make_engine(cli.url)
    try:
        with session_factory(engine)() as session:
            assert session.scalars(select(User.username)).all() == ["mei"]  # li was not created
    finally:
        engine.dispose()
