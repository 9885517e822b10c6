"""The demo's notification targets, escalation policy and on-call rotation: the team channel hears of every
P1/P2 ticket; an unacknowledged P1 pages the on-call in person after 15 minutes and the manager after 30
(who is on call comes from the rotation, handing off at 09:00 Shanghai time). All go to the local sink."""

from __future__ import annotations

from datetime import date
from typing import Any

DEMO_USER = "demo"
DEMO_MANAGER = "manager"


def oncall_demo_settings(sink_url: str, go_live: date) -> dict[str, Any]:
    """The ``notifications``, ``escalation`` and ``oncall`` sections of the demo's settings."""
    return {
        "notifications": {
            "targets": [
                {"url": sink_url, "name": "team-channel", "min_priority": "P2"},
                # the on-call's and the manager's own channels: escalations only (and, for the manager,
                # the resolution of what reached them)
                {"url": sink_url, "name": "oncall-phone", "person": DEMO_USER, "events": ["escalated"]},
                {
                    "url": sink_url,
                    "name": "manager",
                    "person": DEMO_MANAGER,
                    "events": ["escalated", "resolved"],
                },
            ]
        },
        "escalation": {
            "levels": {
                "P1": [
                    {"unacknowledged_min": 15, "page": ["oncall"]},
                    {"unacknowledged_min": 30, "page": ["manager"]},
                ]
            }
        },
        "oncall": {
            "timezone": "Asia/Shanghai",
            "rotations": [
                {
                    "name": "hypercare",
                    "members": [DEMO_USER],
                    "start": go_live.isoformat(),
                    "handoff": "09:00",
                    "length_days": 7,
                    "manager": DEMO_MANAGER,
                }
            ],
        },
    }
