"""Chinese renders in the browser: the queue's Chinese title is drawn with a CJK font (every Han character
found in it, none as an empty box), at a real width; the screenshot is kept as a test artefact
(``HYPERCARE_SCREENSHOTS=dir`` keeps it there, else in the test's temporary folder).

Needs a CJK font on the machine (Debian ``fonts-noto-cjk``; ``.ci/run`` installs it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from core.session import session_scope
from tests.tickets.factories import PASSWORD, make_event
from tickets.service import TicketService

TITLE = "应收账款与总账差异 應收帳款"  # Simplified and Traditional


def test_chinese_titles_render_with_a_cjk_font(browser_page: Any, live_server: Any, tmp_path: Path) -> None:
    with session_scope(live_server.factory) as session:
        TicketService(session, live_server.settings).ingest(make_event(summary=TITLE))
    page = browser_page
    page.goto(live_server.url + "/login")
    page.get_by_label("Username").fill("agent")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    title = page.locator("tr.ticket a", has_text=TITLE).first
    expect(title).to_be_visible()

    box = title.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0
    # Which fonts chromium drew the text with, and how many glyphs each drew (DevTools protocol).
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "tr.ticket td.title a"})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    han = sum(1 for char in TITLE if "\u4e00" <= char <= "\u9fff")
    cjk = sum(f["glyphCount"] for f in fonts if "CJK" in f["familyName"] or "Noto Sans SC" in f["familyName"])
    assert cjk >= han, f"the Han characters were not drawn with a CJK font: {fonts}"

    shots = Path(os.environ.get("HYPERCARE_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots / "queue-zh.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 5000
