"""Runbooks: Markdown files with YAML front matter, loaded, validated and rendered for the ticket page.

A runbook is ``<id>.md``: front matter between two ``---`` lines (``id``, ``title``, ``applies_to``,
``severity``, ``owner``, ``escalation``), then a body made of exactly the :data:`SECTIONS`, as ``## ``
headings, in that order (``###`` and deeper are free inside a section). The product ships runbooks in the
``runbooks`` package; a user directory adds runbooks and replaces shipped ones of the same id.

Every problem in a file is one :class:`RunbookError` naming the file, the line and the field or section.
Rendering is markdown-it (CommonMark plus tables) with raw HTML disabled: whatever HTML a runbook holds is
shown as text, never interpreted; ``- [ ]`` checklist items become disabled checkboxes.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hypercare.errors import HypercareError

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


class RunbookError(HypercareError, ValueError):
    """A runbook file is wrong; the message reads ``<file>:<line>: <what is wrong>``."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.problem = message
        super().__init__(f"{self.path}:{line}: {message}" if line is not None else f"{self.path}: {message}")


class _FrontMatter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=128)
    title: str = Field(min_length=1, max_length=200)
    applies_to: tuple[str, ...] = Field(min_length=1)
    severity: Literal["P1", "P2", "P3", "P4"]
    owner: str = Field(min_length=1, max_length=64)
    escalation: tuple[str, ...] = Field(min_length=1)

    @field_validator("applies_to", "escalation", mode="before")
    @classmethod
    def _list_of_text(cls, value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError("expected a YAML list, e.g. [a, b]")
        if not all(isinstance(item, str) and item.strip() for item in value):
            raise ValueError("every item must be non-empty text")
        return tuple(item.strip() for item in value)


@dataclass(frozen=True, slots=True)
class Runbook:
    id: str
    title: str
    applies_to: tuple[str, ...]
    """Check ids, alert names or categories this runbook is for; shell-style patterns (``probe.*``)."""
    severity: str
    owner: str
    escalation: tuple[str, ...]
    """Who to hand over to, in order (levels of the support model, then people or the vendor)."""
    body_markdown: str
    sections: dict[str, str] = field(hash=False, compare=False)
    """Section title -> its Markdown (without the heading), in :data:`SECTIONS` order."""
    path: Path

    def applies(self, name: str) -> bool:
        """True when ``name`` (a check id, alert name or category) matches one of ``applies_to``."""
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.applies_to)


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
        data = yaml.safe_load(front)
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
        raise RunbookError(path, message, lines.get(name, 2 if err["type"] == "missing" else None)) from None


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


def _sections(body: str, path: Path, first_line: int) -> dict[str, str]:
    lines = body.splitlines()
    found: list[tuple[str, int, int]] = []
    for text, start, end in _headings(_markdown().parse(body)):
        line = first_line + start
        name = _CANONICAL.get(text.casefold())
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
    if missing:
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
        applies_to=meta.applies_to,
        severity=meta.severity,
        owner=meta.owner,
        escalation=meta.escalation,
        body_markdown=body.strip() + "\n",
        sections=sections,
        path=path,
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
        if file.is_file() and file.name.endswith(".md") and file.name.lower() not in _SKIPPED_FILES:
            _add(found, _read(file, Path(str(file))))
    return found


def _user_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.md") if p.is_file() and p.name.lower() not in _SKIPPED_FILES)


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


def find_runbooks(name: str, runbooks: dict[str, Runbook]) -> list[Runbook]:
    """The runbooks whose ``applies_to`` matches ``name`` (a check id, alert name or category), by id."""
    return [runbooks[key] for key in sorted(runbooks) if runbooks[key].applies(name)]


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
