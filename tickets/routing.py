"""Routing: ordered rules send a new ticket to a queue (team) and optionally an assignee; the runbook is
linked by the runbooks' ``applies_to`` when the event names none.

Rules come from ``routing.rules`` then the YAML list in ``routing.rules_file``. They are tried in order;
the first match decides, unless it says ``continue: true``, in which case later matching rules are tried
too and override what they set. A rule without matchers matches everything (a catch-all at the end).
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import TypeAdapter, ValidationError

from core.errors import ConfigError
from runbooks.library import find_runbooks, load_runbooks
from tickets.settings import RoutingMatch, RoutingRule, TicketsConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Route:
    queue: str | None
    assignee: str | None
    rules: tuple[int, ...]
    """Indexes of the rules that matched (for the audit trail)."""


def load_rules(settings: TicketsConfig) -> tuple[RoutingRule, ...]:
    """Inline rules, then those of ``routing.rules_file``; a bad file is a :class:`ConfigError`."""
    rules = settings.routing.rules
    path = settings.routing.rules_file
    if path is None:
        return rules
    return rules + _read_rules(path)


def _read_rules(path: Path) -> tuple[RoutingRule, ...]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the routing rules ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from None
    if data is None:
        return ()
    try:
        return TypeAdapter(tuple[RoutingRule, ...]).validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: rule {where}: {first['msg']}") from None


def rule_matches(
    match: RoutingMatch, *, labels: dict[str, str], category: str, source: str, check_id: str | None
) -> bool:
    if any(labels.get(key) != value for key, value in match.labels.items()):
        return False
    if match.category is not None and match.category != category:
        return False
    if match.source is not None and match.source != source:
        return False
    return match.check is None or (check_id is not None and fnmatch.fnmatchcase(check_id, match.check))


def route(
    rules: tuple[RoutingRule, ...],
    *,
    labels: dict[str, str],
    category: str,
    source: str,
    check_id: str | None,
) -> Route:
    queue: str | None = None
    assignee: str | None = None
    matched: list[int] = []
    for index, rule in enumerate(rules):
        if not rule_matches(rule.match, labels=labels, category=category, source=source, check_id=check_id):
            continue
        matched.append(index)
        queue = rule.queue or queue
        assignee = rule.assignee or assignee
        if not rule.continue_:
            break
    return Route(queue=queue, assignee=assignee, rules=tuple(matched))


def runbook_for(settings: TicketsConfig, *, check_id: str | None, category: str) -> str | None:
    """The runbook whose ``applies_to`` matches the check id, else the category (first by id)."""
    runbooks = load_runbooks(settings.runbooks_dir)
    for name in (check_id, category):
        if name:
            found = find_runbooks(name, runbooks)
            if found:
                return found[0].id
    return None
