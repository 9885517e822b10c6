"""Routing rules: ordered, first match wins unless it says continue; queue and assignee on the new ticket,
the runbook found by applies_to when the event names none, and bad rule files as clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import ConfigError
from tests.tickets.factories import make_event, make_settings
from tickets.auth import create_user
from tickets.models import TicketAudit, User
from tickets.routing import load_rules, route
from tickets.service import TicketService
from tickets.settings import RoutingRule


def rules(*raw: dict[str, Any]) -> tuple[RoutingRule, ...]:
    return tuple(RoutingRule.model_validate(r) for r in raw)


def facts(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "labels": {"module": "gl"},
        "category": "data",
        "source": "erp",
        "check_id": "gl.x",
    }
    return base | overrides


def test_first_matching_rule_wins() -> None:
    chain = rules(
        {"match": {"category": "technical"}, "queue": "l3-tech"},
        {"match": {"labels": {"module": "gl"}}, "queue": "l2-gl", "assignee": "gina"},
        {"match": {}, "queue": "service-desk"},
    )
    found = route(chain, **facts())
    assert (found.queue, found.assignee, found.rules) == ("l2-gl", "gina", (1,))
    assert route(chain, **facts(labels={}, category="user")).queue == "service-desk"


def test_continue_lets_later_rules_refine() -> None:
    chain = rules(
        {"match": {"source": "erp"}, "queue": "l2-finance", "assignee": "fred", "continue": True},
        {"match": {"check": "gl.*"}, "queue": "l2-gl"},
        {"match": {}, "queue": "never-reached"},
    )
    found = route(chain, **facts())
    assert (found.queue, found.assignee, found.rules) == ("l2-gl", "fred", (0, 1))
    assert route(chain, **facts(check_id="ap.y")).queue == "never-reached"
    assert route(chain, **facts(check_id=None)).rules == (0, 2), "a check glob never matches no check"


def test_rules_file_follows_inline_rules_and_bad_files_are_named(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("- match: {category: data}\n  queue: data-team\n", encoding="utf-8")
    settings = make_settings(
        routing={"rules": [{"match": {"source": "legacy"}, "queue": "x"}], "rules_file": path}
    )
    assert [r.queue for r in load_rules(settings)] == ["x", "data-team"]
    path.write_text("- match: {colour: red}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"routing.yaml: rule 0.match.colour: Extra inputs"):
        load_rules(settings)
    with pytest.raises(ConfigError, match="cannot read the routing rules"):
        load_rules(make_settings(routing={"rules_file": tmp_path / "missing.yaml"}))


def test_a_new_ticket_is_routed_assigned_and_gets_a_runbook_by_applies_to(session: Session) -> None:
    create_user(session, "gina", "a-long-password-1", "agent")
    settings = make_settings(
        routing={"rules": [{"match": {"check": "gl.*"}, "queue": "l2-gl", "assignee": "gina"}]}
    )
    service = TicketService(session, settings)
    ticket = service.ingest(make_event(runbook=None)).ticket
    assert ticket is not None
    gina = session.scalars(select(User).where(User.username == "gina")).one()
    assert (ticket.queue, ticket.assignee_id, ticket.runbook_id) == (
        "l2-gl",
        gina.id,
        "gl-unbalanced-entries",
    )
    opened = session.scalars(select(TicketAudit).where(TicketAudit.ticket_id == ticket.id)).one()
    assert opened.detail["routing_rules"] == [0] and opened.detail["after"]["queue"] == "l2-gl"
    named = service.ingest(make_event(fingerprint="other", runbook="my-own")).ticket
    assert named is not None and named.runbook_id == "my-own", "the event's own runbook wins"
    plain = TicketService(session, make_settings()).ingest(make_event(fingerprint="third")).ticket
    assert plain is not None and (plain.queue, plain.assignee_id) == ("hypercare", None)
