"""``POST /api/v1/alertmanager``: Prometheus Alertmanager's webhook receiver.

Answers 200 when every alert was applied (repeats included: Alertmanager then stops retrying), 4xx for a
payload no retry will fix, and 503 only when the store is unreachable, which a retry can cure.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from tickets.alertmanager import AlertmanagerWebhook, AlertOutcome, AlertPayloadError, ingest_webhook
from tickets.api.deps import AlertWriter, ServiceDep, SessionDep, SettingsDep
from tickets.api.diagnostics import DiagnoserDep
from tickets.api.schemas import Problem

router = APIRouter(prefix="/api/v1", tags=["alertmanager"])


class AlertApplied(BaseModel):
    fingerprint: str = Field(description="Alertmanager's fingerprint of the alert.")
    status: str
    outcome: AlertOutcome
    ticket_id: int | None


class WebhookAccepted(BaseModel):
    receiver: str
    alerts: list[AlertApplied]


_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "The token lacks scope `alerts:write`."},
    413: {"model": Problem, "description": "The body is larger than `alertmanager.max_body_bytes`."},
    503: {"model": Problem, "description": "The store is unavailable; Alertmanager retries."},
}


@router.post("/alertmanager", response_model=WebhookAccepted, responses=_RESPONSES)
def post_alertmanager(
    *,
    message: AlertmanagerWebhook,
    user: AlertWriter,
    service: ServiceDep,
    session: SessionDep,
    settings: SettingsDep,
    diagnoser: DiagnoserDep,
) -> WebhookAccepted:
    """Alertmanager `webhook_config` receiver (payload version 4): each alert by its own status.

    Idempotent: a repeat of an alert episode (same fingerprint and `startsAt`) changes nothing, so
    `repeat_interval` re-sends and retries never open a second ticket. Tickets an alert opened or reopened
    get their runbook and its diagnostics in a background task: the answer does not wait for them."""
    try:
        results = ingest_webhook(service, message, settings.alertmanager)
    except AlertPayloadError as exc:  # only this: any other error is a 5xx, which Alertmanager retries
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    session.commit()
    diagnoser.add_all((r.outcome, r.ticket_id) for r in results)
    diagnoser.schedule()
    return WebhookAccepted(
        receiver=message.receiver,
        alerts=[
            AlertApplied(fingerprint=r.fingerprint, status=r.status, outcome=r.outcome, ticket_id=r.ticket_id)
            for r in results
        ],
    )
