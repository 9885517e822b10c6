"""The dashboards in the viewer's language, as the ticket UI chooses it (core/i18n.py): the language of the
viewer's profile (remembered at login), else the browser's ``Accept-Language``, else ``site.language``.

Pages translate what they show with :func:`gettext` (``_ = gettext(ctx.settings.site.language)``, then
``st.header(_("Backlog"))``); ``pybabel extract -F babel.cfg`` finds the strings in ``dashboards/``, and
``tests/core/test_i18n.py`` fails until each is translated in every shipped catalog. Stored values (P1,
``in_progress``, ``data``) stay as they are: :func:`word` gives the label a reader of the language reads.
"""

from __future__ import annotations

import streamlit as st

from core.i18n import Gettext, Language, choose_language, translations
from tickets.i18n import word as _word

LANGUAGE_KEY = "hypercare_language"
"""Where the logged-in viewer's profile language is kept in the Streamlit session (None: not chosen)."""


def remember(language: str | None) -> None:
    """Keep the viewer's profile language for the session (at login)."""
    st.session_state[LANGUAGE_KEY] = language


def viewer_language(site_language: str) -> Language:
    """The language to show this viewer the dashboards in."""
    chosen = st.session_state.get(LANGUAGE_KEY)
    accept = st.context.headers.get("Accept-Language")
    return choose_language(chosen if isinstance(chosen, str) else None, accept, site_language)


def gettext(site_language: str) -> Gettext:
    """The translation function of the viewer's language."""
    return translations(viewer_language(site_language)).gettext


def word(site_language: str, value: object) -> str:
    """A stored value (status, category, level) as the viewer reads it."""
    return _word(gettext(site_language), value)
