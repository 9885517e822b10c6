"""A store filled with known data for the dashboard tests: eight tickets, check results, metric samples, an
anomaly, workarounds, ratings and a user per role. Times are relative to ``now`` (the minute the test runs),
so ages and ranges are what the dashboard computes; the expected figures are spelled out in EXPECTED.

Tickets (created relative to now; default range = the last 14 UTC days):

====  ====  ===========  =========  ==========  =========================================================
 #    prio  status       source     queue       what
====  ====  ===========  =========  ==========  =========================================================
 1    P1    new          erp        finance     2 h old, not acknowledged (response breached), 1000.00
 2    P2    in_progress  erp        finance     5 d old, acked in 0.5 h (met), resolution due +27 h
                                                passed (breached), 250.50, active workaround
 3    P2    waiting      finance    integration 10 d old, acked after 2 h (response breached)
 4    P3    resolved     erp        finance     3 d old, acked 1 h, resolved in 10 h, user error (ar),
                                                rated 4
 5    P3    resolved     erp        finance     4 d old, acked 2 h, resolved 20 h incl. 2 h waiting,
                                                reopened once, user error (ap), rated 2
 6    P4    closed       erp        service     20 d old (outside the range), resolved after 2 d
 7    P3    new          erp        service     20 d old, open
 8    P4    new          finance    service     1 d old, user error (ar), response breached
====  ====  ===========  =========  ==========  =========================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from monitor.models import CheckResultRow, CheckRun, MetricSampleRow, Source
from tickets.auth import create_token, create_user
from tickets.models import EventRecord, Ticket, TicketRating, Workaround

PASSWORD = "correct-horse-42"
H = timedelta(hours=1)
D = timedelta(days=1)


def minute_now() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


def assert_as_of_shanghai(text: str, prefix: str, since: datetime) -> None:
    """The page's "data as of" caption names a Shanghai minute between ``since`` (the minute the store was
    filled) and now: the page reads the wall clock, which may have passed a minute boundary since."""
    found = re.search(re.escape(prefix) + r" (\d{4}-\d{2}-\d{2} \d{2}:\d{2}) CST \(Asia/Shanghai\)", text)
    assert found, f"no '{prefix} <time> CST (Asia/Shanghai)' in {text!r}"
    shown = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    assert since.replace(second=0, microsecond=0) <= shown <= datetime.now(UTC), (shown, since)


@dataclass
class Known:
    now: datetime
    tokens: dict[str, str]


def _ticket(n: int, now: datetime, **kw: Any) -> Ticket:
    created: datetime = kw.pop("created")
    status = kw.pop("status", "new")
    priority = kw.pop("priority")
    response_min = {"P1": 30, "P2": 60, "P3": 8 * 60, "P4": 18 * 60}[priority]
    resolution_min = {"P1": 24 * 60, "P2": 27 * 60, "P3": 90 * 60, "P4": 180 * 60}[priority]
    is_open = status not in ("resolved", "closed")
    fields: dict[str, Any] = {
        "fingerprint": f"fp-{n}",
        "open_fingerprint": f"fp-{n}" if is_open else None,
        "title": f"Ticket {n}",
        "status": status,
        "priority": priority,
        "impact": "medium",
        "urgency": "medium",
        "category": "data",
        "source": "erp",
        "queue": "finance",
        "created_at": created,
        "first_seen_at": created,
        "last_seen_at": created,
        "updated_at": created,
        "sla_response_due_at": created + timedelta(minutes=response_min),
        "sla_resolution_due_at": created + timedelta(minutes=resolution_min),
        "labels": {},
    }
    fields.update(kw)
    return Ticket(**fields)


def seed(session: Session, now: datetime) -> dict[str, str]:
    """Fill the store; returns an API token per role (users are named after their role)."""
    t1 = now - 2 * H
    t2 = now - 5 * D
    t3 = now - 10 * D
    t4 = now - 3 * D
    t5 = now - 4 * D
    t6 = now - 20 * D
    tickets = [
        _ticket(1, now, priority="P1", created=t1, check_id="gl.balance", amount_at_risk=Decimal("1000.00")),
        _ticket(
            2,
            now,
            priority="P2",
            created=t2,
            status="in_progress",
            acknowledged_at=t2 + 0.5 * H,
            check_id="ar.drift",
            amount_at_risk=Decimal("250.50"),
        ),
        _ticket(
            3,
            now,
            priority="P2",
            created=t3,
            status="waiting",
            waiting_reason="vendor",
            acknowledged_at=t3 + 2 * H,
            category="process",
            source="finance",
            queue="integration",
            check_id="integration.finance-out.age",
        ),
        _ticket(
            4,
            now,
            priority="P3",
            created=t4,
            status="resolved",
            acknowledged_at=t4 + H,
            resolved_at=t4 + 10 * H,
            category="user",
            labels={"module": "ar"},
        ),
        _ticket(
            5,
            now,
            priority="P3",
            created=t5,
            status="resolved",
            acknowledged_at=t5 + 2 * H,
            resolved_at=t5 + 20 * H,
            sla_paused_s=2 * 3600.0,
            reopen_count=1,
            category="user",
            labels={"module": "ap"},
        ),
        _ticket(
            6,
            now,
            priority="P4",
            created=t6,
            status="closed",
            acknowledged_at=t6 + H,
            resolved_at=t6 + 2 * D,
            closed_at=t6 + 3 * D,
            queue="service",
            category="technical",
        ),
        _ticket(7, now, priority="P3", created=t6, queue="service", category="technical"),
        _ticket(
            8,
            now,
            priority="P4",
            created=now - D,
            source="finance",
            queue="service",
            category="user",
            labels={"module": "ar"},
        ),
    ]
    session.add_all(tickets)
    session.flush()
    by_no = {int(t.fingerprint.split("-")[1]): t for t in tickets}
    session.add_all(
        [
            Workaround(
                ticket_id=by_no[2].id,
                what="Post the drift by hand",
                owner="ar-lead",
                since=now - 4 * D,
                review_on=(now + 2 * D).date(),
                created_by="agent",
            ),
            Workaround(
                ticket_id=by_no[5].id,
                what="Old one",
                owner="ap-lead",
                since=now - 4 * D,
                review_on=(now - D).date(),
                active=False,
                ended_at=now - 3 * D,
                ended_by="agent",
                created_by="agent",
            ),
            TicketRating(ticket_id=by_no[4].id, score=4, rated_by="reporter", rated_at=now - 2 * D),
            TicketRating(ticket_id=by_no[5].id, score=2, rated_by="reporter", rated_at=now - 2 * D),
        ]
    )
    _monitor(session, now)
    tokens: dict[str, str] = {}
    for role in ("admin", "agent", "manager", "viewer"):
        user = create_user(session, role, PASSWORD, role)
        tokens[role] = create_token(session, user, "tests")
    return tokens


def _monitor(session: Session, now: datetime) -> None:
    session.add_all([Source(name="erp"), Source(name="finance")])
    run = CheckRun(started_at=now - 3 * D, finished_at=now - H, trigger="test")
    session.add(run)
    session.flush()

    def result(check_id: str, status: str, at: datetime, **kw: Any) -> CheckResultRow:
        return CheckResultRow(
            run_id=run.id, check_id=check_id, source="erp", status=status, started_at=at, finished_at=at, **kw
        )

    session.add_all(
        [
            result("gl.balance", "pass", now - 2 * D),
            result("gl.balance", "fail", now - D, violations=3, amount_at_risk=Decimal("1000.00")),
            result("gl.balance", "pass", now - H),
            result("ar.drift", "fail", now - D, violations=1, amount_at_risk=Decimal("250.50")),
            result("ar.drift", "fail", now - H, violations=1, amount_at_risk=Decimal("250.50")),
            result("probe.erp-api", "pass", now - 2 * H),
            result("probe.erp-api", "fail", now - H, error="HTTP 503"),
        ]
    )
    probe = {"probe": "erp-api", "source": "erp"}
    iface = {"integration": "finance-out", "source": "erp"}
    samples = [
        ("hypercare_probe_duration_seconds", probe, now - 2 * H, 0.2),
        ("hypercare_probe_duration_seconds", probe, now - H, 0.4),
        ("hypercare_probe_success", probe, now - 3 * H, 1.0),
        ("hypercare_probe_success", probe, now - 2 * H, 1.0),
        ("hypercare_probe_success", probe, now - 90 * timedelta(minutes=1), 1.0),
        ("hypercare_probe_success", probe, now - H, 0.0),
        ("hypercare_host_cpu_usage_ratio", {"source": "erp"}, now - H, 0.5),
        ("hypercare_db_up", {"source": "erp"}, now - H, 1.0),
        ("hypercare_integration_backlog_messages", iface, now - 3 * H, 3.0),
        ("hypercare_integration_backlog_messages", iface, now - H, 12.0),
        ("hypercare_integration_oldest_message_age_seconds", iface, now - H, 5400.0),
        ("hypercare_integration_failed_messages", iface, now - H, 2.0),
    ]
    session.add_all(MetricSampleRow(name=n, labels=lab, ts=ts, value=v) for n, lab, ts, v in samples)
    session.add(
        EventRecord(
            fingerprint="fp-metric",
            action="trigger",
            severity="P2",
            category="technical",
            summary="Anomaly on probe latency",
            source="erp",
            producer="anomaly",
            labels={"kind": "metric", "series": "hypercare_probe_duration_seconds", "detector": "seasonal"},
            occurred_at=now - H,
            received_at=now - H,
        )
    )
