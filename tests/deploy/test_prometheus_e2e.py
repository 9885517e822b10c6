"""The loop with the real Debian Prometheus and Alertmanager on loopback (bench/alerting_latency.py, one
episode): a check fails -> its ticket -> hypercare_check_status -> the shipped rule -> Alertmanager with the
shipped configuration and the documented token -> the alert folded into the check's ticket, not a second
one -> the on-call of the rotation paged through real apprise (and nobody else of it) -> the page's one-click
acknowledge link opened and used over real HTTP -> the ERP fixed -> the ticket resolved -> Alertmanager's
resolve recorded -> the "resolved" notification delivered to the on-call."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.alerting_latency import Stack, episode, running, wait_for
from tests.servers import tool
from tests.tickets.receiver import Receiver

pytestmark = pytest.mark.slow

INTERVAL_S = 5.0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    sink = Receiver()
    sink.thread.start()
    yield sink
    sink.server.shutdown()
    sink.server.server_close()
    sink.thread.join(5)


def on_call(receiver: Receiver) -> dict[str, Any]:
    """alice is on call this week in the one rotation, bob is next; each has a phone (a target of theirs)."""
    today = datetime.now(UTC).date().isoformat()
    phone = {"min_priority": "P1"}
    return {
        "oncall": {
            "timezone": "UTC",
            "rotations": [
                {"name": "finance", "members": ["alice", "bob"], "start": today, "handoff": "00:00"}
            ],
        },
        "notifications": {
            "dispatch_interval_s": 1,
            "targets": [
                {**phone, "url": receiver.url("alice"), "person": "alice", "name": "alice-phone"},
                {**phone, "url": receiver.url("bob"), "person": "bob", "name": "bob-phone"},
            ],
        },
    }


def messages(receiver: Receiver, path: str) -> list[dict[str, Any]]:
    return [m["json"] for m in list(receiver.received) if m["path"] == path]


def titled(receiver: Receiver, path: str, prefix: str) -> list[dict[str, Any]]:
    return [m for m in messages(receiver, path) if m["title"].startswith(prefix)]


def ticket_status(stack: Stack, ticket_id: int) -> str:
    return str(stack.query("SELECT status FROM ticket WHERE id = ?", ticket_id)[0][0])


def acknowledge_from_the_page(
    stack: Stack, receiver: Receiver, seen: dict[str, Any]
) -> Callable[[int], None]:
    """What the on-call does with the page: open its acknowledge link, read it, press the button."""

    def act(ticket_id: int) -> None:
        timeout = 6 * stack.interval + 15
        [page] = wait_for("the on-call's page", lambda: titled(receiver, "/alice", "[P1] Opened:"), timeout)
        links = dict(re.findall(r"^(Acknowledge|Resolve|Silence 2 h): (\S+)$", page["message"], re.MULTILINE))
        assert set(links) == {"Acknowledge", "Resolve", "Silence 2 h"}, page["message"]
        ack = links["Acknowledge"]
        assert ack.startswith(f"{stack.url}/act/"), "links point at server.public_url"

        shown = httpx.get(ack, timeout=10)
        assert shown.status_code == 200, shown.text
        assert f"Acknowledge ticket #{ticket_id}: you take it" in shown.text
        assert "link:alice-phone" in shown.text
        assert ticket_status(stack, ticket_id) == "new", "opening the link changes nothing"
        done = httpx.post(ack, timeout=10)
        assert done.status_code == 200 and f"Ticket #{ticket_id} acknowledged." in done.text, done.text
        assert ticket_status(stack, ticket_id) == "acknowledged"
        again = httpx.post(ack, timeout=10)
        assert again.status_code == 410 and "already been used" in again.text
        seen.update(ticket_id=ticket_id, page=page, links=links)

    return act


def test_a_failing_check_alerts_pages_the_on_call_is_acknowledged_by_link_and_resolves(
    tmp_path: Path, receiver: Receiver
) -> None:
    tool("prometheus", "prometheus")
    tool("prometheus-alertmanager", "prometheus-alertmanager")
    work = tmp_path / "stack"
    seen: dict[str, Any] = {}
    started = time.monotonic()
    with running(INTERVAL_S, work, on_call(receiver)) as stack:
        found = episode(stack, 0, while_open=acknowledge_from_the_page(stack, receiver, seen))
        ticket_id = int(found["ticket_id"])
        [resolved] = wait_for(
            "the resolved notification",
            lambda: titled(receiver, "/alice", "[P1] Resolved:"),
            6 * INTERVAL_S + 15,
        )
        trail = stack.query(
            "SELECT actor, action, detail FROM ticket_audit WHERE ticket_id = ? ORDER BY id", ticket_id
        )
    elapsed = time.monotonic() - started

    assert found["priority"] == "P1"  # the check's severity, through the metric's label and the intake
    assert found["folded_audits"] == 1  # folded, audited once, on the check's own ticket
    assert found["native_s"] <= 3 * INTERVAL_S + 5
    assert found["native_s"] <= found["alertmanager_s"] <= 6 * INTERVAL_S + 15
    assert found["resolved_s"] <= found["alertmanager_resolved_s"]
    assert seen["ticket_id"] == ticket_id, "the page and its link were for the check's ticket"

    # the on-call heard of it: opened with its links, then resolved, through real apprise; bob, not on call
    # this week, heard nothing
    assert seen["page"]["title"].startswith("[P1] Opened: ")
    assert [m["title"].split(":")[0] for m in messages(receiver, "/alice")] == [
        "[P1] Opened",
        "[P1] Resolved",
    ]
    assert messages(receiver, "/bob") == []
    assert resolved["type"] == "success"
    assert resolved["message"].startswith("Resolved: by system: recovered"), resolved["message"]
    assert "/act/" not in resolved["message"], "a resolution carries no links"

    # the trail: opened, folded, acknowledged by the link (and the link's use), resolved by the recovery
    actions = [(actor, action) for actor, action, _ in trail]
    assert ("link:alice-phone", "acknowledged") in actions
    used = [json.loads(detail) for actor, action, detail in trail if action == "link_used"]
    assert len(used) == 1 and used[0]["link_action"] == "acknowledge" and used[0]["address"] == "127.0.0.1"
    order = [action for _, action in actions]
    assert order.index("folded") < order.index("acknowledged") < order.index("resolved")
    assert [a for a in actions if a[1] == "resolved"] == [("system", "resolved")]

    token = (work / "hypercare.token").read_text(encoding="utf-8").strip()
    logs = {name: (work / f"{name}.log").read_text(encoding="utf-8") for name in ("serve", "alertmanager")}
    assert all(token not in text for text in logs.values()), "the token is never logged"
    link_token = seen["links"]["Acknowledge"].rsplit("/", 1)[1]
    assert all(link_token not in text for text in logs.values()), "a one-click link is never logged"
    assert "level=error" not in logs["alertmanager"], logs["alertmanager"][-2000:]
    assert elapsed < 150, f"the loop took {elapsed:.0f} s"
