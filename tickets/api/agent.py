"""The agents' work over HTTP, twin of the UI's forms: the conversation (notes and replies, @mentions),
problem records (open, read, change, link incidents) and bulk actions with each ticket's outcome.

Thin: the rules live in tickets.conversation, tickets.problem_records and tickets.bulk."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tickets import bulk, conversation, problem_records
from tickets.api.deps import ActingUser, CurrentUser, ServiceDep, SessionDep, T, TicketId, run_service
from tickets.api.schemas import Problem as ErrorBody
from tickets.api.schemas import visible_text

router = APIRouter(prefix="/api/v1", tags=["agents"])
ProblemId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The problem record's id.")]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "The user's role may not do this."},
    404: {"model": ErrorBody, "description": "No such ticket or problem."},
    409: {"model": ErrorBody, "description": "Not in a status allowing it."},
}


def _run(change: Callable[[], T]) -> T:
    return run_service(change, not_found=(problem_records.ProblemNotFound,))


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CommentCreate(_Body):
    text: LongText
    visibility: Literal["internal", "reply"] = Field(
        "internal", description="internal: agents only; reply: the reporter reads it and is notified."
    )


class CommentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    ticket_id: int
    author: str
    visibility: str
    text: str
    mentions: list[str] = Field(description="Active users @mentioned, each notified.")
    created_at: datetime


class ProblemCreate(_Body):
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    owner: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None = None
    ticket_id: int | None = Field(None, ge=1, le=2**31 - 1, description="A ticket to link at once.")


class ProblemUpdate(_Body):
    root_cause: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    status: Literal["open", "known_error", "resolved"] | None = None
    workaround: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    match_check_id: Annotated[str, StringConstraints(max_length=128)] | None = None
    match_subject: Annotated[str, StringConstraints(max_length=300)] | None = None


class ProblemPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    title: str
    status: str
    owner: str
    root_cause: str
    workaround: str
    match_check_id: str | None
    match_subject: str | None
    created_by: str
    created_at: datetime
    ticket_ids: list[int] = []


class ProblemLink(_Body):
    ticket_id: int = Field(ge=1, le=2**31 - 1)


class BulkRequest(_Body):
    ticket_ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(
        min_length=1, max_length=bulk.MAX_TICKETS
    )
    action: bulk.BulkAction
    assignee: Annotated[str, StringConstraints(max_length=64)] = Field(
        "", description="For assign; empty: nobody."
    )
    reason: Annotated[str, StringConstraints(max_length=2000)] = Field(
        "", description="For resolve (required)."
    )
    problem_id: int | None = Field(None, ge=1, le=2**31 - 1, description="For link_problem.")


class BulkOutcome(BaseModel):
    ticket_id: int
    ok: bool
    message: str


@router.get("/tickets/{ticket_id}/conversation", response_model=list[CommentPublic], responses=_ERRORS)
def comments(ticket_id: TicketId, user: CurrentUser, service: ServiceDep) -> list[CommentPublic]:
    """The ticket's conversation, oldest first."""
    _run(lambda: service.locked(ticket_id))
    return [CommentPublic.model_validate(c) for c in conversation.conversation(service.session, ticket_id)]


@router.post(
    "/tickets/{ticket_id}/conversation",
    response_model=CommentPublic,
    status_code=status.HTTP_201_CREATED,
    responses=_ERRORS,
)
def add_comment(
    ticket_id: TicketId, body: CommentCreate, user: ActingUser, service: ServiceDep, session: SessionDep
) -> CommentPublic:
    """An internal note or a reply to the reporter; @username notifies that user."""
    row = _run(
        lambda: conversation.add_comment(
            service, ticket_id, user.username, visible_text(body.text), visibility=body.visibility
        )
    )
    session.commit()
    return CommentPublic.model_validate(row)


def _problem_public(session: SessionDep, problem_id: int) -> ProblemPublic:
    problem = problem_records.get(session, problem_id)
    ids = [t.id for t in problem_records.tickets_of(session, problem_id)]
    return ProblemPublic.model_validate(problem).model_copy(update={"ticket_ids": ids})


@router.get("/problems", response_model=list[ProblemPublic], responses={403: _ERRORS[403]})
def list_problems(user: CurrentUser, session: SessionDep) -> list[ProblemPublic]:
    """Problem records, newest first (at most 500)."""
    return [ProblemPublic.model_validate(row.problem) for row in problem_records.listing(session)]


@router.post(
    "/problems", response_model=ProblemPublic, status_code=status.HTTP_201_CREATED, responses=_ERRORS
)
def open_problem(
    body: ProblemCreate, user: ActingUser, service: ServiceDep, session: SessionDep
) -> ProblemPublic:
    problem = _run(
        lambda: problem_records.create(
            service,
            user.username,
            title=body.title,
            owner=body.owner or user.username,
            ticket_id=body.ticket_id,
        )
    )
    session.commit()
    return _problem_public(session, problem.id)


@router.get("/problems/{problem_id}", response_model=ProblemPublic, responses=_ERRORS)
def read_problem(problem_id: ProblemId, user: CurrentUser, session: SessionDep) -> ProblemPublic:
    return _run(lambda: _problem_public(session, problem_id))


@router.patch("/problems/{problem_id}", response_model=ProblemPublic, responses=_ERRORS)
def change_problem(
    problem_id: ProblemId, body: ProblemUpdate, user: ActingUser, service: ServiceDep, session: SessionDep
) -> ProblemPublic:
    """Change the problem; ``known_error`` needs its workaround and the check or subject it matches."""
    _run(
        lambda: problem_records.update(
            service, problem_id, user.username, **body.model_dump(exclude_none=True)
        )
    )
    session.commit()
    return _problem_public(session, problem_id)


@router.post("/problems/{problem_id}/tickets", response_model=ProblemPublic, responses=_ERRORS)
def link_ticket(
    problem_id: ProblemId, body: ProblemLink, user: ActingUser, service: ServiceDep, session: SessionDep
) -> ProblemPublic:
    _run(lambda: problem_records.link(service, problem_id, body.ticket_id, user.username))
    session.commit()
    return _problem_public(session, problem_id)


@router.post("/bulk-actions", response_model=list[BulkOutcome], responses=_ERRORS)
def bulk_action(
    body: BulkRequest, user: ActingUser, service: ServiceDep, session: SessionDep
) -> list[BulkOutcome]:
    """Acknowledge, assign, resolve (with a reason) or link to a problem many tickets; each ticket's outcome
    (one refused does not stop the others)."""
    outcomes = _run(
        lambda: bulk.apply(
            service,
            body.ticket_ids,
            user.username,
            body.action,
            assignee=body.assignee,
            reason=body.reason,
            problem_id=body.problem_id,
        )
    )
    session.commit()
    return [BulkOutcome(ticket_id=o.ticket_id, ok=o.ok, message=o.message) for o in outcomes]
