"""On-call: rotations with hand-offs in the site's zone, overrides, "who is on call" in the API, the UI and
the CLI, and escalation policies that page the on-call, then the manager, through real apprise."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from core.session import session_scope
from tests.cli import run_hypercare
from tests.tickets.factories import Clock, TicketApp, make_event, make_settings, seed_users, ticket_app_on
from tests.tickets.receiver import Receiver
from tests.tickets.web import login
from tickets import oncall
from tickets.access_models import SecurityEvent
from tickets.auth import create_user
from tickets.escalation import escalate
from tickets.models import NotificationOutbox, TicketAudit
from tickets.notify import build_notifier, dispatch_pending
from tickets.service import TicketService
from tickets.settings import NotificationTarget, OncallSettings

SHANGHAI = {
    "timezone": "Asia/Shanghai",
    "rotations": [
        {
            "name": "finance",
            "queues": ["finance"],
            "members": ["agent", "oncall", "admin"],
            "start": "2026-11-23",
            "handoff": "09:00",
            "length_days": 7,
            "manager": "manager",
        },
        {"name": "platform", "members": ["oncall"], "start": "2026-01-05", "length_days": 1},
    ],
}


def local(text: str, zone: str = "Asia/Shanghai") -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def who(session: Session, settings: Any, name: str, at: datetime) -> oncall.OnCall:
    return oncall.who(session, settings, oncall.rotation(settings, name), at)


def test_members_take_turns_handing_off_at_the_local_time(session: Session) -> None:
    settings = make_settings(oncall=SHANGHAI)
    assert who(session, settings, "finance", local("2026-11-23T09:00")).username == "agent"
    before = who(session, settings, "finance", local("2026-11-30T08:59"))
    after = who(session, settings, "finance", local("2026-11-30T09:00"))
    assert (before.username, before.secondary) == ("agent", "oncall")
    assert (after.username, after.secondary, after.manager) == ("oncall", "admin", "manager")
    assert after.since == local("2026-11-30T09:00") == datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
    assert after.until == local("2026-12-07T09:00")
    assert who(session, settings, "finance", local("2026-12-14T09:00")).username == "agent", "wraps around"
    assert who(session, settings, "finance", local("2026-11-22T12:00")).username == "admin", "before start"


def test_a_hand_off_keeps_its_wall_clock_time_across_daylight_saving(session: Session) -> None:
    berlin = {
        "timezone": "Europe/Berlin",
        "rotations": [{"name": "eu", "members": ["a", "b"], "start": "2026-10-20", "length_days": 7}],
    }
    settings = make_settings(oncall=berlin)
    # CEST ends on 2026-10-25: the hand-off of 2026-10-27 09:00 is 08:00 UTC, the one before 07:00 UTC
    assert who(session, settings, "eu", local("2026-10-20T09:00", "Europe/Berlin")).since == datetime(
        2026, 10, 20, 7, 0, tzinfo=UTC
    )
    turn = who(session, settings, "eu", local("2026-10-27T09:00", "Europe/Berlin"))
    assert (turn.username, turn.since) == ("b", datetime(2026, 10, 27, 8, 0, tzinfo=UTC))


def test_an_override_covers_its_time_and_is_recorded(session: Session, clock: Clock) -> None:
    settings = make_settings(oncall=SHANGHAI)
    seed_users_in(session)
    start, end = local("2026-11-24T18:00"), local("2026-11-25T09:00")
    made = oncall.add_override(
        session,
        settings,
        rotation_name="finance",
        username="admin",
        starts_at=start,
        ends_at=end,
        reason="agent at the dentist",
        actor="oncall",
        now=clock(),
    )
    during = who(session, settings, "finance", local("2026-11-24T20:00"))
    assert (during.username, during.source, during.override_id) == ("admin", "override", made.id)
    assert (during.secondary, during.until, during.reason) == ("agent", end, "agent at the dentist")
    assert who(session, settings, "finance", end).username == "agent"
    event = session.scalars(
        select(SecurityEvent).where(SecurityEvent.action == "oncall_override_created")
    ).one()
    assert (event.actor, event.subject, event.detail["username"]) == ("oncall", "rotation finance", "admin")

    oncall.end_override(session, made.id, actor="oncall", now=local("2026-11-24T19:00"))
    assert who(session, settings, "finance", local("2026-11-24T20:00")).username == "agent"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rotation_name": "nope"}, "no rotation named 'nope'; rotations: finance, platform"),
        ({"username": "ghost"}, "no active user named 'ghost'"),
        ({"ends_at": datetime(2026, 11, 24, tzinfo=UTC)}, "must end after it starts"),
        ({"ends_at": datetime(2027, 6, 1, tzinfo=UTC)}, "at most 92 days"),
        ({"reason": " "}, "needs a reason"),
    ],
)
def test_a_bad_override_is_refused_naming_what_is_wrong(
    session: Session, clock: Clock, change: dict[str, Any], message: str
) -> None:
    seed_users_in(session)
    fields: dict[str, Any] = {
        "rotation_name": "finance",
        "username": "admin",
        "starts_at": datetime(2026, 11, 25, tzinfo=UTC),
        "ends_at": datetime(2026, 11, 26, tzinfo=UTC),
        "reason": "cover",
        **change,
    }
    with pytest.raises((ValueError, LookupError), match=message):
        oncall.add_override(session, make_settings(oncall=SHANGHAI), actor="x", now=clock(), **fields)


def seed_users_in(session: Session) -> None:
    for name in ("agent", "oncall", "admin", "manager"):
        create_user(session, name, "correct-horse-42", "agent")


def test_rotations_are_checked_when_the_settings_load() -> None:
    twice = {"rotations": [{"name": "a", "members": ["x"], "start": "2026-01-01"}] * 2}
    with pytest.raises(ValidationError, match="rotation name\\(s\\) used twice: a"):
        OncallSettings.model_validate(twice)
    shared = {
        "rotations": [
            {"name": "a", "queues": ["q"], "members": ["x"], "start": "2026-01-01"},
            {"name": "b", "queues": ["q"], "members": ["y"], "start": "2026-01-01"},
        ]
    }
    with pytest.raises(ValidationError, match="queue\\(s\\) named by more than one rotation: q"):
        OncallSettings.model_validate(shared)
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Base'"):
        OncallSettings.model_validate({"timezone": "Mars/Base"})
    with pytest.raises(ValidationError, match="members"):
        OncallSettings.model_validate({"rotations": [{"name": "a", "members": [], "start": "2026-01-01"}]})


def person_target(receiver: Receiver, person: str, *events: str) -> NotificationTarget:
    fields: dict[str, Any] = {"url": receiver.url(person), "person": person, "min_priority": "P4"}
    if events:
        fields["events"] = events
    return NotificationTarget.model_validate(fields)


def test_the_escalation_policy_pages_the_on_call_then_the_manager(
    factory: sessionmaker[Session], receiver: Receiver
) -> None:
    """Level 1: the on-call of the ticket's queue at opening; level 2 after 15 min unacknowledged: the
    secondary; then the manager - each through real apprise to their own channel."""
    clock = Clock(local("2026-11-30T10:00"))  # oncall's week; admin is next
    settings = make_settings(
        oncall=SHANGHAI,
        targets=tuple(person_target(receiver, name) for name in ("agent", "oncall", "admin", "manager")),
        escalation={
            "levels": {
                "P1": [
                    {"unacknowledged_min": 15, "page": ["secondary"]},
                    {"unacknowledged_min": 30, "page": ["manager"]},
                ]
            }
        },
        routing={"rules": [{"match": {"category": "data"}, "queue": "finance"}]},
    )
    with session_scope(factory) as session:
        ticket = TicketService(session, settings, now=clock).ingest(make_event(p1=True)).ticket
        assert ticket is not None and ticket.queue == "finance"
        ticket_id = ticket.id
    for minutes, fired in ((16, 1), (15, 1)):
        clock.advance(minutes=minutes)
        with session_scope(factory) as session:
            assert escalate(TicketService(session, settings, now=clock)) == fired
    with session_scope(factory) as session:
        TicketService(session, settings, now=clock).resolve(ticket_id, "oncall", "fixed")

    report = dispatch_pending(factory, build_notifier(settings), settings, now=clock)
    assert report.retried == report.dead == 0
    heard: dict[str, list[str]] = {}
    for message in receiver.received:
        heard.setdefault(message["path"].strip("/"), []).append(message["json"]["title"].split(":")[0])
    assert heard == {
        "oncall": ["[P1] Opened", "[P1] Resolved"],
        "admin": ["[P1] Escalated", "[P1] Resolved"],
        "manager": ["[P1] Escalated", "[P1] Resolved"],
    }, "agent is neither on call nor next: told nothing"
    with factory() as session:
        paged = [
            e.detail["paged"]
            for e in session.scalars(
                select(TicketAudit).where(
                    TicketAudit.ticket_id == ticket_id, TicketAudit.action == "escalated"
                )
            )
        ]
    assert paged == [["admin"], ["manager"]]


def test_an_override_redirects_the_opening_page(factory: sessionmaker[Session], receiver: Receiver) -> None:
    clock = Clock(local("2026-11-30T10:00"))
    settings = make_settings(
        oncall=SHANGHAI, targets=tuple(person_target(receiver, n) for n in ("oncall", "admin"))
    )
    seed_users(factory)
    with session_scope(factory) as session:
        oncall.add_override(
            session,
            settings,
            rotation_name="platform",
            username="admin",
            starts_at=clock(),
            ends_at=clock() + timedelta(hours=4),
            reason="oncall on a flight",
            actor="oncall",
            now=clock(),
        )
    with session_scope(factory) as session:
        TicketService(session, settings, now=clock).ingest(make_event())  # queue hypercare: platform
    with factory() as session:
        assert [row.target for row in session.scalars(select(NotificationOutbox))] == [1]


@pytest.fixture
def oncall_app(store_url: str, tmp_path: Path) -> Any:
    with ticket_app_on(store_url, tmp_path, oncall=SHANGHAI) as app:
        yield app


def test_the_api_says_who_is_on_call_and_takes_overrides(oncall_app: TicketApp) -> None:
    with TestClient(oncall_app.app) as client:
        at = "2026-11-30T09:30:00+08:00"
        answer = client.get("/api/v1/oncall", params={"at": at}, headers=oncall_app.auth("viewer"))
        assert answer.status_code == 200
        finance = next(row for row in answer.json() if row["rotation"] == "finance")
        assert (finance["username"], finance["secondary"], finance["source"]) == (
            "oncall",
            "admin",
            "rotation",
        )
        assert finance["until"] == "2026-12-07T01:00:00Z"
        bad = client.get("/api/v1/oncall", params={"at": "tomorrow"}, headers=oncall_app.auth("viewer"))
        assert bad.status_code == 422 and "at: must be an ISO-8601" in bad.text

        body = {
            "rotation": "finance",
            "username": "agent",
            "starts_at": "2026-11-30T09:00:00+08:00",
            "ends_at": "2099-12-01T09:00:00+08:00",
            "reason": "swap",
        }
        assert (
            client.post("/api/v1/oncall/overrides", json=body, headers=oncall_app.auth("viewer")).status_code
            == 403
        )
        too_long = client.post("/api/v1/oncall/overrides", json=body, headers=oncall_app.auth("oncall"))
        assert too_long.status_code == 422 and "at most 92 days" in too_long.text
        body["ends_at"] = "2099-12-01T09:00:00+08:00"
        body["starts_at"] = "2099-11-30T09:00:00+08:00"
        made = client.post("/api/v1/oncall/overrides", json=body, headers=oncall_app.auth("oncall"))
        assert made.status_code == 201, made.text
        override_id = made.json()["id"]
        later = client.get(
            "/api/v1/oncall", params={"at": "2099-11-30T12:00:00+08:00"}, headers=oncall_app.auth("viewer")
        ).json()
        assert next(r for r in later if r["rotation"] == "finance")["username"] == "agent"
        listed = client.get("/api/v1/oncall/overrides", headers=oncall_app.auth("viewer")).json()
        assert [row["id"] for row in listed] == [override_id]
        ended = client.delete(f"/api/v1/oncall/overrides/{override_id}", headers=oncall_app.auth("oncall"))
        assert ended.status_code == 200
        assert client.get("/api/v1/oncall", headers={}).status_code == 401


def test_the_on_call_page_shows_each_rotation_in_the_site_zone(oncall_app: TicketApp) -> None:
    with TestClient(oncall_app.app) as client:
        assert client.get("/oncall", follow_redirects=False).status_code == 303
        login(client, "viewer")
        page = client.get("/oncall", params={"at": "2026-11-30T09:30"})
        assert page.status_code == 200
        text = page.text
        assert "On call at 2026-11-30 09:30" in text and "times in Asia/Shanghai" in text
        row = text[text.index('data-rotation="finance"') :]
        row = row[: row.index("</tr>")]
        assert (
            '<td class="oncall-who">oncall' in row and "2026-11-30 09:00" in row and "2026-12-07 09:00" in row
        )
        assert client.get("/oncall", params={"at": "soon"}).status_code == 422


def test_the_cli_says_who_is_on_call_and_manages_overrides(tmp_path: Path) -> None:
    config = tmp_path / "hypercare.yaml"
    config.write_text(
        yaml.safe_dump({"data_dir": str(tmp_path / "data"), "oncall": SHANGHAI}), encoding="utf-8"
    )
    env = {"HYPERCARE_CONFIG": str(config)}

    def cli(*args: str) -> Any:
        return run_hypercare(*args, cwd=tmp_path, env=env)

    assert cli("db", "upgrade").returncode == 0
    assert cli("users", "add", "admin", "--role", "admin", "--password", "admin-pass-1").returncode == 0
    now = cli("oncall", "now", "--at", "2026-11-30T09:30", "--json")
    assert now.returncode == 0, now.stderr
    rows = {row["rotation"]: row for row in json.loads(now.stdout)}
    assert (rows["finance"]["username"], rows["finance"]["until"]) == ("oncall", "2026-12-07T01:00:00+00:00")
    made = cli(
        "oncall", "override", "add", "finance", "admin",
        "--from", "2099-01-01T09:00", "--until", "2099-01-02T09:00", "--reason", "holiday swap",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "admin covers finance from 2099-01-01 09:00 CST until 2099-01-02 09:00 CST" in made.stdout
    covered = json.loads(cli("oncall", "now", "--at", "2099-01-01T12:00", "--json").stdout)
    assert next(r for r in covered if r["rotation"] == "finance")["username"] == "admin"
    listed = json.loads(cli("oncall", "override", "list", "--json").stdout)
    assert [(r["username"], r["reason"]) for r in listed] == [("admin", "holiday swap")]
    bad = cli(
        "oncall",
        "override",
        "add",
        "nope",
        "admin",
        "--from",
        "2099-01-01T09:00",
        "--until",
        "2099-01-02T09:00",
        "--reason",
        "x",
    )
    assert bad.returncode == 1 and "no rotation named 'nope'" in bad.stderr
    table = cli("oncall", "now")
    assert table.returncode == 0 and "finance" in table.stdout and "platform" in table.stdout
