"""The daily hypercare report rendered from the demo (the Shanghai trading company after its faults went
through the real pipeline and the dual run): the PDF, checked page by page by its extracted text, holds
every open P1/P2 ticket, the exit criteria, the dual run's NO-GO and the day of the site's time zone."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pypdf
import pytest
from rich.console import Console
from sqlalchemy import select

from core.session import make_engine
from hypercare.daily_report import produce
from hypercare.demo.run import demo_environment
from tickets.models import Ticket

pytestmark = pytest.mark.slow
QUIET = Console(quiet=True)


def test_the_daily_report_of_the_demo_day(tmp_path: Path) -> None:
    with demo_environment(tmp_path / "demo", console=QUIET) as demo:
        report_settings = demo.settings.dashboard.daily_report.model_copy(
            update={"timezone": "Asia/Shanghai"}
        )
        dashboard = demo.settings.dashboard.model_copy(update={"daily_report": report_settings})
        settings = demo.settings.model_copy(update={"dashboard": dashboard})
        now = datetime.now(UTC)
        day = now.astimezone(ZoneInfo("Asia/Shanghai")).date()  # the demo's tickets opened today
        engine = make_engine(settings.store_url)
        produced = produce(
            settings, engine, day, now=now, keep=True, language="en"
        )  # the demo site reads zh_CN
        engine.dispose()
        with demo.factory() as session:
            urgent = session.scalars(select(Ticket).where(Ticket.priority.in_(["P1", "P2"]))).all()
            opened = len(session.scalars(select(Ticket)).all())
    report = produced.report
    assert report.inflow == opened and len(report.urgent) == len(urgent) > 0
    assert report.dualrun.ran and report.dualrun.go is False

    pages = [" ".join(p.extract_text().split()) for p in pypdf.PdfReader(io.BytesIO(produced.pdf)).pages]
    assert 1 <= len(pages) <= 2, f"{len(pages)} pages"
    first = pages[0]
    assert first.startswith(f"Hypercare daily report — {day:%a %d %b %Y}")
    assert "midnight to midnight Asia/Shanghai" in first
    assert f"Inflow {opened} tickets opened" in first
    text = " ".join(pages)
    for ticket in urgent:
        assert f"#{ticket.id} {ticket.priority}" in text, ticket.title
    for heading in (
        "Open P1 and P2",
        "SLA attainment on the day",
        "Exit criteria",
        "Dual run (cutover gate)",
        "Top recurring causes (last 7 days)",
        "Workarounds still in place",
    ):
        assert heading in text, heading
    assert "NO-GO" in text and "ar_documents" in text
    assert "▲ RED No open P1, few open P2" in text
