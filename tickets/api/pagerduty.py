"""``POST /api/v1/pagerduty/webhook``: PagerDuty's v3 webhooks, so an acknowledgement or resolution made
in PagerDuty round-trips into the ticket its incident stands for (tickets/events_api.py).

Authenticated like the Alertmanager intake: an API token with ``alerts:write`` as a bearer token (a custom
header of the webhook subscription); with ``notifications.events_api_webhook_secret`` set, the
``X-PagerDuty-Signature`` must match as well. Events about incidents that are not Hypercare's, of other
types, or for a ticket already in that state are answered 200 ``ignored`` with the reason (PagerDuty
retries anything else)."""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from tickets import events_api
from tickets.api.deps import AlertWriter, ServiceDep, SessionDep, SettingsDep
from tickets.api.schemas import Problem
from tickets.errors import TicketNotFound
from tickets.service import ACKNOWLEDGEABLE, TicketService

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["pagerduty"])
ACTED_ON = ("incident.acknowledged", "incident.resolved")
MAX_BODY = 256 * 1024


class WebhookOutcome(BaseModel):
    outcome: Literal["acknowledged", "resolved", "ignored"]
    ticket_id: int | None = None
    reason: str | None = None


def _field(data: Any, *path: str) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


@router.post(
    "/pagerduty/webhook",
    response_model=WebhookOutcome,
    responses={401: {"model": Problem}, 403: {"model": Problem}, 422: {"model": Problem}},
)
async def pagerduty_webhook(
    request: Request, user: AlertWriter, service: ServiceDep, session: SessionDep, settings: SettingsDep
) -> WebhookOutcome:
    """Acknowledge or resolve the ticket of a PagerDuty incident (``incident.acknowledged`` /
    ``incident.resolved``, matched by its ``incident_key``: ``hypercare-ticket-<id>``)."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"a webhook is at most {MAX_BODY} bytes")
    secret = settings.notifications.events_api_webhook_secret
    if secret is not None and not events_api.signature_ok(
        secret.get_secret_value(), raw, request.headers.get("X-PagerDuty-Signature")
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "X-PagerDuty-Signature is missing or does not match"
        )
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the body is not JSON") from None
    event = _field(body, "event")
    if not isinstance(event, dict):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "not a PagerDuty v3 webhook: no 'event' object"
        )
    kind = event.get("event_type")
    if kind not in ACTED_ON:
        return WebhookOutcome(outcome="ignored", reason=f"event type {kind!r} is not acted on")
    incident = _field(event, "data", "id")
    ticket_id = events_api.ticket_of(_field(event, "data", "incident_key"))
    if ticket_id is None:
        return WebhookOutcome(
            outcome="ignored", reason="the incident is not a Hypercare ticket's (incident_key)"
        )
    agent = _field(event, "agent", "summary") or _field(event, "agent", "id") or "unknown"
    actor = f"pagerduty:{agent}"[:64]
    return await _apply(service, session, ticket_id, kind=kind, actor=actor, incident=incident)


async def _apply(
    service: TicketService, session: Session, ticket_id: int, *, kind: str, actor: str, incident: object
) -> WebhookOutcome:
    """Change the ticket in a worker thread (the store is synchronous), in one transaction."""

    def run() -> WebhookOutcome:
        try:
            ticket = service.locked(ticket_id)
        except TicketNotFound:
            return WebhookOutcome(outcome="ignored", ticket_id=ticket_id, reason="no such ticket")
        if kind == "incident.acknowledged":
            if ticket.status not in ACKNOWLEDGEABLE:
                return WebhookOutcome(
                    outcome="ignored", ticket_id=ticket_id, reason=f"ticket is {ticket.status}"
                )
            service.acknowledge(ticket_id, actor)
            outcome: Literal["acknowledged", "resolved"] = "acknowledged"
        else:
            if not ticket.is_open:
                return WebhookOutcome(
                    outcome="ignored", ticket_id=ticket_id, reason=f"ticket is {ticket.status}"
                )
            service.resolve(ticket_id, actor, f"resolved in PagerDuty (incident {incident})")
            outcome = "resolved"
        session.commit()
        log.info("PagerDuty %s the ticket", outcome, extra={"ticket_id": ticket_id, "actor": actor})
        return WebhookOutcome(outcome=outcome, ticket_id=ticket_id)

    return await run_in_threadpool(run)
