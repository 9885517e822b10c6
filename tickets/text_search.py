"""Text search over the tickets: what a search word matches, and the ids a search matches kept per process
under the store's text version (tickets/cache.py), so that a change to a ticket's status, priority or
last sighting does not make every open search scan every ticket's text again."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Integer, any_, bindparam, func, or_, select, union
from sqlalchemy.orm import Session

from core.search import normalise
from tickets.cache import text_version
from tickets.models import Ticket, TicketSearchText

TEXT_MATCHES_MAX = 20_000
"""A search matching more tickets than this is not kept as ids (it is searched as before)."""
CACHE_SIZE = 256
"""Searches kept per process (least recently used dropped first)."""
_text_cache: OrderedDict[tuple[Any, ...], frozenset[int] | None] = OrderedDict()
_lock = threading.Lock()


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def text_clause(word: str) -> ColumnElement[bool]:
    """One search word: ``#123`` is a ticket id; anything else a substring of the title, check or
    fingerprint, or of the ticket's search text (description, entity keys, labels, evidence, comments in
    :func:`core.search.normalise`'s form: ``应收账款``, ``invoice_id=4711``, full-width ``ＡＲ`` as ``ar``).
    Each branch has its pg_trgm index on PostgreSQL (PostgreSQL ORs the ticket's bitmaps); the search
    text's table is a second branch of a UNION of ids, which the query joins to."""
    if word.startswith("#") and word[1:].isdigit():
        return Ticket.id == int(word[1:])
    pattern = _like(word.lower())
    on_ticket = (
        select(Ticket.id)
        .correlate(None)
        .where(
            or_(
                func.lower(Ticket.title).like(pattern, escape="\\"),
                func.lower(Ticket.check_id).like(pattern, escape="\\"),
                func.lower(Ticket.fingerprint).like(pattern, escape="\\"),
            )
        )
    )
    in_text = (
        select(TicketSearchText.ticket_id)
        .correlate(None)
        .where(TicketSearchText.text.like(_like(normalise(word)), escape="\\"))
    )
    return Ticket.id.in_(union(on_ticket, in_text))


def one_of(ids: frozenset[int], dialect: str) -> ColumnElement[bool]:
    """``ticket.id`` is one of ``ids``: on PostgreSQL one array parameter (``= ANY``), not a parameter per
    id (thousands of them cost more to send and plan than the search they replace)."""
    if dialect == "postgresql":
        return Ticket.id == any_(bindparam("matched_ids", sorted(ids), type_=ARRAY(Integer)))
    return Ticket.id.in_(sorted(ids))


def text_matches(session: Session, text: str | None) -> frozenset[int] | None:
    """The ids of the tickets a search text matches, whatever their other columns, kept per process under
    the store's text version (tickets/cache.py: moved only by a change to what searches read, or a ticket
    added or removed). A change to a ticket's status, priority or last sighting then costs a search no
    scan of every ticket's text: the rest of its filters and its order are applied to these ids.

    None (search as before) without a text, on a store without the version, or when the text matches more
    than :data:`TEXT_MATCHES_MAX` tickets."""
    words = " ".join(text.split()) if text else ""
    if not words:
        return None
    version = text_version(session)  # read before the tickets: what is kept is at least as new
    if version is None:
        return None
    key = (str(session.get_bind().engine.url), words, version)
    with _lock:
        if key in _text_cache:
            _text_cache.move_to_end(key)
            return _text_cache[key]
    found = session.scalars(
        select(Ticket.id).where(*(text_clause(word) for word in words.split())).limit(TEXT_MATCHES_MAX + 1)
    ).all()
    matches = frozenset(found) if len(found) <= TEXT_MATCHES_MAX else None
    with _lock:
        _text_cache[key] = matches
        while len(_text_cache) > CACHE_SIZE:
            _text_cache.popitem(last=False)
    return matches
