"""A user's own settings: the language the UI and messages speak to them, and the time zone times are shown
in. Set from the profile page (``/profile``), ``PATCH /api/v1/me`` and ``hypercare users profile``; each
checks the values here, so all three refuse the same bad input with the same words."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.i18n import check_timezone, parse_language
from tickets.models import User

UNSET = object()
"""A field the caller leaves as it is (``None`` clears it: back to the browser's or the site's)."""


@dataclass(frozen=True, slots=True)
class ProfileChange:
    """What changed: field -> (before, after)."""

    changes: dict[str, tuple[str | None, str | None]]


def clean_language(value: str | None) -> str | None:
    """A shipped language code (``zh_CN``) from how it was written, None for none (empty); ValueError
    naming the shipped languages otherwise."""
    if value is None or not value.strip():
        return None
    return parse_language(value)


def clean_timezone(value: str | None) -> str | None:
    """An IANA zone name, None for none (empty); ValueError naming what is wrong otherwise."""
    if value is None or not value.strip():
        return None
    return check_timezone(value.strip())


def update_profile(
    session: Session, user: User, *, language: object = UNSET, timezone: object = UNSET
) -> ProfileChange:
    """Check and set ``user``'s language and/or time zone (the caller commits); ValueError on a bad value,
    with nothing changed."""
    wanted: dict[str, str | None] = {}
    if language is not UNSET:
        wanted["language"] = clean_language(_text(language, "language"))
    if timezone is not UNSET:
        wanted["timezone"] = clean_timezone(_text(timezone, "timezone"))
    changes: dict[str, tuple[str | None, str | None]] = {}
    for name, value in wanted.items():
        before = getattr(user, name)
        if before != value:
            changes[name] = (before, value)
            setattr(user, name, value)
    session.flush()
    return ProfileChange(changes)


def _text(value: object, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"{name}: expected text or null, got {type(value).__name__}")
