"""The queue's words as people read them: statuses, categories, levels, link kinds and the like, shown in
the reader's language while the stored values stay the English enum values (``in_progress``, ``data``).

Each word is marked with :func:`~core.i18n.N_` here, so ``pybabel extract`` finds it, and translated where it
is shown (:func:`word`): in the UI's ``word`` filter and in the notifications' text.
"""

from __future__ import annotations

from core.i18n import N_, Gettext

WORDS: dict[str, str] = {
    # ticket statuses (core.vocabulary.TicketStatus) and the queue's status filters
    "new": N_("new"),
    "acknowledged": N_("acknowledged"),
    "in_progress": N_("in progress"),
    "waiting": N_("waiting"),
    "reopened": N_("reopened"),
    "resolved": N_("resolved"),
    "closed": N_("closed"),
    "open": N_("open"),
    "all": N_("all"),
    # categories (core.vocabulary.Category)
    "data": N_("data"),
    "process": N_("process"),
    "technical": N_("technical"),
    "user": N_("user"),
    # impact and urgency (core.vocabulary.Level)
    "high": N_("high"),
    "medium": N_("medium"),
    "low": N_("low"),
    # what a waiting ticket waits for (tickets.service.WAITING_REASONS)
    "vendor": N_("vendor"),
    "reporter": N_("reporter"),
    "other_team": N_("other team"),
    # kinds of link between tickets (tickets.ui.actions.LINK_KINDS)
    "relates": N_("relates"),
    "duplicates": N_("duplicates"),
    "caused_by": N_("caused by"),
    # roles (tickets.models.ROLES)
    "viewer": N_("viewer"),
    "agent": N_("agent"),
    "oncall": N_("on call"),
    "manager": N_("manager"),
    "admin": N_("admin"),
    # what happened to a ticket (its audit trail's actions)
    "opened": N_("opened"),
    "commented": N_("commented"),
    "status_changed": N_("status changed"),
    "priority_changed": N_("priority changed"),
    "assigned": N_("assigned"),
    "linked": N_("linked"),
    "escalated": N_("escalated"),
    "correlated": N_("correlated"),
    "muted": N_("muted"),
    "rated": N_("rated"),
    "watcher_added": N_("watcher added"),
    "watcher_removed": N_("watcher removed"),
    "verified": N_("verified"),
    "diagnosed": N_("diagnosed"),
    "step_done": N_("step done"),
    "step_undone": N_("step undone"),
    # problem records (tickets.agent_models.Problem.status; "open" and "resolved" as above)
    "known_error": N_("known error"),
    # the sections of a runbook (runbooks.library.SECTIONS)
    "What this means": N_("What this means"),
    "Business impact": N_("Business impact"),
    "First 15 minutes": N_("First 15 minutes"),
    "Diagnosis": N_("Diagnosis"),
    "Workaround": N_("Workaround"),
    "Fix": N_("Fix"),
    "Verify": N_("Verify"),
    "Escalate": N_("Escalate"),
    "Prevent": N_("Prevent"),
}
"""Stored value -> its English label (the msgid of its translation)."""


def word(gettext: Gettext, value: object) -> str:
    """``value`` (a stored enum value) as a reader of ``gettext``'s language reads it; a value without a
    label is shown as stored, underscores as spaces."""
    text = str(value)
    label = WORDS.get(text)
    return gettext(label) if label is not None else text.replace("_", " ")


HTTP_PHRASES = (
    N_("Bad Request"),
    N_("Unauthorized"),
    N_("Forbidden"),
    N_("Not Found"),
    N_("Method Not Allowed"),
    N_("Conflict"),
    N_("Content Too Large"),
    N_("Unprocessable Content"),
    N_("Too Many Requests"),
    N_("Internal Server Error"),
    N_("Service Unavailable"),
)
"""The titles of the UI's error pages (``http.HTTPStatus`` phrases), marked for the catalogs."""
