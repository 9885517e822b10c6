"""Languages: the shipped gettext catalogs, which language a request is answered in, and the site's default.

Translators edit ``core/locale/<lang>/LC_MESSAGES/messages.po`` (docs/operator-guide.md, "Languages"); the
catalogs are read from the ``.po`` files when first used (no compiled ``.mo`` to keep in step, so a fresh
clone works as it is). Strings are marked in Python with ``gettext`` / ``ngettext`` (or :func:`N_` where the
text is only named, and translated later where it is shown) and in the Jinja2 templates with ``{% trans %}``
or ``_()``; ``pybabel extract -F babel.cfg`` finds them all.

A request's language: the user's own (profile), else the browser's ``Accept-Language``, else the site's
``site.language`` (core/site.py). Stored values (priorities, statuses, categories) stay English; only what
is shown is translated.
"""

from __future__ import annotations

import gettext as _gettext
import io
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

Language = Literal["en", "zh_CN", "zh_TW"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
"""The shipped languages (a catalog each under ``core/locale``)."""
LANGUAGE_NAMES: dict[Language, str] = {"en": "English", "zh_CN": "简体中文", "zh_TW": "繁體中文"}
"""Each language in its own words (as a language menu shows them)."""
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"

Gettext = Callable[[str], str]


def N_(message: str) -> str:
    """Marks ``message`` for extraction without translating it (it is translated where it is shown)."""
    return message


def catalog_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(language: str) -> _gettext.NullTranslations:
    """The catalog of a shipped language, read from its ``.po`` file once per process; English (the
    language of the source) and an unknown language give the text as written."""
    if language == "en" or language not in LANGUAGES:
        return _gettext.NullTranslations()
    with catalog_path(language).open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


def html_lang(language: str) -> str:
    """The BCP 47 tag of a language, as ``<html lang>`` and ``Content-Language`` take it (``zh-CN``)."""
    return language.replace("_", "-")


def parse_language(value: str) -> Language:
    """A shipped language from how people write it (``zh_CN``, ``zh-cn``, ``zh-Hans``, ``en-GB``...);
    ValueError naming the shipped languages otherwise."""
    found = _match(value.strip())
    if found is None:
        shipped = ", ".join(f"{code} ({LANGUAGE_NAMES[code]})" for code in LANGUAGES)
        raise ValueError(f"unknown language {value!r}: Hypercare speaks {shipped}")
    return found


def _match(tag: str) -> Language | None:
    if not tag or tag == "*":
        return None
    try:
        locale = Locale.parse(tag.replace("_", "-"), sep="-")
    except (UnknownLocaleError, ValueError, TypeError):
        return None
    if locale.language == "en":
        return "en"
    if locale.language != "zh":
        return None
    script = (locale.script or "").lower()
    territory = (locale.territory or "").upper()
    if script == "hant" or (not script and territory in {"TW", "HK", "MO"}):
        return "zh_TW"
    return "zh_CN"


def negotiate(accept_language: str | None) -> Language | None:
    """The shipped language a browser's ``Accept-Language`` header prefers most, or None (no header, or
    nothing the browser accepts is shipped). ``zh``, ``zh-Hans``, ``zh-SG`` read as zh_CN; ``zh-Hant``,
    ``zh-HK``, ``zh-MO`` as zh_TW."""
    if not accept_language:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if weight > 0:
            ranked.append((-weight, position, tag.strip()))
    for _weight, _position, tag in sorted(ranked):
        found = _match(tag)
        if found is not None:
            return found
    return None


def choose_language(profile: str | None, accept_language: str | None, site_default: str) -> Language:
    """The language to answer in: the user's profile, else the browser's, else the site's default."""
    if profile in LANGUAGES:
        return profile
    return negotiate(accept_language) or parse_language(site_default)


def check_timezone(value: str) -> str:
    """An IANA time-zone name (``Asia/Shanghai``), as given; ValueError saying what is wrong otherwise."""
    name = value.strip()
    try:
        if not name or name.startswith(("/", ".")) or ".." in name:
            raise ZoneInfoNotFoundError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}: give an IANA name such as Asia/Shanghai, Asia/Taipei or UTC"
        ) from None
    return name
