"""The Events API v2 route (PagerDuty, and services that speak its Events API v2): one incident per ticket.

Every transition a target subscribes to becomes one message to ``url`` with the target's routing key:
opened / reopened / escalated -> ``trigger``, acknowledged -> ``acknowledge``, resolved -> ``resolve``, all
with the dedup key ``hypercare-ticket-<id>`` - stable for the ticket's life, so repeats and escalations
update one incident and an acknowledgement or resolution closes exactly it. The message (without the
routing key) is what the outbox row holds as its body, so the outbox shows what was sent; the routing key
is added at delivery and never stored or logged.

The way back: PagerDuty's v3 webhooks (``incident.acknowledged``, ``incident.resolved``) posted to
``POST /api/v1/pagerduty/webhook`` acknowledge or resolve the ticket named by the incident's
``incident_key`` (tickets/api/pagerduty.py), so an ack on the phone app shows in Hypercare.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

import httpx

from tickets.models import Ticket

ACTIONS = {
    "opened": "trigger",
    "reopened": "trigger",
    "escalated": "trigger",
    "acknowledged": "acknowledge",
    "resolved": "resolve",
}
SEVERITY = {"P1": "critical", "P2": "error", "P3": "warning", "P4": "info"}
DEDUP_PREFIX = "hypercare-ticket-"
_DEDUP = re.compile(rf"^{DEDUP_PREFIX}(\d{{1,10}})$")
CLIENT = "Hypercare"


def dedup_key(ticket_id: int) -> str:
    return f"{DEDUP_PREFIX}{ticket_id}"


def ticket_of(key: str | None) -> int | None:
    """The ticket id a dedup key (an incident's ``incident_key``) names, or None if it is not ours."""
    found = _DEDUP.match(key or "")
    return int(found.group(1)) if found else None


def message(ticket: Ticket, kind: str, base_url: str, note: str | None = None) -> dict[str, Any]:
    """The Events API v2 message for a ticket transition, without the routing key."""
    url = f"{base_url}/tickets/{ticket.id}"
    action = ACTIONS[kind]
    body: dict[str, Any] = {"event_action": action, "dedup_key": dedup_key(ticket.id)}
    if action == "trigger":
        details: dict[str, Any] = {
            "ticket": ticket.id,
            "transition": kind,
            "status": ticket.status,
            "priority": ticket.priority,
            "category": ticket.category,
            "occurrences": ticket.occurrence_count,
        }
        if ticket.amount_at_risk is not None:
            details["amount_at_risk"] = str(ticket.amount_at_risk)
        if ticket.runbook_id:
            details["runbook"] = ticket.runbook_id
        body["payload"] = {
            "summary": f"[{ticket.priority}] {ticket.title}"[:1024],
            "source": ticket.source,
            "severity": SEVERITY.get(ticket.priority, "error"),
            "component": ticket.check_id or ticket.category,
            "group": ticket.queue,
            "class": ticket.category,
            "custom_details": details,
        }
        body["client"], body["client_url"] = CLIENT, url
        body["links"] = [{"href": url, "text": f"Hypercare ticket #{ticket.id}"}]
    elif note:
        body["payload"] = {
            "summary": note[:1024]
        }  # ignored by PagerDuty for ack/resolve; kept for the record
    return body


def send(url: str, routing_key: str, body: str, *, timeout_s: float) -> tuple[bool, str | None]:
    """POST one message (the outbox row's body) with the routing key; (delivered, error)."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return False, "the outbox row holds no Events API message (not JSON)"
    data["routing_key"] = routing_key
    try:
        answer = httpx.post(url, json=data, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return False, f"Events API unreachable: {type(exc).__name__}: {exc}"
    if answer.status_code == 202 or 200 <= answer.status_code < 300:
        return True, None
    return False, f"Events API answered {answer.status_code}: {answer.text[:500]}"


def signature_ok(secret: str, raw: bytes, header: str | None) -> bool:
    """Whether ``X-PagerDuty-Signature`` (``v1=<hex>[, v1=<hex>...]``) holds the HMAC-SHA256 of the body."""
    expected = "v1=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, part.strip()) for part in (header or "").split(","))
