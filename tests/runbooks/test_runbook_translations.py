"""Runbooks and check titles in the reader's language: a ``<id>.zh-CN.md`` / ``.zh-TW.md`` sibling translates
a runbook's title and sections (English where it has none), a check's ``title_zh`` / ``title_zh_tw`` its
title; the ticket page shows them to a reader of that language, English to the others."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from core.session import session_scope
from hypercare.app import ports
from monitor.checks import load_pack
from runbooks.library import RunbookError, load_runbooks, read_translation, translated
from runbooks.lint import lint
from runbooks.steps import steps
from tests.runbooks.test_runbooks import runbook_text
from tests.tickets.factories import make_event, make_settings, seed_users
from tests.tickets.web import login
from tickets.app import create_app
from tickets.models import User
from tickets.service import TicketService

TRANSLATED = ("gl-unbalanced-entries", "gl-posting-in-closed-period", "ar-subledger-gl-drift")


def test_shipped_translations_keep_the_checklists_and_fall_back_to_english() -> None:
    runbooks = load_runbooks()
    assert not any("." in key for key in runbooks), "a translation is not a runbook of its own"
    for runbook_id in TRANSLATED:
        english = runbooks[runbook_id]
        chinese = translated(english, "zh_CN")
        assert chinese.title != english.title and any("\u4e00" <= ch <= "\u9fff" for ch in chinese.title)
        assert chinese.sections["What this means"] != english.sections["What this means"]
        assert chinese.sections["Diagnosis"] == english.sections["Diagnosis"]  # not translated: English
        assert [s.key for s in steps(chinese)] == [s.key for s in steps(english)]
        assert (chinese.diagnostics, chinese.verification) == (english.diagnostics, english.verification)
        assert translated(english, "en") is english
    unbalanced = runbooks["gl-unbalanced-entries"]
    assert translated(unbalanced, "zh_TW").title.startswith("已過帳憑證借貸不平")
    # no Traditional translation: the Simplified one rather than the English original
    closed = runbooks["gl-posting-in-closed-period"]
    assert (
        translated(closed, "zh_TW").title
        == translated(closed, "zh_CN").title
        == "期间关账后仍有凭证过账到已关闭期间"
    )


def test_the_demo_checks_carry_chinese_titles() -> None:
    specs = {spec.id: spec for spec in load_pack("demo_erp")}
    assert all(spec.title_zh and spec.title_zh_tw for spec in specs.values())
    assert specs["gl.unbalanced_entries"].title_zh == "借贷不平的已过账凭证"
    assert specs["gl.postings_in_closed_periods"].title_zh_tw == "期間關帳後仍過帳到已關閉期間的憑證"


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_users_translation_is_checked_like_a_runbook(tmp_path: Path) -> None:
    _write(tmp_path, "sample-runbook.md", runbook_text())
    good = "---\ntitle: 示例\n---\n## 含义\n\n- [ ] 说明\n\n## First 15 minutes\n\n- [ ] 做这件事\n"
    _write(tmp_path, "sample-runbook.zh-CN.md", good)
    english = load_runbooks(tmp_path)["sample-runbook"]
    chinese = translated(english, "zh_CN")
    assert (chinese.title, chinese.sections["What this means"]) == ("示例", "- [ ] 说明")
    assert chinese.sections["Fix"] == english.sections["Fix"]
    assert [p for p in lint([tmp_path]).problems if ".zh-CN." in p.path] == []

    cases = {
        "---\nid: other\ntitle: x\n---\n## 含义\n\ny\n": "'other' is not the runbook's id 'sample-runbook'",
        "---\ntitle: x\nowner: me\n---\n## 含义\n\ny\n": "only id and title, not owner",
        "---\nid: sample-runbook\n---\n## 含义\n\ny\n": "needs 'title'",
        "---\ntitle: x\n---\n## 背景\n\ny\n": "unknown section '## 背景'",
        "---\ntitle: x\n---\n## Fix\n\ny\n\n## 含义\n\nz\n": "comes after 'Fix'",
    }
    for index, (text, problem) in enumerate(cases.items()):
        path = _write(tmp_path, f"bad-{index}.zh-CN.md", text)
        with pytest.raises(RunbookError, match=problem):
            read_translation(path, "sample-runbook", (index, 0))

    drift = "---\ntitle: 示例\n---\n## First 15 minutes\n\n- [ ] 一\n- [ ] 二\n"
    _write(tmp_path, "sample-runbook.zh-CN.md", drift)
    [problem] = [p for p in lint([tmp_path]).problems if ".zh-CN." in p.path]
    assert problem.path.endswith("sample-runbook.zh-CN.md")
    assert "section 'First 15 minutes' has 2 checklist step(s); the English runbook has 1" in problem.message


def test_the_ticket_page_shows_the_readers_check_title_and_runbook(store_url: str, tmp_path: Path) -> None:
    from core.session import make_engine, session_factory

    settings = make_settings(
        tmp_path=tmp_path,
        database_url=store_url,
        public_url="http://testserver",
        checks={"packs": ["demo_erp"]},
    )
    engine = make_engine(store_url)
    factory = session_factory(engine)
    seed_users(factory)
    event = make_event(check_id="gl.unbalanced_entries", runbook="gl-unbalanced-entries", severity="P1")
    with session_scope(factory) as session:
        ticket = TicketService(session, settings).ingest(event).ticket
        assert ticket is not None
        ticket_id = ticket.id
        session.scalars(select(User).where(User.username == "agent")).one().language = "zh_CN"
    app = create_app(settings, engine=engine, ports=ports(settings))
    try:
        with TestClient(app, base_url="http://testserver") as client:
            login(client, "agent")
            page = client.get(f"/tickets/{ticket_id}").text
            assert "借贷不平的已过账凭证" in page  # the check's title_zh
            assert "已过账凭证借贷不平（借方 ≠ 贷方）" in page  # the runbook's translated title
            assert "<summary>含义</summary>" in page and "<summary>诊断</summary>" in page
            assert "止住来源" in page  # a translated checklist step, still a button to tick
            assert "借贷不平的已过账凭证 · gl.unbalanced_entries" in client.get("/tickets").text
            login(client, "viewer")  # no profile language, an English browser: the English original
            page = client.get(f"/tickets/{ticket_id}", headers={"Accept-Language": "en"}).text
            assert "Posted journal entry does not balance" in page and "借贷" not in page
    finally:
        engine.dispose()
