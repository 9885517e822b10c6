"""Loading a comparison file and resolving its two sources from the settings.

Errors are one line naming the file, the entity and the field: ``dualrun/gl.yaml: entity gl_lines: field
'columns.2.scale': only a decimal column has a scale``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from core.errors import ConfigError
from monitor.dualrun.model import ComparisonConfig
from monitor.dualrun.sql import Source, dualrun_engine
from monitor.settings import MonitorConfig
from monitor.sources import require_read_only_engine

__all__ = ["load_comparison", "parse_comparison", "resolve_sources"]


def _problem(err: Any) -> tuple[str | None, str]:
    """(entity index or None, 'field ...: message') for one pydantic error."""
    loc = [str(p) for p in err["loc"]]
    message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
    message = message.removeprefix("Value error, ")
    entity = None
    if len(loc) >= 2 and loc[0] == "entities":
        entity, loc = loc[1], loc[2:]
    if err["type"] == "value_error":  # a model-level rule: its message starts with the field it is about
        field_, _, rest = message.partition(": ")
        if rest and " " not in field_:
            loc, message = [*loc, field_.split("/")[0]], rest
    where = ".".join(loc)
    return entity, (f"field '{where}': {message}" if where else message)


def parse_comparison(text: str, origin: str) -> ComparisonConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{origin}:{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a comparison (a mapping with name, legacy, new, entities)")
    try:
        return ComparisonConfig.model_validate(data)
    except ValidationError as exc:
        given = data.get("entities")
        raw_entities: list[Any] = given if isinstance(given, list) else []
        lines = []
        for err in exc.errors():
            index, problem = _problem(err)
            if index is not None:
                label = f"#{int(index) + 1}"
                if index.isdigit() and int(index) < len(raw_entities):
                    raw = raw_entities[int(index)]
                    if isinstance(raw, dict) and raw.get("name"):
                        label = str(raw["name"])
                problem = f"entity {label}: {problem}"
            lines.append(problem)
        raise ConfigError(f"{origin}: {'; '.join(lines)}") from None


def load_comparison(path: Path) -> ComparisonConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the comparison file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the comparison file is not UTF-8 text") from None
    return parse_comparison(text, str(path))


def resolve_sources(
    config: ComparisonConfig, settings: MonitorConfig, origin: str = ""
) -> tuple[Source, Source]:
    """The comparison's legacy and new sides, from the sources named in the settings."""
    sides = []
    for role, name in (("legacy", config.legacy), ("new", config.new)):
        source = settings.sources.get(name)
        if source is None:
            known = ", ".join(sorted(settings.sources)) or "none"
            prefix = f"{origin}: " if origin else ""
            raise ConfigError(
                f"{prefix}comparison {config.name}: {role} source '{name}' is not under 'sources:' "
                f"in the settings (known: {known})"
            )
        timeout = config.timeout_s or source.statement_timeout_s
        url = source.url.get_secret_value()
        require_read_only_engine(url, name)  # before any engine: one line naming the source and engine
        try:
            engine = dualrun_engine(url)
        except FileNotFoundError as exc:
            raise ConfigError(f"source '{name}': {exc}") from None
        sides.append(Source(role, name, engine, timeout))  # type: ignore[arg-type]
    return sides[0], sides[1]
