"""The ticket page's agent actions beyond the basic ones (tickets/ui/actions.py): workarounds, watchers,
silences, attachments, ratings, the assignee picker (users and queues), the conversation and problem
links. Each is a POST carrying the session's CSRF token, role-checked and audited like its API twin, and
answered with a redirect back to the ticket (POST-redirect-GET) and a message saying what happened; a
refusal is shown as a failure."""

# size: one route per agent action, each with its messages in the reader's language (tickets/ui/web.py)
from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Path, Request, UploadFile, status
from fastapi.responses import FileResponse, RedirectResponse, Response

from tickets import conversation, problem_records, silences, ticket_files, workarounds
from tickets.api.deps import ServiceDep, SessionDep, SettingsDep, TicketId
from tickets.api.schemas import visible_text
from tickets.assignment import QUEUE_PREFIX, move_to_queue
from tickets.errors import TicketNotFound
from tickets.lifecycle import Lifecycle
from tickets.models import User, Workaround
from tickets.reports import AttachmentRefused, AttachmentStore, storage_dir
from tickets.ui.actions import back, run
from tickets.ui.my_reports import reported_by
from tickets.ui.report import may
from tickets.ui.web import Csrf, UiUser, check_csrf, gettext_for, require_acting

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form(max_length=10000)]
Name = Annotated[str, Form(max_length=64)]
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _acting(request: Request, user: User, csrf: str) -> None:
    check_csrf(request, csrf)
    require_acting(user)


# --- workarounds -------------------------------------------------------------------------------------


@router.post("/tickets/{ticket_id}/workarounds")
def add_workaround(
    *,
    request: Request,
    ticket_id: TicketId,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Csrf,
    what: Text = "",
    owner: Name = "",
    review_on: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    _acting(request, user, csrf)
    _ = gettext_for(request, user)

    def change() -> None:
        try:
            review = date.fromisoformat(review_on) if review_on else service.now().date() + timedelta(days=7)
        except ValueError:
            raise ValueError(
                _("review date %(value)r is not a date (YYYY-MM-DD)") % {"value": review_on}
            ) from None
        workarounds.add_workaround(
            service, ticket_id, user.username, what=what, owner=owner or user.username, review_on=review
        )

    return run(
        request,
        session,
        ticket_id,
        failed=_("Not recorded: %(reason)s."),
        change=change,
        done=_("Workaround recorded."),
    )


@router.post("/workarounds/{workaround_id}/retire")
def retire_workaround(
    *,
    request: Request,
    workaround_id: RowId,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Csrf,
) -> Response:
    _acting(request, user, csrf)
    _ = gettext_for(request, user)
    row = session.get(Workaround, workaround_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"workaround {workaround_id} not found")
    return run(
        request,
        session,
        row.ticket_id,
        failed=_("Not retired: %(reason)s."),
        change=lambda: workarounds.update_workaround(service, workaround_id, user.username, active=False),
        done=_("Workaround retired."),
    )


# --- watchers ----------------------------------------------------------------------------------------


@router.post("/tickets/{ticket_id}/watchers")
def watch(
    *,
    request: Request,
    ticket_id: TicketId,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Csrf,
    username: Name = "",
    action: Annotated[str, Form(pattern="^(add|remove)$")] = "add",
) -> Response:
    _acting(request, user, csrf)
    _ = gettext_for(request, user)
    name = username.strip() or user.username
    adding = action == "add"

    def change() -> None:
        Lifecycle(service).watch(ticket_id, user.username, name, watching=adding)

    watched = _("%(name)s now watches #%(id)s.") if adding else _("%(name)s no longer watches #%(id)s.")
    return run(
        request,
        session,
        ticket_id,
        failed=_("Not changed: %(reason)s."),
        change=change,
        done=watched % {"name": name, "id": ticket_id},
    )


# --- assignee picker ---------------------------------------------------------------------------------


@router.post("/tickets/{ticket_id}/handover")
def handover(
    *,
    request: Request,
    ticket_id: TicketId,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Csrf,
    assignee: Annotated[str, Form(max_length=80)] = "",
) -> Response:
    """The picker's choice: a user (assigned), a queue (moved there, unassigned) or nobody."""
    _acting(request, user, csrf)
    _ = gettext_for(request, user)
    choice = assignee.strip()
    if choice.startswith(QUEUE_PREFIX):
        queue = choice[len(QUEUE_PREFIX) :]

        def to_queue() -> None:
            move_to_queue(service, ticket_id, user.username, queue)
            Lifecycle(service).assign(ticket_id, user.username, None)

        return run(
            request,
            session,
            ticket_id,
            failed=_("Not moved: %(reason)s."),
            change=to_queue,
            done=_("Moved to queue %(queue)s.") % {"queue": queue},
        )
    name = user.username if choice == "me" else choice
    return run(
        request,
        session,
        ticket_id,
        failed=_("Not assigned: %(reason)s."),
        change=lambda: Lifecycle(service).assign(ticket_id, user.username, name or None),
        done=_("Assigned to %(name)s.") % {"name": name} if name else _("Unassigned."),
    )


# --- silences ----------------------------------------------------------------------------------------


@router.post("/tickets/{ticket_id}/silence")
def silence_ticket(
    *,
    request: Request,
    ticket_id: TicketId,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    settings: SettingsDep,
    csrf: Csrf,
    hours: Annotated[float, Form(gt=0, le=24 * 31)] = 1,
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Mute notifications of this ticket's check (or, without a check, its source) at its priority."""
    _acting(request, user, csrf)
    _ = gettext_for(request, user)

    def change() -> None:
        ticket = service.locked(ticket_id)
        target = {"check": ticket.check_id} if ticket.check_id else {"source": ticket.source}
        matchers = silences.SilenceMatchers.model_validate({**target, "priorities": [ticket.priority]})
        now = service.now()
        row = silences.create(
            session,
            matchers=matchers,
            starts_at=now,
            ends_at=now + timedelta(hours=hours),
            created_by=user.username,
            role=user.role,
            limits=settings.security.silence_max_hours,
            comment=comment.strip() or f"from ticket #{ticket_id}",
            now=now,
        )
        service.audit(ticket, user.username, "silenced", now, silence_id=row.id, hours=hours, **target)

    return run(
        request,
        session,
        ticket_id,
        failed=_("Not silenced: %(reason)s."),
        change=change,
        done=_("Notifications muted for %(hours)s h.") % {"hours": f"{hours:g}"},
    )


@router.post("/tickets/{ticket_id}/silences/{silence_id}/expire")
def expire_silence(
    *,
    request: Request,
    ticket_id: TicketId,
    silence_id: RowId,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Csrf,
) -> Response:
    _acting(request, user, csrf)
    _ = gettext_for(request, user)

    def change() -> None:
        ticket = service.locked(ticket_id)
        if silences.expire(session, silence_id, service.now(), actor=user.username) is None:
            raise ValueError(f"silence {silence_id} not found")
        service.audit(ticket, user.username, "silence_ended", service.now(), silence_id=silence_id)

    return run(
        request,
        session,
        ticket_id,
        failed=_("Not ended: %(reason)s."),
        change=change,
        done=_("Silence %(id)s ended.") % {"id": silence_id},
    )


# --- attachments -------------------------------------------------------------------------------------


@router.post("/tickets/{ticket_id}/attachments")
def upload(
    *,
    request: Request,
    ticket_id: TicketId,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Annotated[str, Form()],
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    _acting(request, user, csrf)
    _ = gettext_for(request, user)
    if file is None or not file.filename:
        return back(request, ticket_id, _("Not attached: choose a file."), failure=True)
    try:
        row = ticket_files.attach(
            service,
            ticket_id,
            user.username,
            stream=file.file,
            filename=file.filename,
            content_type=file.content_type,
        )
    except AttachmentRefused as exc:
        session.rollback()
        return back(request, ticket_id, _("Not attached: %(reason)s.") % {"reason": exc}, failure=True)
    except TicketNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    session.commit()
    return back(request, ticket_id, _("Attached %(name)s.") % {"name": row.filename})


@router.get("/files/{kind}/{file_id}")
def download(
    *,
    kind: Annotated[str, Path(pattern="^(ticket|report)$")],
    file_id: RowId,
    user: UiUser,
    service: ServiceDep,
    inline: bool = False,
) -> Response:
    """A ticket's file: a download, or shown inline (images and PDF only, with their own type, no script)."""
    if not may(user, "tickets:read"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role '{user.role}' may not read tickets' files")
    found = ticket_files.find_file(service.session, kind, file_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"file {kind}/{file_id} not found")
    _, filename, content_type, storage_name = found
    path = AttachmentStore(storage_dir(service.settings)).path(storage_name)
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"file {kind}/{file_id} is missing from storage")
    show = inline and content_type in ticket_files.PREVIEWABLE
    media_type = "text/plain; charset=utf-8" if content_type.startswith("text/") else content_type
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
        # a PDF shown inline needs the browser's viewer (no sandbox); nothing else may run
        "Content-Security-Policy": "default-src 'none'; img-src 'self'; object-src 'self'"
        if show
        else "default-src 'none'; sandbox",
    }
    if show:
        headers["X-Frame-Options"] = "SAMEORIGIN"
    return FileResponse(
        path,
        media_type=media_type,
        filename=filename,
        content_disposition_type="inline" if show else "attachment",
        headers=headers,
    )


# --- rating, conversation, problem -------------------------------------------------------------------


@router.post("/tickets/{ticket_id}/rating")
def rate(
    *,
    request: Request,
    ticket_id: TicketId,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Csrf,
    score: Annotated[int, Form(ge=1, le=5)],
    comment: Annotated[str, Form(max_length=2000)] = "",
    on_behalf_of: Name = "",
) -> Response:
    """Like ``POST /api/v1/tickets/{id}/rating``: the reporter, or an agent on their behalf."""
    check_csrf(request, csrf)
    if not may(user, "tickets:write") and not (
        may(user, "reports:write") and reported_by(session, user, ticket_id)
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only an agent or the ticket's reporter rates it")
    _ = gettext_for(request, user)
    response = run(
        request,
        session,
        ticket_id,
        failed=_("Not rated: %(reason)s."),
        change=lambda: workarounds.rate(
            service,
            ticket_id,
            user.username,
            score=score,
            comment=comment,
            on_behalf_of=on_behalf_of.strip() or None,
        ),
        done=_("Rated %(score)s of 5. Thank you.") % {"score": score},
    )
    if not may(user, "tickets:read"):  # a reporter rates from their reports
        return RedirectResponse("/my-reports", status.HTTP_303_SEE_OTHER)
    return response


@router.post("/tickets/{ticket_id}/conversation")
def converse(
    *,
    request: Request,
    ticket_id: TicketId,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Csrf,
    text: Text = "",
    visibility: Annotated[str, Form(max_length=8)] = "internal",
) -> Response:
    _acting(request, user, csrf)
    _ = gettext_for(request, user)
    done = _("Reply sent to the reporter.") if visibility == "reply" else _("Note added.")
    return run(
        request,
        session,
        ticket_id,
        failed=_("Not added: %(reason)s."),
        change=lambda: conversation.add_comment(
            service, ticket_id, user.username, visible_text(text), visibility=visibility
        ),
        done=done,
    )


@router.post("/tickets/{ticket_id}/problem")
def link_problem(
    *,
    request: Request,
    ticket_id: TicketId,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Csrf,
    problem_id: Annotated[str, Form(max_length=12)] = "",
    title: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Link the ticket to an existing problem, or open a new one (``title``) from it."""
    _acting(request, user, csrf)
    _ = gettext_for(request, user)
    wanted = problem_id.strip().lstrip("#")

    def change() -> None:
        if wanted:
            if not wanted.isdecimal() or int(wanted) > 2**31 - 1:
                raise ValueError(_("%(value)r is not a problem number") % {"value": problem_id})
            problem_records.link(service, int(wanted), ticket_id, user.username)
        else:
            problem_records.create(
                service, user.username, title=title, owner=user.username, ticket_id=ticket_id
            )

    return run(
        request,
        session,
        ticket_id,
        failed=_("Not linked: %(reason)s."),
        change=change,
        done=_("Linked to the problem."),
    )
