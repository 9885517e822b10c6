"""Chinese team channels and e-mail as notification targets: DingTalk, WeCom (企业微信), Feishu and Lark through
apprise's own plugins, and mailto:// to a local SMTP server - each delivered for real over loopback to a
stand-in of its endpoint (tests/tickets/channel_standin.py), Chinese text intact."""

from __future__ import annotations

from collections.abc import Iterator
from email.header import decode_header, make_header

import pytest
from apprise.plugins.dingtalk import NotifyDingTalk
from apprise.plugins.feishu import NotifyFeishu
from apprise.plugins.lark import NotifyLark
from apprise.plugins.wecombot import NotifyWeComBot
from sqlalchemy.orm import Session, sessionmaker

from core.session import session_scope
from tests.tickets.channel_standin import DINGTALK_SECRET, ChannelStandIn, SmtpStandIn, dingtalk_sign_ok
from tests.tickets.factories import Clock, make_event, make_settings, target
from tickets.notify import build_notifier, dispatch_pending
from tickets.service import TicketService

SUMMARY = "凭证 JE-1001 借贷不平"
TITLE = f"[P1] Opened: {SUMMARY}"


@pytest.fixture
def channels(monkeypatch: pytest.MonkeyPatch) -> Iterator[ChannelStandIn]:
    """The stand-in, with each plugin's built-in vendor endpoint pointed at it (they take no host/port)."""
    standin = ChannelStandIn()
    standin.thread.start()
    monkeypatch.setattr(NotifyDingTalk, "notify_url", standin.base + "/robot/send?access_token={token}")
    monkeypatch.setattr(NotifyWeComBot, "notify_url", standin.base + "/cgi-bin/webhook/send?key={key}")
    monkeypatch.setattr(NotifyFeishu, "notify_url", standin.base + "/open-apis/bot/v2/hook/{token}/")
    monkeypatch.setattr(NotifyLark, "notify_url", standin.base + "/open-apis/bot/v2/hook/")
    yield standin
    standin.server.shutdown()
    standin.server.server_close()


@pytest.fixture
def smtp() -> Iterator[SmtpStandIn]:
    server = SmtpStandIn()
    server.start()
    yield server
    server.stop()


def page(factory: sessionmaker[Session], *urls: str) -> None:
    """Open a P1 ticket with a Chinese summary and deliver its notifications to ``urls``."""
    clock = Clock()
    settings = make_settings(targets=tuple(target(url, "P4") for url in urls))
    with session_scope(factory) as session:
        TicketService(session, settings, now=clock).ingest(make_event(p1=True, summary=SUMMARY))
    report = dispatch_pending(factory, build_notifier(settings), settings, now=clock)
    assert (report.sent, report.retried, report.dead) == (len(urls), 0, 0)


def test_dingtalk_wecom_feishu_and_lark_get_their_own_message_shapes(
    factory: sessionmaker[Session], channels: ChannelStandIn
) -> None:
    page(
        factory,
        f"dingtalk://{DINGTALK_SECRET}@robottoken123/",
        "wecombot://wecom-bot-key-1",
        "feishu://feishu-hook-token",
        "lark://lark-hook-token",
    )
    by_path = {message["path"]: message for message in channels.received}
    dingtalk = by_path["/robot/send"]
    assert dingtalk["query"]["access_token"] == "robottoken123"
    assert dingtalk_sign_ok(dingtalk["query"]), "signed with the robot's secret as DingTalk checks it"
    assert not dingtalk_sign_ok({**dingtalk["query"], "timestamp": "1"})
    assert dingtalk["json"]["msgtype"] == "text"
    assert dingtalk["json"]["text"]["content"].startswith(f"{TITLE}\r\nPriority: P1")
    wecom = by_path["/cgi-bin/webhook/send"]
    assert wecom["query"] == {"key": "wecom-bot-key-1"} and wecom["json"]["msgtype"] == "text"
    assert wecom["json"]["text"]["content"].startswith(TITLE)
    feishu = by_path["/open-apis/bot/v2/hook/feishu-hook-token/"]
    assert feishu["json"]["msg_type"] == "text" and feishu["json"]["content"]["text"].startswith(TITLE)
    lark = by_path["/open-apis/bot/v2/hook/lark-hook-token"]
    assert (
        lark["json"]["msg_type"] == "text"
        and "Check: gl.unbalanced_entries" in lark["json"]["content"]["text"]
    )


def test_e_mail_goes_through_a_local_smtp_server(factory: sessionmaker[Session], smtp: SmtpStandIn) -> None:
    page(
        factory,
        f"mailto://127.0.0.1:{smtp.port}?from=hypercare@example.com&to=oncall@example.com&mode=insecure",
    )
    [(envelope, message)] = smtp.messages
    assert (envelope.mail_from, envelope.rcpt_tos) == ("hypercare@example.com", ["oncall@example.com"])
    assert str(make_header(decode_header(message["Subject"]))) == TITLE
    parts = [part.get_payload(decode=True).decode() for part in message.walk() if not part.is_multipart()]
    assert any("Priority: P1" in part and "Check: gl.unbalanced_entries" in part for part in parts)
