"""The shipped catalogs: every string marked for translation (in the Python sources and the templates, as
``pybabel extract -F babel.cfg`` finds them) has a translation in each shipped language, the ``.po`` files
are well-formed, and a request's language is chosen profile > browser > site."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from core.i18n import (
    LANGUAGES,
    catalog_path,
    check_timezone,
    choose_language,
    negotiate,
    parse_language,
    translations,
)
from core.site import SiteSettings

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = [lang for lang in LANGUAGES if lang != "en"]


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """A fresh template catalog, extracted exactly as the operator guide tells a translator to."""
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run(
        [str(pybabel), "extract", "-F", "babel.cfg", "-k", "N_", "--no-location", "-o", str(pot), "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as fh:
        return read_po(fh)


def _load(language: str) -> Catalog:
    with catalog_path(language).open("rb") as fh:
        return read_po(fh, locale=language)


def _keys(catalog: Catalog) -> set[tuple[str | None, str]]:
    return {(m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in catalog if m.id}


def test_extraction_finds_the_templates_and_the_python_strings(extracted: Catalog) -> None:
    ids = _keys(extracted)
    assert len(ids) > 200
    assert (None, "Report a problem") in ids  # a template
    assert (None, "Say in one line what happened.") in ids  # a form error (Python, N_)
    assert (None, "in progress") in ids  # a status word (tickets/i18n.py)
    assert ("notification", "Resolved") in ids  # a notification's kind (pgettext)
    assert (None, "%(count)s ticket") in ids  # a plural ({% trans count %})


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_marked_string_is_in_each_shipped_catalog(extracted: Catalog, language: str) -> None:
    """Fails when a template or Python string marked for translation was added without running
    ``pybabel update`` and translating it (docs/operator-guide.md, "Languages")."""
    catalog = _load(language)
    missing = sorted(_keys(extracted) - _keys(catalog), key=str)
    assert missing == [], f"{language}: not in {catalog_path(language)} (run pybabel update): {missing}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_string_is_translated_and_none_is_fuzzy(extracted: Catalog, language: str) -> None:
    catalog = _load(language)
    wanted = _keys(extracted)
    untranslated = []
    for message in catalog:
        if not message.id or (message.context, _key_id(message.id)) not in wanted:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(strings):
            untranslated.append(message.id)
    assert untranslated == [], f"{language}: untranslated or fuzzy: {untranslated}"


def _key_id(msgid: str | tuple[str, ...]) -> str:
    return msgid if isinstance(msgid, str) else msgid[0]


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_catalog_is_well_formed(language: str) -> None:
    """Parses without error, says its language and plural rule, and each translation keeps the
    placeholders of its English text (babel's checkers: a lost ``%(amount)s`` would crash the page)."""
    path = catalog_path(language)
    with path.open("rb") as fh:
        catalog = read_po(fh, abort_invalid=True)  # the locale as its header says
    assert dict(catalog.mime_headers)["Language"] == language
    rule = "nplurals=2; plural=(n != 1);" if language == "en" else "nplurals=1; plural=0;"
    assert catalog.plural_forms == rule
    problems = [(message.id, [str(e) for e in errors]) for message, errors in catalog.check()]
    assert problems == []
    assert catalog.obsolete == {}, "obsolete entries (#~): run pybabel update, then remove them"
    assert path.read_text(encoding="utf-8")  # UTF-8, as the header says


def test_finance_words_are_the_ones_finance_users_read() -> None:
    cn, tw = translations("zh_CN").gettext, translations("zh_TW").gettext
    assert (cn("Acknowledge"), tw("Acknowledge")) == ("确认", "確認")
    assert (cn("Resolve"), tw("Resolve")) == ("解决", "解決")
    assert (cn("Priority"), tw("Priority")) == ("优先级", "優先級")
    assert (cn("Severity"), tw("Severity")) == ("严重程度", "嚴重程度")
    assert (cn("Ticket queue"), tw("Ticket queue")) == ("工单队列", "工單佇列")
    assert "应付账款" in cn("AP, GL, sales, inventory…") and "應付帳款" in tw("AP, GL, sales, inventory…")
    assert translations("en").gettext("Resolve") == "Resolve"
    assert translations("zh_CN").ngettext("%(count)s ticket", "%(count)s tickets", 3) % {"count": 3} == (
        "3 张工单"
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
        ("zh-TW,zh;q=0.9", "zh_TW"),
        ("zh-Hant-HK", "zh_TW"),
        ("zh-HK", "zh_TW"),
        ("zh-Hans", "zh_CN"),
        ("zh", "zh_CN"),
        ("en-US,en;q=0.9", "en"),
        ("fr-FR,zh-TW;q=0.5", "zh_TW"),  # the first one Hypercare speaks
        ("en;q=0.2,zh-CN;q=0.8", "zh_CN"),  # by weight, not by position
        ("de-DE,fr;q=0.5", None),
        ("zh-CN;q=0", None),  # q=0: "not this one"
        ("", None),
        ("*", None),
        (";;;,,q=", None),
    ],
)
def test_the_browser_language_is_negotiated(header: str, expected: str | None) -> None:
    assert negotiate(header) == expected


def test_the_profile_wins_then_the_browser_then_the_site() -> None:
    assert choose_language("zh_TW", "zh-CN", "en") == "zh_TW"
    assert choose_language(None, "zh-CN", "en") == "zh_CN"
    assert choose_language(None, "de-DE", "zh_CN") == "zh_CN"
    assert choose_language(None, None, "en") == "en"
    assert choose_language("klingon", None, "zh_TW") == "zh_TW"  # a stored value no longer shipped


def test_unknown_languages_and_time_zones_are_refused_naming_what_is_accepted() -> None:
    assert parse_language("zh-cn") == "zh_CN"
    assert parse_language("zh_Hant") == "zh_TW"
    with pytest.raises(ValueError, match=r"unknown language 'fr'.*zh_CN \(简体中文\)"):
        parse_language("fr")
    assert check_timezone("Asia/Shanghai") == "Asia/Shanghai"
    for bad in ("Asia/Shangai", "", "../etc/passwd", "/etc/localtime", "Beijing"):
        with pytest.raises(ValueError, match=r"unknown time zone .*Asia/Shanghai"):
            check_timezone(bad)
    with pytest.raises(ValueError, match="unknown language 'jp'"):
        SiteSettings(language="jp")
    assert SiteSettings(language="zh-TW").language == "zh_TW"
