"""Bulk actions on the queue: acknowledge, assign, resolve with a reason, or link to a problem, many tickets
at once. Each ticket is changed in a SAVEPOINT of its own, through the same operation (and audit) as one at
a time: one refused ticket (already resolved, unknown user) is reported and leaves the others done."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from tickets import problem_records
from tickets.errors import TicketError
from tickets.lifecycle import Lifecycle
from tickets.service import TicketService

BulkAction = Literal["acknowledge", "assign", "resolve", "link_problem"]
ACTIONS: tuple[str, ...] = get_args(BulkAction)
MAX_TICKETS = 200


@dataclass(frozen=True, slots=True)
class Outcome:
    ticket_id: int
    ok: bool
    message: str


def _change(
    service: TicketService, action: str, actor: str, *, assignee: str, reason: str, problem_id: int | None
) -> Callable[[int], Any]:
    if action == "acknowledge":
        return lambda ticket_id: service.acknowledge(ticket_id, actor)
    if action == "assign":
        name = actor if assignee == "me" else assignee
        return lambda ticket_id: Lifecycle(service).assign(ticket_id, actor, name or None)
    if action == "resolve":
        if not reason.strip():
            raise ValueError("resolving needs a reason")
        return lambda ticket_id: service.resolve(ticket_id, actor, reason)
    if action == "link_problem":
        if problem_id is None:
            raise ValueError("linking needs the problem's number")
        problem_records.get(service.session, problem_id)  # unknown: refused before any ticket is touched
        return lambda ticket_id: problem_records.link(service, problem_id, ticket_id, actor)
    raise ValueError(f"a bulk action is one of {', '.join(ACTIONS)}, got {action!r}")


DONE = {"acknowledge": "acknowledged", "assign": "assigned", "resolve": "resolved", "link_problem": "linked"}


def apply(
    service: TicketService,
    ticket_ids: Sequence[int],
    actor: str,
    action: str,
    *,
    assignee: str = "",
    reason: str = "",
    problem_id: int | None = None,
) -> list[Outcome]:
    """Apply ``action`` to each ticket; returns what happened to each, in the order given. Raises
    ``ValueError`` when the request as a whole is unusable (no tickets, no reason...). Flushes; the caller
    commits."""
    ids = list(dict.fromkeys(ticket_ids))
    if not ids:
        raise ValueError("select at least one ticket")
    if len(ids) > MAX_TICKETS:
        raise ValueError(f"at most {MAX_TICKETS} tickets at once")
    change = _change(service, action, actor, assignee=assignee.strip(), reason=reason, problem_id=problem_id)
    outcomes: list[Outcome] = []
    for ticket_id in ids:
        try:
            with service.session.begin_nested():
                change(ticket_id)
        except (TicketError, ValueError) as exc:
            outcomes.append(Outcome(ticket_id, False, str(exc)))
        else:
            outcomes.append(Outcome(ticket_id, True, DONE[action]))
    service.session.flush()
    return outcomes
