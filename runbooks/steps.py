"""A runbook's checklist: its ``- [ ] step`` items, each with a stable key, rendered as buttons an agent
ticks on the ticket page.

A step's key is ``<section-slug>-<n>`` (``first-15-minutes-2``, ``fix-1``): the n-th checklist item of the
section, counted in document order. The key and the step's text are what the tick stores and what the
audit trail shows.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from runbooks.library import Runbook, RunbookError, load_runbooks
from runbooks.models import RunbookStep
from tickets.service import TicketService

_CHECKBOX = re.compile(r"^\[([ xX])\]\s+")


@dataclass(frozen=True, slots=True)
class Step:
    key: str
    section: str
    text: str


def slug(section: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", section.casefold()).strip("-")


def _items(tokens: list[Token]) -> list[tuple[Token, Token, str]]:
    """(list_item_open, its inline token, the step's text) of each checklist item, in order."""
    found: list[tuple[Token, Token, str]] = []
    for index in range(len(tokens) - 2):
        item, inline = tokens[index], tokens[index + 2]
        if item.type != "list_item_open" or tokens[index + 1].type != "paragraph_open":
            continue
        if inline.type != "inline" or not inline.children or inline.children[0].type != "text":
            continue
        match = _CHECKBOX.match(inline.children[0].content)
        if match is None:
            continue
        text = " ".join(inline.content[match.end() :].split())
        found.append((item, inline, text))
    return found


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("table")


@lru_cache(maxsize=1)
def _interactive() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.core.ruler.push("step_buttons", _step_buttons)
    return md


def checklist(markdown: str) -> list[str]:
    """The text of each checklist item (``- [ ] ...``) of one section's Markdown, in order."""
    return [text for _, _, text in _items(_parser().parse(markdown))]


def steps(runbook: Runbook) -> list[Step]:
    """Every checklist item of the runbook, section by section."""
    out: list[Step] = []
    for section, markdown in runbook.sections.items():
        for n, (_, _, text) in enumerate(_items(_parser().parse(markdown)), start=1):
            out.append(Step(f"{slug(section)}-{n}", section, text))
    return out


def _step_buttons(state: StateCore) -> None:
    """Checklist items -> a submit button of the page's step form (``form=`` attribute, so the button
    works from inside the rendered Markdown), pressed when the step is done."""
    env: Mapping[str, Any] = state.env
    done: Collection[str] = env.get("done", ())
    for n, (item, inline, text) in enumerate(_items(state.tokens), start=1):
        first = (inline.children or [Token("text", "", 0)])[0]  # _items checked there is one
        first.content = _CHECKBOX.sub("", first.content, count=1)
        key = f"{env['section']}-{n}"
        pressed = key in done
        label = ("Untick" if pressed else "Tick") + f" step: {text}"
        button = Token("html_inline", "", 0)
        button.content = (  # our markup: the step text is escaped, the key is [a-z0-9-]
            f'<button type="submit" form="{env["form"]}" name="step" value="{key}" '
            f'class="step-box" aria-pressed="{"true" if pressed else "false"}" '
            f'aria-label="{escape(label)}">{"☑" if pressed else "☐"}</button> '
        )
        if inline.children is not None:
            inline.children.insert(0, button)
        item.attrSet("class", "task done" if pressed else "task")


def render_checklist_section(section: str, markdown: str, done: Collection[str], form: str) -> Markup:
    """One section's HTML with its checklist items as step buttons (raw HTML in the runbook escaped)."""
    html = _interactive().render(markdown, {"section": slug(section), "done": done, "form": form})
    return Markup(html)  # noqa: S704 - markdown-it output with html disabled; buttons are ours


# --- ticking -------------------------------------------------------------------------------------------


class UnknownStep(ValueError):
    pass


def done_steps(session: Session, ticket_id: int, runbook_id: str) -> set[str]:
    return set(
        session.scalars(
            select(RunbookStep.step).where(
                RunbookStep.ticket_id == ticket_id,
                RunbookStep.runbook_id == runbook_id,
                RunbookStep.done.is_(True),
            )
        )
    )


def toggle_step(service: TicketService, ticket_id: int, step_key: str, actor: str) -> tuple[Step, bool]:
    """Tick (or untick) one checklist step of the ticket's runbook; audited as ``runbook_step``.

    Raises :class:`UnknownStep` when the ticket's runbook has no such step."""
    session = service.session
    ticket = service.locked(ticket_id)
    try:
        runbook = load_runbooks(service.settings.runbooks_dir).get(ticket.runbook_id or "")
    except RunbookError as exc:
        raise UnknownStep(f"the runbook cannot be loaded: {exc}") from None
    if runbook is None:
        raise UnknownStep(f"ticket #{ticket_id} has no runbook")
    step = next((s for s in steps(runbook) if s.key == step_key), None)
    if step is None:
        raise UnknownStep(f"runbook {runbook.id} has no step '{step_key}'")
    now = service.now()
    row = session.scalars(
        select(RunbookStep).where(
            RunbookStep.ticket_id == ticket_id,
            RunbookStep.runbook_id == runbook.id,
            RunbookStep.step == step.key,
        )
    ).first()
    if row is None:
        row = RunbookStep(
            ticket_id=ticket_id, runbook_id=runbook.id, step=step.key, text=step.text, done=False
        )
        session.add(row)
    row.done = not row.done
    row.by, row.at, row.text = actor[:64], now, step.text
    ticket.updated_at = now
    service.audit(
        ticket,
        actor,
        "step_done" if row.done else "step_undone",
        now,
        runbook_id=runbook.id,
        step=step.key,
        section=step.section,
        text=step.text[:500],
    )
    session.flush()
    return step, row.done
