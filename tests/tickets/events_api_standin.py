"""A stand-in for an Events API v2 endpoint (PagerDuty's ``/v2/enqueue``) on a loopback port: it checks each
message as the real API documents (routing key, event_action, dedup_key, a trigger's payload summary,
source and severity), answers 202 or 400 like it, and keeps one incident per dedup key. ``webhook`` builds
the v3 webhook PagerDuty would post when someone acknowledges or resolves the incident there."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SEVERITIES = ("critical", "error", "warning", "info")


@dataclass
class Incident:
    dedup_key: str
    summary: str
    severity: str
    status: str = "triggered"
    actions: list[str] = field(default_factory=list)


class EventsApiStandIn:
    def __init__(self, routing_key: str) -> None:
        self.routing_key = routing_key
        self.received: list[dict[str, Any]] = []
        self.incidents: dict[str, Incident] = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                code, answer = api.handle(self.path, raw)
                data = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v2/enqueue"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(self, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        if path != "/v2/enqueue":
            return 404, {"status": "not found"}
        try:
            event = json.loads(raw)
        except json.JSONDecodeError:
            return 400, {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": ["not JSON"],
            }
        self.received.append(event)
        errors = self.errors(event)
        if errors:
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
        action, key, payload = event["event_action"], event.get("dedup_key"), event.get("payload") or {}
        incident = self.incidents.get(key)
        if action == "trigger":
            if incident is None or incident.status == "resolved":
                incident = self.incidents[key] = Incident(key, payload["summary"], payload["severity"])
            incident.actions.append("trigger")
        elif incident is not None and incident.status != "resolved":
            incident.status = "acknowledged" if action == "acknowledge" else "resolved"
            incident.actions.append(action)
        return 202, {"status": "success", "message": "Event processed", "dedup_key": key}

    def errors(self, event: dict[str, Any]) -> list[str]:
        """What the API would refuse in the message, as its error list says it."""
        errors = []
        if event.get("routing_key") != self.routing_key:
            errors.append("Invalid routing key")
        action = event.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is invalid")
        key = event.get("dedup_key")
        if action in ("acknowledge", "resolve") and not key:
            errors.append("'dedup_key' is missing")
        payload = event.get("payload") or {}
        if action == "trigger":
            for name in ("summary", "source", "severity"):
                if not payload.get(name):
                    errors.append(f"'payload.{name}' is missing or blank")
            if payload.get("severity") not in SEVERITIES:
                errors.append("'payload.severity' is invalid")
        return errors

    def webhook(self, dedup_key: str, event_type: str, agent: str = "Jane Doe") -> dict[str, Any]:
        """What PagerDuty posts when ``agent`` acknowledges or resolves the incident in PagerDuty."""
        incident = self.incidents[dedup_key]
        incident.status = event_type.removeprefix("incident.")
        return {
            "event": {
                "id": "01DRF6BV78DEFGHIJK56789",
                "event_type": event_type,
                "resource_type": "incident",
                "occurred_at": "2026-11-23T09:05:00Z",
                "agent": {"id": "P123ABC", "type": "user_reference", "summary": agent},
                "data": {
                    "id": "Q2KURS8RXYZ123",
                    "type": "incident",
                    "status": incident.status,
                    "incident_key": dedup_key,
                    "title": incident.summary,
                },
            }
        }
