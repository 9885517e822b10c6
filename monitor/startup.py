"""What ``hypercare collect``, ``hypercare serve`` and ``hypercare config check`` verify about the monitored
sources before using them: the configured SQL judged in each source's own dialect, and each source's
database user (:mod:`monitor.privileges`).

When a file loads, its SQL is judged in every engine's reading (:mod:`monitor.readonly`) because a check
file does not say which engine runs it; here the settings say, so each query is judged again in the
dialect of the source it names (a query that only one reading can parse is refused now, not at 3 a.m.).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from core.errors import ConfigError
from monitor.dualrun.config import load_comparison
from monitor.dualrun.model import ComparisonConfig, SideConfig
from monitor.dualrun.normalise import Side
from monitor.privileges import announce, inspect_sources, refuse_privileged
from monitor.readonly import expression_refusal, query_refusal
from monitor.settings import MonitorConfig, SourceSettings
from monitor.specs import CheckSpec

__all__ = ["guard_sources", "sql_problems"]


def _engine(sources: Mapping[str, SourceSettings], name: str) -> str | None:
    source = sources.get(name)
    if source is None:
        return None
    try:
        return make_url(source.url.get_secret_value()).get_backend_name()
    except ArgumentError:
        return None


def _queries(settings: MonitorConfig, checks: Sequence[CheckSpec]) -> Iterator[tuple[str, str, str]]:
    """(where, source, sql) of every configured query that reaches a source."""
    for spec in checks:
        if spec.kind == "query":
            yield f"check {spec.id}", spec.source, spec.sql
        for side_name, side in (("left", spec.left), ("right", spec.right)):
            if side is not None:
                yield f"check {spec.id} {side_name}", side.source, side.sql
    collectors = settings.collectors
    for probe in collectors.integrations:
        for field_, sql in (
            ("backlog_sql", probe.backlog_sql),
            ("oldest_sql", probe.oldest_sql),
            ("failed_sql", probe.failed_sql),
        ):
            if sql is not None:
                yield f"integration {probe.name} {field_}", probe.source, sql
    for job in collectors.jobs:
        yield f"job {job.name} sql", job.source, job.sql
    for trace in collectors.trace:
        yield f"trace {trace.name} sql", trace.source, trace.sql


def _side_problems(where: str, side: SideConfig, engine: str) -> Iterator[str]:
    if side.query is not None and (problem := query_refusal(side.query, engine)):
        yield f"{where}.query: {problem}"
    if side.filter is not None and (problem := expression_refusal(side.filter, engine)):
        yield f"{where}.filter: {problem}"


def _comparison_problems(
    origin: str, config: ComparisonConfig, sources: Mapping[str, SourceSettings]
) -> list[str]:
    found: list[str] = []
    roles: tuple[tuple[Side, str], ...] = (("legacy", config.legacy), ("new", config.new))
    for role, source in roles:
        engine = _engine(sources, source)
        if engine is None:
            continue
        for entity in config.entities:
            where = f"{origin}: entity {entity.name}: {role}"
            sides = [(where, entity.legacy if role == "legacy" else entity.new)]
            sides += [
                (f"{where} lines {line.name}", line.legacy if role == "legacy" else line.new)
                for line in entity.lines
            ]
            for label, side in sides:
                found += _side_problems(label, side, engine)
            columns = [*entity.key, *entity.columns, *entity.group_by]
            columns += [c for line in entity.lines for c in (*line.parent, *line.key, *line.columns)]
            for column in columns:
                text = column.side(role)
                if not column.is_identifier(text) and (problem := expression_refusal(text, engine)):
                    found.append(f"{where} column {column.name}: {problem}")
            for measure in entity.measures:
                if problem := expression_refusal(measure.side(role), engine):
                    found.append(f"{where} measure {measure.name}: {problem}")
    return found


def sql_problems(
    settings: MonitorConfig, checks: Sequence[CheckSpec], comparisons: Iterable[Path] = ()
) -> list[str]:
    """Every configured query, filter and expression the read-only allow-list refuses in the dialect of
    the source it runs on, one line each (``check gl.x on erp (postgresql): must only read: ...``).

    A comparison file that does not load is reported with its own error."""
    found: list[str] = []
    for where, source, sql in _queries(settings, checks):
        engine = _engine(settings.sources, source)
        if engine is not None and (problem := query_refusal(sql, engine)):
            found.append(f"{where} on {source} ({engine}): {problem}")
    for path in comparisons:
        try:
            config = load_comparison(path)
        except ConfigError as exc:
            found.append(str(exc))
            continue
        found += _comparison_problems(str(path), config, settings.sources)
    return found


def guard_sources(settings: MonitorConfig, names: Iterable[str] | None = None) -> list[str]:
    """Start-up: inspect the sources' users; refuse (:class:`ConfigError`) one that may do more than read
    unless its settings allow it; log a warning for each allowed one and each that could not be inspected
    (down at start-up: its queries still run read-only, and ``hypercare config check`` inspects it later).
    Returns the lines ``/readyz`` shows: the sources running with a privileged user, knowingly."""
    reports = inspect_sources(settings.sources, names)
    refuse_privileged(reports)
    return announce(reports)
