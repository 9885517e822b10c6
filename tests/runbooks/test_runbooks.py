"""Runbooks: shipped content covers every check, files are validated with errors naming file and line, a
user directory overrides, rendering escapes HTML, and the ticket page shows the ticket's runbook."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from markdown_it import MarkdownIt
from starlette.testclient import TestClient

from anomaly.rules import events_for_result
from monitor.checks import CheckSpec, load_pack, shipped_packs
from monitor.probes import run_probe
from monitor.results import CheckResult
from monitor.settings import ProbeSettings
from runbooks.library import (
    SECTIONS,
    Runbook,
    RunbookError,
    find_runbooks,
    load_runbooks,
    markdown_html,
    render_html,
    render_sections,
    shipped_runbooks,
)
from tests.demo_erp import DemoErpFactory
from tests.tickets.factories import TicketApp, open_ticket
from tests.tickets.web import login
from tickets.ui.views import runbook_panel

SHIPPED = shipped_runbooks()
PACK_CHECKS: list[CheckSpec] = [spec for pack in shipped_packs() for spec in load_pack(pack)]
DEMO_PROBES = ("erp-trial-balance", "erp-invoice-list")
CHECKLIST_SECTIONS = ("First 15 minutes", "Fix", "Verify")


def runbook_text(
    runbook_id: str = "sample-runbook",
    *,
    front: str | None = None,
    sections: tuple[str, ...] = SECTIONS,
    body: str = "- [ ] do the thing",
) -> str:
    front = front or (
        f"id: {runbook_id}\ntitle: A sample\napplies_to: [sample.check]\nseverity: P3\n"
        "owner: finance-gl\nescalation: [L2 finance functional (GL), controller]"
    )
    parts = [f"## {name}\n\n{body}\n" for name in sections]
    return f"---\n{front}\n---\n\n" + "\n".join(parts)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- shipped content ---------------------------------------------------------------------------------


def test_the_shipped_set_has_the_runbooks_of_every_check_probe_and_collector_error() -> None:
    referenced = {spec.runbook for spec in PACK_CHECKS if spec.runbook}
    assert referenced, "the shipped packs reference runbooks"
    missing = sorted((referenced | {"erp-slow-transaction", "collector-error"}) - set(SHIPPED))
    assert not missing, f"no runbook for {missing}"


@pytest.mark.parametrize("spec", [s for s in PACK_CHECKS if s.runbook], ids=lambda s: s.id)
def test_each_checks_runbook_applies_to_it_with_its_severity_and_owner(spec: CheckSpec) -> None:
    assert spec.runbook is not None
    runbook = SHIPPED[spec.runbook]
    assert runbook.applies(spec.id), f"{runbook.path}: applies_to {runbook.applies_to} misses {spec.id}"
    assert runbook.severity == spec.severity, f"{runbook.path}: severity differs from check {spec.id}"
    if spec.owner:
        assert runbook.owner == spec.owner, f"{runbook.path}: owner differs from check {spec.id}"
    assert runbook in find_runbooks(spec.id, SHIPPED)


def test_a_failing_probe_links_the_slow_transaction_runbook_which_covers_every_probe() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, request=request)

    for name in DEMO_PROBES:
        probe = ProbeSettings(name=name, url="http://erp.test/api/trial-balance")
        with httpx.Client(transport=httpx.MockTransport(broken)) as client:
            result, _ = run_probe(probe, client)
        assert result.status == "fail" and result.runbook == "erp-slow-transaction"
        assert SHIPPED[result.runbook].applies(result.check_id)


def test_a_check_that_cannot_run_links_the_collector_error_runbook() -> None:
    at = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    result = CheckResult(
        check_id="gl.unbalanced_entries",
        source="erp",
        status="error",
        title="Posted journal entries whose debits and credits differ",
        category="data",
        severity="P1",
        started_at=at,
        finished_at=at,
        error="OperationalError: permission denied for table journal_line",
    )
    (event,) = events_for_result(result, group_threshold=5)
    assert event.runbook == "collector-error"
    assert SHIPPED[event.runbook].applies(event.labels["kind"])


@pytest.mark.parametrize("runbook", SHIPPED.values(), ids=lambda r: r.id)
def test_every_shipped_runbook_is_complete(runbook: Runbook) -> None:
    assert list(runbook.sections) == list(SECTIONS)
    assert runbook.path.name == f"{runbook.id}.md"
    assert runbook.escalation and runbook.applies_to and runbook.owner
    for name in CHECKLIST_SECTIONS:
        assert "- [ ] " in runbook.sections[name], f"{runbook.path}: '{name}' has no checklist"
    workaround = runbook.sections["Workaround"]
    for kind in ("Manual processing", "Temporary process change", "Legacy fallback"):
        assert kind in workaround, f"{runbook.path}: Workaround does not cover '{kind}'"
    assert "```sql" in runbook.sections["Diagnosis"], f"{runbook.path}: Diagnosis has no SQL"
    html = render_html(runbook)
    assert '<input type="checkbox" disabled>' in html
    assert [name for name, _ in render_sections(runbook)] == list(SECTIONS)


# --- the runbooks' SQL runs, read-only, on the demo ERP -----------------------------------------------

SQL_DATABASES = {"sql": "erp", "sql sqlite": "erp", "sql legacy": "legacy", "sql finance": "finance"}
ENGINE_SPECIFIC = {"sql postgresql", "sql mysql"}
PLACEHOLDER = re.compile(r"'?<[a-z_]+>'?")


def sql_blocks() -> Iterator[tuple[str, str, str]]:
    md = MarkdownIt("commonmark")
    for runbook in SHIPPED.values():
        for token in md.parse(runbook.body_markdown):
            if token.type == "fence" and token.info.strip().startswith("sql"):
                yield runbook.id, token.info.strip(), token.content


@pytest.fixture(scope="module")
def demo_databases(demo_erp: DemoErpFactory) -> dict[str, Path]:
    demo = demo_erp("demo-erp", seed=7, scale=0.05)
    return {name: demo.directory / f"{name}.db" for name in ("erp", "finance", "legacy")}


def test_runbook_sql_blocks_name_a_known_database_and_are_read_only() -> None:
    blocks = list(sql_blocks())
    assert len(blocks) > 50
    for runbook_id, info, sql in blocks:
        assert info in SQL_DATABASES or info in ENGINE_SPECIFIC, f"{runbook_id}: unknown fence '{info}'"
        first = sql.lstrip().split(None, 1)[0].upper()
        assert first in {"SELECT", "WITH", "EXPLAIN"}, f"{runbook_id}: not a read-only query:\n{sql}"
        assert not re.search(r"\b(INSERT|UPDATE|DELETE|DROP|ALTER|CREATE|TRUNCATE)\b", sql, re.IGNORECASE)


def test_runbook_sql_runs_on_the_demo_erp(demo_databases: dict[str, Path]) -> None:
    ran = 0
    for runbook_id, info, sql in sql_blocks():
        if info not in SQL_DATABASES:
            continue
        database = demo_databases[SQL_DATABASES[info]]
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
            try:
                conn.execute(PLACEHOLDER.sub("NULL", sql)).fetchall()
            except sqlite3.Error as exc:
                pytest.fail(f"{runbook_id} ({info}): {exc}\n{sql}")
        ran += 1
    assert ran > 50


# --- validation ----------------------------------------------------------------------------------------

BAD_SAMPLES = {
    "missing section": (
        runbook_text("bad", sections=tuple(s for s in SECTIONS if s != "Verify")),
        r"missing section\(s\): 'Verify' \(after 'Fix'\)",
    ),
    "misordered sections": (
        runbook_text(
            "bad", sections=("What this means", "First 15 minutes", "Business impact", *SECTIONS[3:])
        ),
        r":18: section 'Business impact' comes after 'First 15 minutes'",
    ),
    "unknown section": (
        runbook_text("bad", sections=(*SECTIONS[:2], "Contacts", *SECTIONS[2:])),
        r":18: unknown section '## Contacts'",
    ),
    "empty section": (
        runbook_text("bad").replace("## Fix\n\n- [ ] do the thing", "## Fix\n"),
        r"'Fix' is empty",
    ),
    "bad YAML": (
        runbook_text("bad", front="id: bad\ntitle: [unclosed\nseverity: P1"),
        r":4: front matter is not valid YAML",
    ),
    "unknown field": (
        runbook_text("bad").replace("severity: P3", "severity: P3\npriority: high"),
        r":6: unknown field 'priority'",
    ),
    "missing field": (runbook_text("bad").replace("owner: finance-gl\n", ""), r"missing field 'owner'"),
    "wrong severity": (runbook_text("bad").replace("severity: P3", "severity: P7"), r":5: field 'severity'"),
    "applies_to not a list": (
        runbook_text("bad").replace("[sample.check]", "sample.check"),
        r":4: field 'applies_to': expected a YAML list",
    ),
    "id differs from file name": (
        runbook_text("other"),
        r":2: field 'id': 'other' differs from the file name",
    ),
    "no front matter": ("## What this means\n", r":1: no front matter"),
    "front matter not closed": ("---\nid: bad\n", r":1: front matter is not closed"),
    "text before the first section": (
        runbook_text("bad").replace("---\n\n## What", "---\n\n# Title\n\n## What"),
        r":10: text before the first section",
    ),
}


@pytest.mark.parametrize(("text", "message"), BAD_SAMPLES.values(), ids=BAD_SAMPLES.keys())
def test_a_bad_runbook_fails_naming_the_file_and_where(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "bad.md", text)
    with pytest.raises(RunbookError) as caught:
        load_runbooks(tmp_path)
    assert str(caught.value).startswith(str(path))
    assert re.search(message, str(caught.value)), str(caught.value)


def test_two_user_files_with_one_id_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "gl/sample-runbook.md", runbook_text())
    write(tmp_path, "ap/sample-runbook.md", runbook_text())
    with pytest.raises(RunbookError, match="also defined by"):
        load_runbooks(tmp_path)


def test_a_missing_user_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RunbookError, match="runbook directory not found"):
        load_runbooks(tmp_path / "nowhere")


def test_section_titles_are_matched_ignoring_case_and_subheadings_are_free(tmp_path: Path) -> None:
    text = runbook_text().replace("## First 15 minutes", "## First 15 Minutes")
    text = text.replace("## Fix\n\n", "## Fix\n\n### On PostgreSQL\n\n")
    write(tmp_path, "sample-runbook.md", text)
    runbook = load_runbooks(tmp_path)["sample-runbook"]
    assert list(runbook.sections) == list(SECTIONS)
    assert runbook.sections["Fix"].startswith("### On PostgreSQL")


def test_a_byte_order_mark_and_windows_line_ends_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "sample-runbook.md").write_bytes(
        b"\xef\xbb\xbf" + runbook_text().replace("\n", "\r\n").encode()
    )
    assert load_runbooks(tmp_path)["sample-runbook"].sections["Prevent"] == "- [ ] do the thing"


# --- user directory ------------------------------------------------------------------------------------


def test_a_user_directory_adds_runbooks_and_overrides_shipped_ones(tmp_path: Path) -> None:
    front = (
        "id: gl-unbalanced-entries\ntitle: Our own unbalanced-entry procedure\n"
        "applies_to: [gl.unbalanced_entries]\nseverity: P1\nowner: gl-team-east\nescalation: [GL lead]"
    )
    path = write(tmp_path, "gl-unbalanced-entries.md", runbook_text(front=front))
    write(tmp_path, "README.md", "Notes about our runbooks, not a runbook.")
    write(tmp_path, "sub/sample-runbook.md", runbook_text())

    runbooks = load_runbooks(tmp_path)
    assert runbooks["gl-unbalanced-entries"].title == "Our own unbalanced-entry procedure"
    assert runbooks["gl-unbalanced-entries"].path == path
    assert "sample-runbook" in runbooks
    assert set(SHIPPED) <= set(runbooks)
    assert shipped_runbooks()["gl-unbalanced-entries"].owner == "finance-gl", "the shipped set is untouched"
    assert load_runbooks()["gl-unbalanced-entries"].owner == "finance-gl"

    path.write_text(runbook_text(front=front.replace("gl-team-east", "gl-team-west!")), encoding="utf-8")
    assert load_runbooks(tmp_path)["gl-unbalanced-entries"].owner == "gl-team-west!", "edits are seen"


# --- rendering -----------------------------------------------------------------------------------------


def test_html_in_a_runbook_is_escaped_and_unsafe_links_are_dropped() -> None:
    html = markdown_html(
        "<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n"
        "[click](javascript:alert(3)) and <b>bold</b>\n\n- [ ] open\n- [x] done\n"
    )
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html and "<b>" not in html
    assert "javascript:" not in html.replace("[click](javascript:alert(3))", "")
    assert 'href="javascript' not in html
    assert '<li class="task"><input type="checkbox" disabled> open</li>' in html
    assert '<li class="task"><input type="checkbox" disabled checked> done</li>' in html


def test_a_runbook_file_with_html_renders_it_as_text(tmp_path: Path) -> None:
    text = runbook_text(body="<script>alert('x')</script> and | a | b |\n|---|---|\n| 1 | 2 |")
    write(tmp_path, "sample-runbook.md", text)
    panel = runbook_panel("sample-runbook", tmp_path)
    assert panel is not None and panel.runbook is not None
    for _, html, _ in panel.sections:
        assert "<script>" not in html and "&lt;script&gt;" in html
    assert [name for name, _, is_open in panel.sections if is_open] == ["First 15 minutes"]


def test_the_runbook_panel_reports_unknown_ids_and_broken_files(tmp_path: Path) -> None:
    assert runbook_panel(None) is None
    missing = runbook_panel("no-such-runbook")
    assert missing is not None and missing.runbook is None and missing.error is None
    write(tmp_path, "broken.md", "no front matter")
    broken = runbook_panel("gl-unbalanced-entries", tmp_path)
    assert broken is not None and broken.error is not None and "broken.md:1" in broken.error


# --- the ticket page -----------------------------------------------------------------------------------


def test_the_ticket_page_shows_the_tickets_runbook(client: TestClient, ticket_app: TicketApp) -> None:
    ticket_id = open_ticket(ticket_app, runbook="gl-unbalanced-entries")
    login(client, "viewer")
    html = client.get(f"/tickets/{ticket_id}").text
    runbook = SHIPPED["gl-unbalanced-entries"]
    assert runbook.title in html
    assert '<a href="#runbook">gl-unbalanced-entries</a>' in html
    assert "<dt>Owner</dt><dd>finance-gl</dd>" in html
    for level in runbook.escalation:
        assert f"<li>{level}</li>" in html
    assert re.search(r'<details class="runbook-section" open>\s*<summary>First 15 minutes</summary>', html)
    assert re.search(r'<details class="runbook-section">\s*<summary>Diagnosis</summary>', html)
    assert "Do <strong>not</strong> add a balancing line" in html, "the body is rendered Markdown"
    assert "<code>journal_line</code>" in html
    assert "not found" not in html


def test_the_ticket_page_says_when_the_runbook_is_unknown(client: TestClient, ticket_app: TicketApp) -> None:
    ticket_id = open_ticket(ticket_app, runbook="gl-no-such-runbook")
    login(client, "agent")
    html = client.get(f"/tickets/{ticket_id}").text
    assert "Runbook gl-no-such-runbook not found" in html
    assert 'class="error runbook-missing" role="alert"' in html
    assert "runbook-section" not in html


def test_a_ticket_without_a_runbook_shows_no_runbook_section(
    client: TestClient, ticket_app: TicketApp
) -> None:
    # no runbook named and none whose applies_to matches the check or category (tickets/routing.py)
    ticket_id = open_ticket(ticket_app, runbook=None, check_id="custom.no_runbook", category="user")
    login(client, "viewer")
    html = client.get(f"/tickets/{ticket_id}").text
    assert 'id="runbook"' not in html and "<dt>Runbook</dt><dd>-</dd>" in html
