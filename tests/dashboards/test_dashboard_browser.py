"""The overview in a real browser: `hypercare dashboard` serves Streamlit on a free loopback port against a
store of known data; Debian's chromium (Playwright) logs in as a manager and the overview shows the known
figures. The screenshot lands in docs/screenshots/dashboard-overview.png when HYPERCARE_SCREENSHOTS is set
(``HYPERCARE_SCREENSHOTS=docs/screenshots python -m pytest tests/dashboards/test_dashboard_browser.py``),
else in the test's temporary directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from core.session import make_engine, session_factory, session_scope
from hypercare.serving import free_port
from tests.dashboards.known_store import PASSWORD, Known, assert_as_of_shanghai
from tests.servers import CHROMIUM_ARGS
from tickets.models import User

SHOTS = os.environ.get("HYPERCARE_SCREENSHOTS")
WAIT_MS = 30_000  # a cold Streamlit run on a busy CI machine takes seconds
SHOTS_DIR = Path(SHOTS).resolve() if SHOTS else None  # resolved now: the test runs in its own directory


@pytest.fixture
def dashboard_url(known: Known, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "dashboard.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hypercare", "dashboard", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"the dashboard did not start: {(tmp_path / 'dashboard.log').read_text()[-2000:]}"
                )
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, 15)  # the CLI and the streamlit process it started
        proc.wait(10)
        log.close()


@pytest.mark.browser
@pytest.mark.parametrize("backend", ["sqlite"])  # the figures are checked on PostgreSQL by AppTest
def test_a_manager_logs_in_and_reads_the_overview(
    chromium_executable: Path, dashboard_url: str, known: Known, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = SHOTS_DIR or tmp_path
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium_executable), headless=True, args=CHROMIUM_ARGS
        )
        page: Any = browser.new_context(viewport={"width": 1400, "height": 1900}).new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(dashboard_url, wait_until="domcontentloaded")
        page.get_by_role("textbox", name="Username").fill("manager")
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Hypercare overview").wait_for()
        metric = page.locator('[data-testid="stMetric"]')
        expect(metric.filter(has_text="Go-live day")).to_contain_text("10", timeout=WAIT_MS)
        expect(metric.filter(has_text="Open P1")).to_contain_text("1", timeout=WAIT_MS)
        expect(metric.filter(has_text="Inflow / outflow")).to_contain_text("6 / 2", timeout=WAIT_MS)
        expect(page.get_by_text("No open P1, few open P2")).to_be_visible(timeout=WAIT_MS)
        # a threshold has a colour and words: colour-blind readers see "over target" too
        expect(metric.filter(has_text="Open P1")).to_contain_text("▲ over target", timeout=WAIT_MS)
        expect(page.get_by_text("▲ RED").first).to_be_visible(timeout=WAIT_MS)
        page.locator('[data-testid="stVegaLiteChart"]').first.wait_for()
        page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")
        page.wait_for_timeout(1500)  # vega renders its canvas after the run
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "dashboard-overview.png"), full_page=True)
        page.get_by_role("link", name="Tickets").click()
        page.get_by_text("Tickets and SLAs").wait_for()
        expect(page.locator('[data-testid="stMetric"]').filter(has_text="Reopen rate")).to_contain_text(
            "50.0 %", timeout=WAIT_MS
        )
        page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "dashboard-tickets.png"), full_page=True)
        browser.close()
    assert (shots / "dashboard-overview.png").stat().st_size > 20_000


@pytest.mark.browser
@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_zh_tw_manager_reads_the_overview_in_traditional_chinese_and_shanghai_time(
    chromium_executable: Path,
    known: Known,
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """A Shanghai site; the browser asks for zh-CN, so the login form is in Simplified Chinese; the manager's
    profile says zh_TW, so after the login every page is in Traditional Chinese."""
    from playwright.sync_api import expect, sync_playwright

    engine = make_engine(store_url)
    with session_scope(session_factory(engine)) as session:
        session.scalars(select(User).where(User.username == "manager")).one().language = "zh_TW"
    engine.dispose()
    monkeypatch.setenv("HYPERCARE_SITE__TIMEZONE", "Asia/Shanghai")
    dashboard_url = request.getfixturevalue("dashboard_url")  # started now: it reads the zone set above
    shots: Path = SHOTS_DIR or request.getfixturevalue("tmp_path")
    shanghai = known.now.astimezone(ZoneInfo("Asia/Shanghai"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium_executable), headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1400, "height": 1900}, locale="zh-CN")
        page: Any = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(dashboard_url, wait_until="domcontentloaded")
        page.get_by_role("textbox", name="用户名").fill("manager")
        page.get_by_role("textbox", name="密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.get_by_text("Hypercare 總覽").wait_for()
        metric = page.locator('[data-testid="stMetric"]')
        # day 10 of go-live in UTC; from 16:00 UTC Shanghai is already in the next day
        day = 10 + (shanghai.date() - known.now.date()).days
        expect(metric.filter(has_text="上線第幾天")).to_contain_text(str(day), timeout=WAIT_MS)
        expect(metric.filter(has_text="未結案 P1")).to_contain_text("▲ 超出目標", timeout=WAIT_MS)
        expect(page.get_by_text("無未結案 P1，P2 很少")).to_be_visible(timeout=WAIT_MS)
        as_of = page.get_by_text(re.compile(r"資料截至 .* CST \(Asia/Shanghai\)"))
        expect(as_of).to_be_visible()
        assert_as_of_shanghai(as_of.inner_text(), "資料截至", since=known.now)
        page.locator('[data-testid="stVegaLiteChart"]').first.wait_for()
        page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")
        page.wait_for_timeout(1500)  # vega renders its canvas after the run
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "dashboard-overview-zh_TW.png"), full_page=True)
        browser.close()
    assert (shots / "dashboard-overview-zh_TW.png").stat().st_size > 20_000
