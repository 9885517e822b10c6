"""``POST /api/v1/alertmanager``: Prometheus Alertmanager's webhook receiver.

Alertmanager retries a 5xx and drops a 4xx, so the answer is 200 whenever the delivery was applied, alert by
alert: each valid alert taken in (repeats included), each invalid one ``rejected`` and kept on the
receiver's intake-error ticket. 4xx only for a body that is not an Alertmanager webhook at all (not JSON, no
``alerts`` list, another version) or over the limits (``alertmanager.max_alerts``, ``max_body_bytes``), which
no retry would fix; 503 when the store is unreachable, which a retry can cure.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from tickets.alertmanager import AlertmanagerDelivery, AlertOutcome, AlertPayloadError, ingest_delivery
from tickets.api.deps import AlertWriter, ServiceDep, SessionDep, SettingsDep
from tickets.api.diagnostics import DiagnoserDep
from tickets.api.schemas import Problem

router = APIRouter(prefix="/api/v1", tags=["alertmanager"])


class AlertApplied(BaseModel):
    index: int = Field(description="The alert's position in the delivery's `alerts`.")
    fingerprint: str = Field(description="Alertmanager's fingerprint of the alert.")
    status: str = Field(description="firing or resolved; `unknown` for a rejected alert without either.")
    outcome: AlertOutcome
    ticket_id: int | None = Field(description="Its ticket; for a rejected alert the intake-error ticket.")
    error: str | None = Field(None, description="Why a rejected alert was refused (where and what).")


class WebhookAccepted(BaseModel):
    receiver: str
    stored: int = Field(description="Alerts taken in (repeats included).")
    rejected: int = Field(description="Alerts refused as sent, kept on the intake-error ticket.")
    alerts: list[AlertApplied]


_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "The token lacks scope `alerts:write`."},
    413: {"model": Problem, "description": "The body is larger than `alertmanager.max_body_bytes`."},
    422: {"model": Problem, "description": "Not an Alertmanager webhook, or over `alertmanager.max_alerts`."},
    503: {"model": Problem, "description": "The store is unavailable; Alertmanager retries."},
}


@router.post("/alertmanager", response_model=WebhookAccepted, responses=_RESPONSES)
def post_alertmanager(
    *,
    message: AlertmanagerDelivery,
    user: AlertWriter,
    service: ServiceDep,
    session: SessionDep,
    settings: SettingsDep,
    diagnoser: DiagnoserDep,
) -> WebhookAccepted:
    """Alertmanager `webhook_config` receiver (payload version 4): each alert by its own status.

    Each alert is validated on its own: one that is not valid as sent (a NUL character, an impossible
    `startsAt`, a missing field) is answered `rejected` with the reason and kept, as received but made safe,
    on the receiver's intake-error ticket (category technical, one per receiver: later ones are occurrences);
    the other alerts are taken in and the answer is 200.

    Idempotent: a repeat of an alert episode (same fingerprint and `startsAt`) changes nothing, so
    `repeat_interval` re-sends and retries never open a second ticket. Tickets an alert opened or reopened
    get their runbook and its diagnostics in a background task: the answer does not wait for them."""
    try:
        results = ingest_delivery(service, message, settings.alertmanager)
    except AlertPayloadError as exc:  # only this: any other error is a 5xx, which Alertmanager retries
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    session.commit()
    diagnoser.add_all((r.outcome, r.ticket_id) for r in results)
    diagnoser.schedule()
    rejected = sum(r.outcome == "rejected" for r in results)
    return WebhookAccepted(
        receiver=message.receiver,
        stored=len(results) - rejected,
        rejected=rejected,
        alerts=[
            AlertApplied(
                index=n,
                fingerprint=r.fingerprint,
                status=r.status,
                outcome=r.outcome,
                ticket_id=r.ticket_id,
                error=r.error,
            )
            for n, r in enumerate(results)
        ],
    )
