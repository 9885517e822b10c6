"""The site: what holds for the whole site unless a user's profile says otherwise. Every part reads the
same ``site`` section; here, the language of users who chose none (core/i18n.py)."""

from __future__ import annotations

from pydantic import field_validator

from core.i18n import parse_language
from core.settings import StrictModel


class SiteSettings(StrictModel):
    """What holds for the whole site unless a user's profile says otherwise."""

    language: str = "en"
    """The language of users who chose none and whose browser asks for none Hypercare speaks:
    ``en``, ``zh_CN`` (简体中文) or ``zh_TW`` (繁體中文)."""

    @field_validator("language")
    @classmethod
    def _shipped(cls, value: str) -> str:
        return parse_language(value)
