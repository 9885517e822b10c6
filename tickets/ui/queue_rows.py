"""The queue's rows, each rendered once and kept while what it shows is unchanged.

A cached queue page is rebuilt whenever a ticket it may show changes (tickets/cache.py); most of its rows
have not. Rendering a row (its words translated, its time in the reader's zone, its amount formatted) was
three quarters of a rebuild, so each row's HTML is kept under everything it is made of: the ticket's
shown columns, its assignee's name, the reader's language, zone and whether they may act, the site's
currency and locale, the check's translated title. The key *is* the content: a kept row is never stale,
and a changed ticket simply makes a new key. The SLA clock is a slot named after the ticket, filled per
request (``QueuePage.fill``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from operator import attrgetter
from typing import Any

from jinja2 import Template
from markupsafe import Markup

from core.site import SiteSettings
from tickets.models import Ticket

ROW_CACHE_SIZE = 20_000
"""Rows kept per process (about 1 kB each), least recently used dropped first."""
SHOWN = (
    "id",
    "is_open",
    "priority",
    "status",
    "title",
    "check_id",
    "queue",
    "category",
    "source",
    "occurrence_count",
    "last_seen_at",
    "amount_at_risk",
)
"""The ticket columns a row shows (``_queue_row.html``)."""

_shown = attrgetter(*SHOWN)
_rows: OrderedDict[Hashable, Markup] = OrderedDict()
_lock = threading.Lock()


def render_rows(
    template: Template,
    tickets: Sequence[Ticket],
    assignees: Mapping[int, str],
    *,
    slot: Callable[[int], Markup],
    language: str,
    zone: Any,
    site: SiteSettings,
    can_act: bool,
    check_title: Callable[[str | None], str | None],
) -> Markup:
    """The rows of ``tickets`` in order, from the kept ones where they are unchanged. ``slot(id)``: the
    marker of the ticket's SLA clock."""
    reader = (language, str(zone), site.currency, site.locale, can_act)
    out: list[str] = []
    for ticket in tickets:
        shown = _shown(ticket)
        title = check_title(ticket.check_id) if ticket.check_id else None
        assignee = assignees.get(ticket.id)
        key = (reader, shown, assignee, title)
        with _lock:
            row = _rows.get(key)
            if row is not None:
                _rows.move_to_end(key)
        if row is None:
            context = {
                "t": ticket,
                "assignee": assignee,
                "clock": slot(ticket.id),
                "check_title": title,
                "can_act": can_act,
                "zone": zone,
                "site": site,
            }
            row = Markup(template.render(context))  # noqa: S704  (an autoescaped template's output)
            with _lock:
                _rows[key] = row
                while len(_rows) > ROW_CACHE_SIZE:
                    _rows.popitem(last=False)
        out.append(row)
    return Markup("").join(out)
