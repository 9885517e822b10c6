"""Runbooks: Markdown files with YAML front matter, loaded, validated and rendered for the ticket page.

A runbook is ``<id>.md``: front matter between two ``---`` lines (``id``, ``title``, ``applies_to``,
``severity``, ``owner``, ``escalation``), then a body made of exactly the :data:`SECTIONS`, as ``## ``
headings, in that order (``###`` and deeper are free inside a section). The product ships runbooks in the
``runbooks`` package; a user directory adds runbooks and replaces shipped ones of the same id.

Every problem in a file is one :class:`RunbookError` naming the file, the line and the field or section.
Rendering is markdown-it (CommonMark plus tables) with raw HTML disabled: whatever HTML a runbook holds is
shown as text, never interpreted; ``- [ ]`` checklist items become disabled checkboxes.
"""
# size: the runbook format (front matter, sections, diagnostics, verification) and its loader

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

import yaml
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import HypercareError
from core.i18n import LANGUAGES, translations
from core.vocabulary import Category, Priority, parse

SECTIONS: tuple[str, ...] = (
    "What this means",
    "Business impact",
    "First 15 minutes",
    "Diagnosis",
    "Workaround",
    "Fix",
    "Verify",
    "Escalate",
    "Prevent",
)
"""The body's ``## `` sections, all required, in this order."""

OPEN_SECTIONS: frozenset[str] = frozenset({"First 15 minutes"})
"""Sections the ticket page shows expanded."""

SHIPPED_PACKAGE = "runbooks"
_SKIPPED_FILES = {"readme.md"}
_FENCE = "---"
_CANONICAL = {name.casefold(): name for name in SECTIONS}
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class RunbookError(HypercareError, ValueError):
    """A runbook file is wrong; the message reads ``<file>:<line>: <what is wrong>``."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.problem = message
        super().__init__(f"{self.path}:{line}: {message}" if line is not None else f"{self.path}: {message}")


PARAM_ROOTS: tuple[str, ...] = ("entity", "evidence", "labels", "ticket")
"""Where a diagnostic's parameter comes from: the event's entity keys, its evidence (dotted path), its
labels, or the ticket (``ticket.source``, ``ticket.check_id``, ``ticket.fingerprint``)."""
TICKET_FIELDS: frozenset[str] = frozenset({"source", "check_id", "fingerprint", "category", "title"})
_PARAM_NAME = r"^[a-z_][a-z0-9_]*$"
_REF = re.compile(r"^(entity|evidence|labels|ticket)(\.[A-Za-z0-9_-]+)+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _patterns(value: Any) -> Any:
    """A glob or a list of globs -> a tuple of globs."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and value and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ValueError("expected a pattern or a list of patterns")


class Matcher(_Strict):
    """One ``applies_to`` entry. All the conditions it names must hold (an empty one matches nothing).

    Written as text: a check id or alert name (patterns allowed: ``probe.*``), a category (``data``), or a
    label matcher ``key=pattern``. Written as a mapping: ``check``, ``category``, ``labels`` and ``evidence``
    (dotted paths into the event's evidence, e.g. ``row.problem``) together.
    """

    check: str | None = None
    category: str | None = None
    labels: dict[str, tuple[str, ...]] = {}
    evidence: dict[str, tuple[str, ...]] = {}
    text: str = ""

    @field_validator("labels", "evidence", mode="before")
    @classmethod
    def _globs(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError("expected a mapping of key: pattern")
        return {str(key): _patterns(item) for key, item in value.items()}

    @property
    def score(self) -> int:
        """How specific the matcher is: conditions on evidence or labels > an exact check > a pattern >
        a category alone."""
        base = 0
        if self.check is not None:
            base = 3 if not any(ch in self.check for ch in "*?[") else 2
        elif self.labels:
            base = 2
        elif self.category is not None:
            base = 1
        return base + 2 * (len(self.labels) + len(self.evidence))

    def matches(self, subject: Subject) -> bool:
        if not (self.check or self.category or self.labels or self.evidence):
            return False
        if self.check is not None and not any(
            name and fnmatch.fnmatchcase(name, self.check) for name in subject.names
        ):
            return False
        if self.category is not None and self.category != subject.category:
            return False
        for key, globs in self.labels.items():
            value = subject.labels.get(key)
            if value is None or not any(fnmatch.fnmatchcase(str(value), g) for g in globs):
                return False
        for path, globs in self.evidence.items():
            value = lookup(subject.evidence, path)
            if value is None or not any(fnmatch.fnmatchcase(str(value), g) for g in globs):
                return False
        return True


def parse_matcher(item: Any) -> Matcher:
    """An ``applies_to`` entry (text or mapping) as a :class:`Matcher`; ValueError when malformed."""
    if isinstance(item, str):
        text_ = item.strip()
        if not text_:
            raise ValueError("an applies_to entry is empty")
        if "=" in text_:
            key, _, pattern = text_.partition("=")
            return Matcher(labels={key.strip(): pattern.strip()}, text=text_)  # type: ignore[dict-item]
        if parse(Category, text_) is not None:
            return Matcher(category=text_, text=text_)
        return Matcher(check=text_, text=text_)
    if isinstance(item, dict):
        try:
            matcher = Matcher(**{str(k): v for k, v in item.items()})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ValueError(f"{where}: {err['msg'].removeprefix('Value error, ')}") from None
        shown = ", ".join(f"{k}: {v}" for k, v in item.items())
        return matcher.model_copy(update={"text": "{" + shown + "}"})
    raise ValueError("expected text (check id, alert name, category, key=pattern) or a mapping")


@dataclass(frozen=True, slots=True)
class Subject:
    """What a ticket is, as runbooks match it."""

    check_id: str | None
    category: str
    labels: Mapping[str, str]
    evidence: Mapping[str, Any]

    @property
    def names(self) -> tuple[str, ...]:
        """Check id, and the alert name for an Alertmanager alert; a collector-error / source-down
        exception also goes by its ``kind`` label."""
        names = [self.check_id or ""]
        for key in ("alertname", "kind"):
            if self.labels.get(key):
                names.append(str(self.labels[key]))
        return tuple(n for n in names if n)


def lookup(data: Mapping[str, Any], path: str) -> Any:
    """``data["a"]["b"]`` for ``"a.b"``; None when any step is missing (a list index is a number)."""
    value: Any = data
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


class Param(_Strict):
    """A diagnostic's parameter: where its value comes from in the ticket's event, and its type."""

    from_: str = Field(alias="from", pattern=_REF.pattern)
    type: Literal["text", "int", "decimal", "date"] = "text"


class Diagnostic(_Strict):
    """A read-only query (``sql``) on a source, or a GET/HEAD request (``http``) to the ticket's probe's
    server, run once when a ticket opens; its parameters come from the ticket's event."""

    name: str = Field(pattern=_PARAM_NAME, max_length=64)
    title: str = Field(min_length=1, max_length=200)
    sql: str | None = None
    http: str | None = None
    """``GET /path/{param}`` or ``HEAD /path``: relative to the ticket's probe's (or ``probe``'s) URL."""
    probe: str | None = None
    source: str | None = None
    """The source the SQL runs on; default the ticket's source."""
    params: dict[str, Param] = {}
    checks: tuple[str, ...] = ()
    """Run only for tickets of these check ids (patterns allowed); empty: for every ticket."""
    engines: tuple[Literal["postgresql", "mysql", "mariadb", "sqlite"], ...] = ()
    """Run only on sources of these database engines (catalog views differ); empty: on any."""

    @field_validator("params", mode="before")
    @classmethod
    def _params(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError("expected a mapping of name: entity.key (or {from: ..., type: int})")
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not re.match(_PARAM_NAME, str(key)):
                raise ValueError(f"parameter name '{key}' must be lower_snake_case")
            out[str(key)] = Param.model_validate({"from": item} if isinstance(item, str) else item)
        return out

    @field_validator("checks", "engines", mode="before")
    @classmethod
    def _checks(cls, value: Any) -> Any:
        return _patterns(value)

    @model_validator(mode="after")
    def _one_kind(self) -> Diagnostic:
        if (self.sql is None) == (self.http is None):
            raise ValueError("needs exactly one of 'sql' or 'http'")
        if self.http is not None and not re.match(r"^(GET|HEAD) [/{]\S*$", self.http):
            raise ValueError("http must read 'GET /path' or 'HEAD /path' (read-only requests only)")
        return self

    @property
    def kind(self) -> str:
        return "sql" if self.sql is not None else "http"

    def runs_for(self, check_id: str | None) -> bool:
        return not self.checks or any(
            check_id is not None and fnmatch.fnmatchcase(check_id, g) for g in self.checks
        )


class Verification(_Strict):
    check: str = "ticket"
    """The check to re-run: ``ticket`` (the ticket's own check) or a check id."""
    resolve_on_pass: bool = True
    """A pass resolves the ticket (when ``runbooks.verify_resolves`` is on too)."""


class Escalation(_Strict):
    levels: tuple[str, ...] = Field(min_length=1)
    vendor_contact: str | None = None
    """Who to call at the vendor (a placeholder until the contract names one)."""

    @field_validator("levels", mode="before")
    @classmethod
    def _levels(cls, value: Any) -> Any:
        return _list_of_text(value)


def _list_of_text(value: Any) -> Any:
    if not isinstance(value, list):
        raise ValueError("expected a YAML list, e.g. [a, b]")
    if not all(isinstance(item, str) and item.strip() for item in value):
        raise ValueError("every item must be non-empty text")
    return tuple(item.strip() for item in value)


class _FrontMatter(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=128)
    title: str = Field(min_length=1, max_length=200)
    applies_to: tuple[Matcher, ...] = Field(min_length=1)
    severity: Priority = Field(strict=False)  # strict would take only a Priority object, never YAML text
    owner: str = Field(min_length=1, max_length=64)
    escalation: Escalation
    diagnostics: tuple[Diagnostic, ...] = ()
    verification: Verification = Verification()

    @field_validator("applies_to", mode="before")
    @classmethod
    def _matchers(cls, value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError("expected a YAML list, e.g. [a, b]")
        out = []
        for index, item in enumerate(value):
            try:
                out.append(parse_matcher(item))
            except ValueError as exc:
                raise ValueError(f"entry {index + 1}: {exc}") from None
        return tuple(out)

    @field_validator("escalation", mode="before")
    @classmethod
    def _escalation(cls, value: Any) -> Any:
        if isinstance(value, list):  # the short form: the levels only
            return Escalation(levels=value)  # type: ignore[arg-type]
        if isinstance(value, dict):
            return Escalation(**value)
        raise ValueError("expected a list of levels or {levels: [...], vendor_contact: ...}")

    @field_validator("diagnostics", mode="before")
    @classmethod
    def _diagnostics(cls, value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError("expected a YAML list of {name, title, sql | http, params}")
        out = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise ValueError(f"entry {index + 1}: expected a mapping")
            try:
                out.append(Diagnostic(**{str(k): v for k, v in item.items()}))
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"])
                where = f" '{where}'" if where else ""
                label = item.get("name") or "?"
                message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
                raise ValueError(
                    f"entry {index + 1} ({label}){where}: {message.removeprefix('Value error, ')}"
                ) from None
        names = [d.name for d in out]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"diagnostic name(s) {dupes} used twice")
        return tuple(out)

    @field_validator("verification", mode="before")
    @classmethod
    def _verification(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError("expected {check: ticket | <check id>, resolve_on_pass: true}")
        return Verification(**value)


@dataclass(frozen=True, slots=True)
class Runbook:
    id: str
    title: str
    applies_to: tuple[str, ...]
    """Check ids, alert names, categories or label matchers this runbook is for, as written."""
    severity: str
    owner: str
    escalation: tuple[str, ...]
    """Who to hand over to, in order (levels of the support model, then people or the vendor)."""
    body_markdown: str
    sections: dict[str, str] = field(hash=False, compare=False)
    """Section title -> its Markdown (without the heading), in :data:`SECTIONS` order."""
    path: Path
    matchers: tuple[Matcher, ...] = field(default=(), hash=False, compare=False)
    vendor_contact: str | None = None
    diagnostics: tuple[Diagnostic, ...] = field(default=(), hash=False, compare=False)
    verification: Verification = field(default_factory=Verification, hash=False, compare=False)
    front_matter: str = field(default="", hash=False, compare=False, repr=False)
    """The front matter's text (the lint maps fields back to lines with it)."""

    def applies(self, name: str) -> bool:
        """True when ``name`` (a check id, alert name or category) matches one of ``applies_to``,
        conditions on labels and evidence aside."""
        for m in self.matchers:
            if m.check is not None and fnmatch.fnmatchcase(name, m.check):
                return True
            if m.category is not None and m.check is None and name == m.category:
                return True
        return False

    def match_score(self, subject: Subject) -> int:
        """The most specific of its matchers that matches ``subject``; 0 when none does."""
        return max((m.score for m in self.matchers if m.matches(subject)), default=0)


# --- parsing ---------------------------------------------------------------------------------------------


def _split_front_matter(text: str, path: Path) -> tuple[str, str, int]:
    """(front matter, body, file line number of the body's first line)."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != _FENCE:
        raise RunbookError(path, f"no front matter: a runbook starts with a '{_FENCE}' line", 1)
    for index in range(1, len(lines)):
        if lines[index].strip() in {_FENCE, "..."}:
            return "\n".join(lines[1:index]), "\n".join(lines[index + 1 :]), index + 2
    raise RunbookError(path, f"front matter is not closed: add a '{_FENCE}' line after it", 1)


def item_lines(front: str) -> dict[tuple[str, int], int]:
    """(front-matter key, list index) -> the file line of that list item (front matter starts on line 2)."""
    try:
        node = yaml.compose(front, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    found: dict[tuple[str, int], int] = {}
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and isinstance(value, yaml.SequenceNode):
            for index, item in enumerate(value.value):
                found[(str(key.value), index)] = item.start_mark.line + 2
    return found


def _key_lines(front: str) -> dict[str, int]:
    """Front-matter key -> its line in the file (front matter starts on line 2)."""
    try:
        node = yaml.compose(front, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {
        str(key.value): key.start_mark.line + 2 for key, _ in node.value if isinstance(key, yaml.ScalarNode)
    }


def _front_matter(front: str, path: Path) -> _FrontMatter:
    try:
        data = yaml.load(front, Loader=_LOADER)  # noqa: S506 - a SafeLoader (libyaml's when present)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise RunbookError(
            path, f"front matter is not valid YAML: {problem}", mark.line + 2 if mark else None
        ) from None
    if not isinstance(data, dict):
        raise RunbookError(path, "front matter must be a YAML mapping of fields (id: ..., title: ...)", 2)
    try:
        return _FrontMatter(**{str(key): value for key, value in data.items()})
    except ValidationError as exc:
        lines = _key_lines(front)
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "?"
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(_FrontMatter.model_fields)
            message = f"unknown field '{name}' (fields: {allowed})"
        elif err["type"] == "missing":
            message = f"missing field '{name}'"
        else:
            message = f"field '{name}': {err['msg'].removeprefix('Value error, ')}"
        line = lines.get(name, 2 if err["type"] == "missing" else None)
        entry = re.search(r"entry (\d+)", message)
        if entry is not None:
            line = item_lines(front).get((name, int(entry.group(1)) - 1), line)
        raise RunbookError(path, message, line) from None


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    """CommonMark plus tables; ``html: False`` makes raw HTML in a runbook plain text."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.core.ruler.push("checklists", _checklists)
    return md


def _headings(tokens: Sequence[Token]) -> Iterator[tuple[str, int, int]]:
    """(text, first line, line after the heading) of each level-2 heading; lines are 0-based."""
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag == "h2" and token.map is not None:
            yield tokens[index + 1].content.strip(), token.map[0], token.map[1]


def _sections(
    body: str, path: Path, first_line: int, *, headings: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The body's sections; ``headings`` (a translation's: names in its language too) lets sections be
    left out (the English ones stand in for them)."""
    lines = body.splitlines()
    found: list[tuple[str, int, int]] = []
    for text, start, end in _headings(_markdown().parse(body)):
        line = first_line + start
        name = (headings or _CANONICAL).get(text.casefold())
        if name is None:
            raise RunbookError(
                path,
                f"unknown section '## {text}'; the sections are, in order: {', '.join(SECTIONS)} "
                "(use '###' for sub-headings)",
                line,
            )
        if any(name == seen for seen, _, _ in found):
            raise RunbookError(path, f"section '{name}' appears twice", line)
        if found and SECTIONS.index(name) < SECTIONS.index(found[-1][0]):
            raise RunbookError(
                path,
                f"section '{name}' comes after '{found[-1][0]}'; the order is: {', '.join(SECTIONS)}",
                line,
            )
        found.append((name, start, end))
    before = "\n".join(lines[: found[0][1]] if found else lines).strip()
    if before:
        offset = next(i for i, text in enumerate(lines) if text.strip())
        raise RunbookError(
            path,
            "text before the first section: start the body with '## What this means'",
            first_line + offset,
        )
    missing = [name for name in SECTIONS if name not in {seen for seen, _, _ in found}]
    if missing and headings is None:
        where = [
            f"'{m}'" + (f" (after '{SECTIONS[SECTIONS.index(m) - 1]}')" if m != SECTIONS[0] else "")
            for m in missing
        ]
        raise RunbookError(path, f"missing section(s): {', '.join(where)}")
    sections: dict[str, str] = {}
    for index, (name, start, end) in enumerate(found):
        stop = found[index + 1][1] if index + 1 < len(found) else len(lines)
        content = "\n".join(lines[end:stop]).strip()
        if not content:
            raise RunbookError(path, f"section '{name}' is empty", first_line + start)
        sections[name] = content
    return sections


def parse_runbook(text: str, path: Path, *, expected_id: str | None = None) -> Runbook:
    """One runbook from its file's text; ``expected_id`` (the file name's stem) must equal its ``id``."""
    front, body, first_line = _split_front_matter(text, path)
    meta = _front_matter(front, path)
    if expected_id is not None and meta.id != expected_id:
        raise RunbookError(
            path,
            f"field 'id': '{meta.id}' differs from the file name; name the file {meta.id}.md",
            _key_lines(front).get("id"),
        )
    sections = _sections(body, path, first_line)
    return Runbook(
        id=meta.id,
        title=meta.title,
        applies_to=tuple(m.text for m in meta.applies_to),
        severity=meta.severity,
        owner=meta.owner,
        escalation=meta.escalation.levels,
        body_markdown=body.strip() + "\n",
        sections=sections,
        path=path,
        matchers=meta.applies_to,
        vendor_contact=meta.escalation.vendor_contact,
        diagnostics=meta.diagnostics,
        verification=meta.verification,
        front_matter=front,
    )


def _read(file: Traversable | Path, path: Path) -> Runbook:
    try:
        text = file.read_text(encoding="utf-8-sig")  # tolerate a BOM from Windows editors
    except (OSError, UnicodeDecodeError) as exc:
        raise RunbookError(path, f"cannot read: {exc}") from None
    return parse_runbook(text, path, expected_id=file.name.removesuffix(".md"))


def _add(found: dict[str, Runbook], runbook: Runbook) -> None:
    if runbook.id in found:
        raise RunbookError(
            runbook.path, f"runbook id '{runbook.id}' is also defined by {found[runbook.id].path}"
        )
    found[runbook.id] = runbook


# --- loading ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def shipped_runbooks() -> dict[str, Runbook]:
    """The runbooks the product ships (the ``runbooks`` package), parsed once per process."""
    folder = resources.files(SHIPPED_PACKAGE)
    found: dict[str, Runbook] = {}
    for file in sorted(folder.iterdir(), key=lambda f: f.name):
        if file.is_file() and is_runbook_file(file.name):
            _add(found, _read(file, Path(str(file))))
    return found


def _user_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.md") if p.is_file() and is_runbook_file(p.name))


def is_runbook_file(name: str) -> bool:
    """A runbook's file, not a README or a translation (``<id>.zh-CN.md``)."""
    return name.endswith(".md") and name.lower() not in _SKIPPED_FILES and not _TRANSLATION.match(name)


@lru_cache(maxsize=8)
def _load_directory(directory: Path, _signature: tuple[tuple[str, int, int], ...]) -> dict[str, Runbook]:
    found: dict[str, Runbook] = {}
    for file in _user_files(directory):
        _add(found, _read(file, file))
    return found


def load_runbooks(extra_dir: Path | None = None) -> dict[str, Runbook]:
    """Runbooks by id: the shipped ones, then those of ``extra_dir`` (recursively), which win on equal ids.

    Shipped runbooks are parsed once; a user directory is re-read when one of its files changes.
    """
    runbooks = dict(shipped_runbooks())
    if extra_dir is not None:
        if not extra_dir.is_dir():
            raise RunbookError(extra_dir, "runbook directory not found")
        files = _user_files(extra_dir)
        signature = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
        runbooks.update(_load_directory(extra_dir.resolve(), signature))
    return runbooks


# --- translations ----------------------------------------------------------------------------------------

_TRANSLATION = re.compile(r"^(?P<id>.+)\.(?P<tag>[a-z]{2}-[A-Z]{2})\.md$")
TRANSLATION_TAGS: dict[str, tuple[str, ...]] = {"zh_CN": ("zh-CN",), "zh_TW": ("zh-TW", "zh-CN")}
"""The sibling files a reader of each language is shown, best first (a Traditional Chinese reader reads
the Simplified translation rather than the English original when there is no Traditional one)."""


def translated(runbook: Runbook, language: str) -> Runbook:
    """``runbook`` as a reader of ``language`` (``zh_CN``, ``zh_TW``) reads it: the title and the sections
    of its sibling ``<id>.<zh-CN|zh-TW>.md`` where there is one, the English runbook's for the rest.
    Diagnostics, verification, escalation and ``applies_to`` are the English file's (one source of truth).

    A translation is front matter with ``id`` and ``title`` only, then any of the sections, headed by the
    English name or its translation (``## 含义`` or ``## What this means``), in the usual order. Checklist
    steps keep their keys (n-th item of a section), so a step ticked in one language is ticked in all."""
    for tag in TRANSLATION_TAGS.get(language, ()):
        sibling = runbook.path.with_name(f"{runbook.id}.{tag}.md")
        if sibling.is_file():
            stat = sibling.stat()
            title, sections = read_translation(sibling, runbook.id, (stat.st_mtime_ns, stat.st_size))
            merged = {name: sections.get(name, text) for name, text in runbook.sections.items()}
            return replace(runbook, title=title, sections=merged)
    return runbook


@lru_cache(maxsize=256)
def read_translation(
    path: Path, runbook_id: str, _signature: tuple[int, int] = (0, 0)
) -> tuple[str, dict[str, str]]:
    """(title, sections) of a runbook's translation; RunbookError naming the file and line otherwise."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunbookError(path, f"cannot read: {exc}") from None
    front, body, first_line = _split_front_matter(text, path)
    try:
        data = yaml.safe_load(front)
    except yaml.YAMLError as exc:
        raise RunbookError(path, f"front matter is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("title"), str) or not data["title"].strip():
        raise RunbookError(path, "a translation's front matter needs 'title' (and may repeat 'id')", 1)
    extra = sorted(set(data) - {"id", "title"})
    if extra:
        raise RunbookError(
            path, f"a translation's front matter holds only id and title, not {', '.join(extra)}"
        )
    if data.get("id", runbook_id) != runbook_id:
        raise RunbookError(path, f"field 'id': '{data['id']}' is not the runbook's id '{runbook_id}'")
    return data["title"].strip(), _sections(body, path, first_line, headings=_translated_headings())


@lru_cache(maxsize=1)
def _translated_headings() -> dict[str, str]:
    """Section headings a translation may use -> the section: the English names and their translations."""
    names = dict(_CANONICAL)
    for language in LANGUAGES:
        catalog = translations(language)
        names.update({catalog.gettext(name).casefold(): name for name in SECTIONS})
    return names


def find_runbooks(name: str, runbooks: dict[str, Runbook]) -> list[Runbook]:
    """The runbooks whose ``applies_to`` matches ``name`` (a check id, alert name or category), by id."""
    return [runbooks[key] for key in sorted(runbooks) if runbooks[key].applies(name)]


def best_runbook(subject: Subject, runbooks: Mapping[str, Runbook], linked: str | None = None) -> str | None:
    """The runbook a ticket should carry: the one already linked (named by its check) while it applies to
    the ticket and none is more specific; otherwise the most specific match (ties by id)."""
    scored = sorted(
        ((rb.match_score(subject), key) for key, rb in runbooks.items()), key=lambda p: (-p[0], p[1])
    )
    best = next(((score, key) for score, key in scored if score > 0), None)
    current = runbooks.get(linked) if linked else None
    if current is not None:
        mine = current.match_score(subject)
        if mine > 0 and (best is None or mine >= best[0] or not _conditional(runbooks[best[1]], subject)):
            return current.id
    return best[1] if best else linked


def _conditional(runbook: Runbook, subject: Subject) -> bool:
    """Whether the runbook matches ``subject`` through a condition on labels or evidence."""
    return any(m.matches(subject) and (m.labels or m.evidence) for m in runbook.matchers)


# --- rendering -------------------------------------------------------------------------------------------

_CHECKBOX = re.compile(r"^\[([ xX])\]\s+")


def _checklists(state: StateCore) -> None:
    """``- [ ] step`` / ``- [x] step`` list items -> a disabled checkbox before the step."""
    tokens = state.tokens
    for index in range(len(tokens) - 2):
        item, inline = tokens[index], tokens[index + 2]
        if item.type != "list_item_open" or tokens[index + 1].type != "paragraph_open":
            continue
        if inline.type != "inline" or not inline.children or inline.children[0].type != "text":
            continue
        first = inline.children[0]
        match = _CHECKBOX.match(first.content)
        if match is None:
            continue
        first.content = first.content[match.end() :]
        checked = " checked" if match.group(1) in "xX" else ""
        box = Token("html_inline", "", 0)
        box.content = f'<input type="checkbox" disabled{checked}> '  # our markup, not the runbook's
        inline.children.insert(0, box)
        item.attrSet("class", "task")


@lru_cache(maxsize=512)
def markdown_html(markdown: str) -> Markup:
    """Markdown -> safe HTML: raw HTML in the source is escaped, unsafe link schemes are dropped."""
    return Markup(_markdown().render(markdown))  # noqa: S704 - markdown-it output with html disabled


def render_html(runbook: Runbook) -> Markup:
    """The whole body as HTML."""
    return markdown_html(runbook.body_markdown)


def render_sections(runbook: Runbook) -> list[tuple[str, Markup]]:
    """(section title, its HTML) in order, for a page that shows each section on its own."""
    return [(name, markdown_html(text)) for name, text in runbook.sections.items()]
