"""The daily hypercare report on a store of known data (SQLite and PostgreSQL): its figures are the known
ones, the HTML e-mail body and the PDF say the same, the CLI writes either, the archive keeps each day with
its exit criteria (the next day's trend), and ``--send`` delivers it through apprise to a local receiver."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pypdf
import pytest
from sqlalchemy import select, update

from core.session import make_engine, session_factory, session_scope
from dashboards.daily_report import LocalDays, build, render_html, render_pdf
from hypercare.config import load_settings
from hypercare.daily_report import next_run, produce, send_if_due
from tests.cli import run_hypercare
from tests.dashboards.known_store import D, H, Known
from tests.tickets.receiver import Receiver
from tickets.daily_reports import ArchivedReport, archived, previous_criteria
from tickets.models import Ticket, User


def pdf_pages(blob: bytes) -> list[str]:
    """The text of each page of a PDF, extracted (pypdf), its line breaks and runs of spaces made one space
    (table cells wrap)."""
    return [" ".join(page.extract_text().split()) for page in pypdf.PdfReader(io.BytesIO(blob)).pages]


def _assign_ticket_2(store_url: str) -> None:
    engine = make_engine(store_url)
    with session_scope(session_factory(engine)) as session:
        agent = session.scalars(select(User).where(User.username == "agent")).one()
        session.execute(update(Ticket).where(Ticket.fingerprint == "fp-2").values(assignee_id=agent.id))
    engine.dispose()


def test_the_report_of_a_day_has_the_known_figures(known: Known, store_url: str) -> None:
    _assign_ticket_2(store_url)
    settings = load_settings()
    day = (known.now - 2 * H).date()  # the day ticket 1 was opened
    created = [known.now - 2 * H, known.now - D]  # tickets 1 and 8: the others are days old
    engine = make_engine(store_url)
    with engine.connect() as conn:
        report = build(conn, settings, day, now=known.now)
    engine.dispose()
    assert report.inflow == sum(1 for at in created if at.date() == day)
    assert report.outflow == 0
    assert (report.urgent[0].priority, report.urgent[0].owner) == ("P1", "unassigned")
    owners = {t.title: t.owner for t in report.urgent}
    assert owners == {"Ticket 1": "unassigned", "Ticket 3": "unassigned", "Ticket 2": "agent"}
    assert report.urgent[0].url.endswith(f"/tickets/{report.urgent[0].id}")
    assert str(report.money_at_risk) == "1250.50"
    assert [w.what for w in report.workarounds] == ["Post the drift by hand"]
    states = report.states()
    assert states["No open P1, few open P2"] is False and states["Dual run"] is None
    assert all(c.trend == "new" for c in report.criteria)
    # the cause seen most: every ticket of the week counted once per occurrence
    assert sum(c.tickets for c in report.causes) <= 7 and report.causes[0].tickets >= 1

    html = render_html(report)
    assert "Hypercare daily report" in html and "CNY 1,250.50" in html and "unassigned" in html
    assert f'href="http://127.0.0.1:8080/tickets/{report.urgent[0].id}"' in html
    pages = pdf_pages(render_pdf(html))
    assert len(pages) == 1, "the report is one page"
    text = pages[0]
    for heading in (
        "Open P1 and P2",
        "SLA attainment on the day",
        "Exit criteria",
        "Dual run (cutover gate)",
        "Top recurring causes (last 7 days)",
        "Workarounds still in place",
    ):
        assert heading in text, heading
    assert "Ticket 1" in text and "Post the drift by hand" in text and "CNY 1,250.50" in text
    assert "no dual-run comparison has run yet" in text


def test_a_day_of_the_site_time_zone_runs_from_local_midnight(known: Known) -> None:
    shanghai = LocalDays(known.now.date(), known.now.date(), tz="Asia/Shanghai")
    assert shanghai.start_at == datetime.combine(known.now.date(), datetime.min.time(), UTC) - 8 * H
    assert shanghai.end_at - shanghai.start_at == D


def test_the_archive_keeps_each_day_and_the_next_report_shows_the_trend(known: Known, store_url: str) -> None:
    settings = load_settings()
    engine = make_engine(store_url)
    today = known.now.date()
    first = produce(settings, engine, today - timedelta(days=1), now=known.now, keep=True)
    assert first.pdf.startswith(b"%PDF")
    # ticket 1 (the open P1) resolved: "No open P1, few open P2" turns green the next day
    with session_scope(session_factory(engine)) as session:
        session.execute(
            update(Ticket)
            .where(Ticket.fingerprint == "fp-1")
            .values(status="resolved", resolved_at=known.now, open_fingerprint=None)
        )
    second = produce(settings, engine, today, now=known.now, keep=True)
    trend = {c.name: c.trend for c in second.report.criteria}
    assert trend["No open P1, few open P2"] == "improved"
    assert trend["Dual run"] == "unchanged"
    with session_scope(session_factory(engine)) as session:
        days = [r.day for r in archived(session)]
        assert days == [today, today - timedelta(days=1)]
        assert previous_criteria(session, today) == first.report.states()
        assert (
            session.scalars(select(ArchivedReport.pdf).where(ArchivedReport.day == today)).one() == second.pdf
        )
    # a re-run of a day replaces its row
    produce(settings, engine, today, now=known.now, keep=True)
    with session_scope(session_factory(engine)) as session:
        assert len(archived(session)) == 2
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"])  # the figures are checked on both engines above
def test_cli_writes_the_pdf_and_the_html(known: Known, store_url: str, tmp_path: Path) -> None:
    day = known.now.date().isoformat()
    env = {"HYPERCARE_DATABASE_URL": store_url, "HYPERCARE_DATA_DIR": str(tmp_path)}
    pdf = tmp_path / "out" / "daily.pdf"
    done = run_hypercare("report", "daily", "--date", day, "--out", str(pdf), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "Hypercare daily report" in done.stdout
    pages = pdf_pages(pdf.read_bytes())
    assert len(pages) == 1 and "Exit criteria" in pages[0] and "Ticket 1" in pages[0]
    html = tmp_path / "daily.html"
    done = run_hypercare("report", "daily", "--date", day, "--out", str(html), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    done = run_hypercare(
        "report", "daily", "--date", day, "--language", "zh-tw", "--out", str(html), cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "每日上線支援報告" in done.stdout and "<h2>退出標準</h2>" in html.read_text(encoding="utf-8")
    unknown = run_hypercare("report", "daily", "--language", "fr", "--out", str(html), cwd=tmp_path, env=env)
    assert unknown.returncode != 0 and "unknown language 'fr'" in unknown.stderr
    bad = run_hypercare("report", "daily", "--date", "07/12/2026", "--out", str(html), cwd=tmp_path, env=env)
    assert bad.returncode != 0 and "is not a date (YYYY-MM-DD)" in bad.stderr
    wrong = run_hypercare("report", "daily", "--out", str(tmp_path / "x.docx"), cwd=tmp_path, env=env)
    assert wrong.returncode != 0 and "must end in .pdf or .html" in wrong.stderr


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_report_is_sent_once_a_day_through_the_tagged_targets(
    known: Known, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = Receiver()
    receiver.thread.start()
    try:
        monkeypatch.setenv(
            "HYPERCARE_NOTIFICATIONS__TARGETS",
            json.dumps(
                [
                    {"url": receiver.url("managers"), "tags": ["daily-report"]},
                    {"url": receiver.url("oncall"), "tags": ["oncall"]},
                ]
            ),
        )
        monkeypatch.setenv("HYPERCARE_DASHBOARD__DAILY_REPORT__TIMEZONE", "Asia/Shanghai")
        monkeypatch.setenv("HYPERCARE_DASHBOARD__DAILY_REPORT__SEND_AT", "07:30")
        settings = load_settings()
        engine = make_engine(store_url)
        before = datetime(2026, 12, 8, 23, 0, tzinfo=UTC)  # 07:00 on the 9th in Shanghai: not yet
        assert send_if_due(settings, engine, before) is None
        assert next_run(settings, before) == datetime(2026, 12, 8, 23, 30, tzinfo=UTC)
        due = datetime(2026, 12, 8, 23, 45, tzinfo=UTC)
        produced = send_if_due(settings, engine, due)
        assert produced is not None and produced.report.day.isoformat() == "2026-12-08"
        assert (produced.sent_to, produced.error) == (1, None)
        assert send_if_due(settings, engine, due + timedelta(minutes=5)) is None  # once a day
        engine.dispose()
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
        receiver.thread.join(5)
    [got] = receiver.received
    assert got["path"] == "/managers"
    assert got["json"]["title"] == "Hypercare daily report — Tue 08 Dec 2026"
    assert "Exit criteria" in got["json"]["message"]
    [attachment] = got["json"]["attachments"]
    assert attachment["filename"] == "hypercare-daily-2026-12-08.pdf"
    pages = pdf_pages(base64.b64decode(attachment["base64"]))
    assert len(pages) == 1 and "Open P1 and P2" in pages[0]


@pytest.mark.parametrize("backend", ["sqlite"])  # the figures are the same; the words are checked here
def test_the_report_in_chinese_has_chinese_headings_in_the_html_and_the_pdf(
    known: Known, store_url: str
) -> None:
    settings = load_settings()
    engine = make_engine(store_url)
    with engine.connect() as conn:
        report = build(conn, settings, (known.now - 2 * H).date(), now=known.now)
    engine.dispose()
    html = render_html(report, "zh_CN")
    assert '<html lang="zh-CN">' in html
    assert report.title_in("zh_CN").startswith("每日上线支持报告 — ")
    for heading in (
        "未结 P1 / P2",
        "当日服务水平达成率",
        "退出标准",
        "双轨运行（切换门槛）",
        "主要重复原因（近 7 天）",
    ):
        assert f"<h2>{heading}</h2>" in html or heading in html, heading
    assert "仍在使用的变通方案" in html and "负责人" in html and "时长" in html and "未分配" in html
    assert "Exit criteria" not in html and "Workarounds still in place" not in html
    [page] = pdf_pages(render_pdf(html))
    # the CJK glyphs are in the PDF as text (a CJK font embedded), not missing-glyph boxes
    for words in ("每日上线支持报告", "退出标准", "仍在使用的变通方案", "无未关闭", "CNY 1,250.50"):
        assert words in page, words
    tw = render_html(report, "zh_TW")
    assert "每日上線支援報告" in tw and "仍在使用的變通方案" in tw and '<html lang="zh-TW">' in tw
    assert render_html(report) == render_html(report, "en")  # English is the text as written


@pytest.mark.parametrize("backend", ["sqlite"])
def test_each_target_receives_the_report_in_its_language(
    known: Known, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = Receiver()
    receiver.thread.start()
    try:
        monkeypatch.setenv("HYPERCARE_SITE__LANGUAGE", "zh_CN")
        monkeypatch.setenv(
            "HYPERCARE_NOTIFICATIONS__TARGETS",
            json.dumps(
                [
                    {"url": receiver.url("cn"), "tags": ["daily-report"]},
                    {"url": receiver.url("tw"), "tags": ["daily-report"], "language": "zh_TW"},
                    {"url": receiver.url("en"), "tags": ["daily-report"], "language": "en"},
                ]
            ),
        )
        settings = load_settings()
        engine = make_engine(store_url)
        produced = produce(settings, engine, known.now.date(), now=known.now, send=True)
        engine.dispose()
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
        receiver.thread.join(5)
    assert (produced.sent_to, produced.error, produced.language) == (3, None, "zh_CN")
    got = {r["path"]: r["json"] for r in receiver.received}
    assert got["/cn"]["title"].startswith("每日上线支持报告") and "退出标准" in got["/cn"]["message"]
    assert got["/tw"]["title"].startswith("每日上線支援報告") and "退出標準" in got["/tw"]["message"]
    assert (
        got["/en"]["title"].startswith("Hypercare daily report — ")
        and "Exit criteria" in got["/en"]["message"]
    )
    tw_pdf = pdf_pages(base64.b64decode(got["/tw"]["attachments"][0]["base64"]))
    assert "每日上線支援報告" in tw_pdf[0]
