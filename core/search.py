"""Text made searchable by substring, for scripts without spaces between words (Chinese, Japanese) as for
the others: one normal form for what is stored and what is searched.

Chinese has no spaces, so a word cannot be found by splitting text into words; the queue searches by
substring (``LIKE '%应收账款%'``), which PostgreSQL's pg_trgm GIN index answers from character trigrams
(it extracts them from CJK text under a UTF-8 ctype such as C.UTF-8). Both sides are NFKC-normalised
(full-width ``ＡＲ１２`` is ``ar12``, the ideographic space a space) and case-folded.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

MAX_SEARCH_TEXT = 8000
"""Characters kept per ticket: its first evidence, comments and keys; later text past it is not added."""
MAX_PIECE = 2000
"""Characters one piece of evidence or one comment may add."""


def normalise(text: str) -> str:
    """The search form of ``text``: NFKC, case-folded, runs of white space as one space."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _leaves(value: Any) -> Iterable[str]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, str | int | float) and not isinstance(item, bool):
                yield f"{key}={item}"  # an entity key reads as it is written: invoice_id=4711
            else:
                yield from _leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def flatten(value: Any) -> str:
    """The text of a JSON value (evidence, entity keys, labels): its scalars, ``key=value`` in mappings."""
    return normalise(" ".join(_leaves(value)))


def extended(current: str | None, *pieces: str) -> str:
    """``current`` with each normalised piece appended unless already in it, within the caps."""
    text = current or ""
    for piece in pieces:
        part = normalise(piece)[:MAX_PIECE]
        if not part or part in text:
            continue
        room = MAX_SEARCH_TEXT - len(text) - 1
        if room <= 0:
            break
        text = f"{text}\n{part[:room]}" if text else part[:room]
    return text
