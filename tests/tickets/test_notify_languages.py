"""Notifications in the target's language: each apprise target may name its ``language`` (else the site's
``site.language``); delivered for real to a local receiver."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.session import session_scope
from tests.tickets.factories import Clock, make_event, make_settings
from tests.tickets.receiver import Receiver
from tickets.models import NotificationOutbox
from tickets.notify import build_notifier, dispatch_pending
from tickets.outbox import build_digests
from tickets.service import TicketService
from tickets.settings import NotificationTarget


def _target(url: str, language: str | None, min_priority: str = "P4") -> NotificationTarget:
    return NotificationTarget.model_validate({"url": url, "min_priority": min_priority, "language": language})


def test_each_target_hears_of_a_ticket_in_its_own_language(
    factory: sessionmaker[Session], receiver: Receiver
) -> None:
    clock = Clock()
    targets = (
        _target(receiver.url("cn"), "zh_CN"),
        _target(receiver.url("tw"), "zh-TW"),  # as people write it
        _target(receiver.url("site"), None),  # the site's language
    )
    settings = make_settings(targets=targets, site={"language": "en"})
    with session_scope(factory) as session:
        ticket = TicketService(session, settings, now=clock).ingest(make_event()).ticket
        assert ticket is not None
        ticket_id = ticket.id

    assert dispatch_pending(factory, build_notifier(settings), settings, now=clock).sent == 3
    got = {message["path"]: message["json"] for message in receiver.received}
    assert got["/cn"]["title"] == "[P2] 新工单: Journal entry JE-1001 does not balance"
    assert got["/tw"]["title"] == "[P2] 新工單: Journal entry JE-1001 does not balance"
    assert got["/site"]["title"] == "[P2] Opened: Journal entry JE-1001 does not balance"
    cn, tw = got["/cn"]["message"], got["/tw"]["message"]
    assert "优先级：P2（影响 高，紧急程度 中）" in cn and "状态：新建" in cn and "类别：数据" in cn
    assert "风险金额：1,250.00" in cn and f"工单：https://hypercare.example/tickets/{ticket_id}" in cn
    assert "優先級：P2（影響 高，緊急程度 中）" in tw and "類別：資料" in tw and "風險金額：1,250.00" in tw
    assert "Priority: P2 (impact high, urgency medium)" in got["/site"]["message"]


def test_a_chinese_site_writes_its_digests_in_chinese(factory: sessionmaker[Session]) -> None:
    clock = Clock()
    settings = make_settings(targets=(_target("json://127.0.0.1:9/x", None),), site={"language": "zh_CN"})
    with session_scope(factory) as session:
        TicketService(session, settings, now=clock).ingest(make_event(severity="P3", fingerprint="fp-3"))
    clock.advance(hours=2)
    with session_scope(factory) as session:
        [digest] = build_digests(session, settings, now=clock())
        assert digest.title == "[Hypercare] 汇总：1 条工单通知"
        assert "工单队列：https://hypercare.example/tickets" in digest.body
    with factory() as session:
        held = session.scalars(select(NotificationOutbox).where(NotificationOutbox.kind == "opened")).one()
        assert held.title.startswith("[P3] 新工单: ")
