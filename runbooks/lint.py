"""``hypercare runbooks lint``: every runbook well-formed, every check and built-in signal covered, every
diagnostic read-only with parameters the event carries.

Problems are :class:`LintProblem` s, each ``<file>:<line>: <what is wrong>``; the lint goes on after one so a
single run lists them all. What it checks, beyond what loading a runbook checks (front matter, sections):

- every ``applies_to`` check id or pattern names something that exists: a check of a shipped pack or of the
  configured check files, a built-in signal (``host.*``, ``db.*``, ``probe.*``, ``integration.<name>.*``,
  ``job.<name>.*``, ``collector.*``), an exception kind (``collector-error``, ``source-down``) or an
  Alertmanager alert (``alertmanager.<alertname>``);
- every shipped check (all packs) and every built-in technical signal has a runbook;
- every diagnostic's SQL is one SELECT (or WITH ... SELECT) on the read-only allow-list
  (:mod:`monitor.readonly`: nothing that could write, lock or reach outside), its ``:params`` are
  declared, and each parameter's ``entity.<key>`` / ``evidence.<path>`` is something the events of the
  runbook's checks carry;
- ``verification.check`` is ``ticket`` or an existing check.
"""
# size: one rule per runbook problem, each with its file:line message

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import sqlglot
from sqlalchemy import text
from sqlalchemy.exc import ArgumentError
from sqlglot import exp
from sqlglot.errors import ParseError

from monitor import check_ids
from monitor.checks import CheckSpec, load_pack, shipped_packs
from monitor.collectors.catalog import METRIC_HELP
from monitor.readonly import query_refusal
from monitor.volumes import VolumeSpec, load_volumes
from runbooks.library import (
    SHIPPED_PACKAGE,
    TICKET_FIELDS,
    TRANSLATION_TAGS,
    Diagnostic,
    Runbook,
    RunbookError,
    Subject,
    best_runbook,
    is_runbook_file,
    item_lines,
    parse_runbook,
    read_translation,
)
from runbooks.steps import checklist


def read_only_problem(sql: str) -> str | None:
    """Why ``sql`` is not a single read-only query; None when it is one on the read-only allow-list
    (:mod:`monitor.readonly`, the judge of checks and dual-run queries too), in every engine's reading."""
    problem = query_refusal(sql)
    return None if problem is None else f"SQL {problem}"


def output_columns(sql: str) -> set[str] | None:
    """The names of the columns a SELECT returns; None when they cannot be known (``*``, no parse)."""
    try:
        statement = sqlglot.parse_one(sql, read="postgres")
    except ParseError:
        return None
    if not isinstance(statement, exp.Query):
        return None
    names = statement.named_selects
    if not names or any(not n or n == "*" for n in names):
        return None
    return {n.lower() for n in names}


def bind_names(sql: str) -> set[str]:
    """The ``:name`` parameters of a query, as SQLAlchemy's ``text()`` sees them."""
    try:
        return set(text(sql).compile().params)
    except ArgumentError:
        return set()


# --- what events carry ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventShape:
    """What an event of one check carries: its entity keys and the paths of its evidence."""

    entity: frozenset[str]
    evidence: frozenset[str]
    """Dotted paths (``row.problem``); ``row.*`` allows any column of the row."""
    labels: frozenset[str] = frozenset()

    def has(self, ref: str) -> bool:
        root, _, rest = ref.partition(".")
        if root == "ticket":
            return rest in TICKET_FIELDS
        if root == "entity":
            return rest in self.entity
        if root == "labels":
            return rest in self.labels or "*" in self.labels
        return rest in self.evidence or any(
            p.endswith(".*") and rest.startswith(p[:-1]) for p in self.evidence
        )


_RESULT_EVIDENCE = ("violations", "measured_value")
_COLLECTOR_KEYS = ("metric", "mount", "process", "integration", "job")


def _row_shape(entity: Iterable[str], row: Iterable[str] | None) -> EventShape:
    paths = {f"row.{c}" for c in row} if row is not None else {"row.*"}
    return EventShape(frozenset(entity), frozenset({*paths, *_RESULT_EVIDENCE}), frozenset({"owner"}))


def _collector(row: Iterable[str], entity: Iterable[str]) -> EventShape:
    return _row_shape(entity, row)


@dataclass(frozen=True, slots=True)
class Signal:
    """A built-in technical signal: what its tickets look like, and the shape of its events."""

    name: str
    subject: Subject
    shape: EventShape


def _subject(check_id: str | None, evidence: Mapping[str, object] | None = None, **labels: str) -> Subject:
    return Subject(check_id, "technical", labels, dict(evidence or {}))


def _probe(problem: str) -> Subject:
    return _subject(check_ids.probe("example"), {"row": {"problem": problem}})


_PROBE_ROW = ("url_path", "status_code", "latency_s", "tls_expires_at", "problem")
_ERROR = EventShape(frozenset(), frozenset({"error"}), frozenset({"kind"}))
_METRIC = EventShape(
    frozenset({"series"}),
    frozenset({"score", "peak_score", "detector", "value", "expected", "sigma", "explanation"}),
    frozenset({"kind", "series", "detector"}),
)
BUILTIN_SIGNALS: tuple[Signal, ...] = (
    Signal("host CPU", _subject(None, kind="metric", series="hypercare_host_cpu_usage_ratio"), _METRIC),
    Signal(
        "host memory",
        _subject(check_ids.host("memory")),
        _collector(("metric", "usage_ratio", "available_bytes"), ("metric",)),
    ),
    Signal(
        "host disk",
        _subject(check_ids.host("disk_usage")),
        _collector(("mount", "usage_ratio", "free_bytes", "problem"), ("mount",)),
    ),
    Signal(
        "host process", _subject(check_ids.host("process")), _collector(("process", "problem"), ("process",))
    ),
    Signal("HTTP probe down", _probe("HTTP 503, expected 200"), _row_shape((), _PROBE_ROW)),
    Signal(
        "HTTP probe unreachable",
        _probe("ConnectError: [Errno 111] Connection refused"),
        _row_shape((), _PROBE_ROW),
    ),
    Signal("HTTP probe slow", _probe("answered in 2.40s, limit 2.00s"), _row_shape((), _PROBE_ROW)),
    Signal(
        "HTTP probe TLS expiry",
        _probe("TLS certificate expires in 3.0 days (2026-12-04)"),
        _row_shape((), _PROBE_ROW),
    ),
    Signal(
        "db connections",
        _subject(check_ids.db("connections")),
        _collector(("metric", "connections", "max_connections"), ("metric",)),
    ),
    Signal(
        "db long queries",
        _subject(check_ids.db("long_queries")),
        _collector(("metric", "long_running", "oldest_query_age_s"), ("metric",)),
    ),
    Signal(
        "db idle in transaction",
        _subject(check_ids.db("idle_in_transaction")),
        _collector(("metric", "sessions"), ("metric",)),
    ),
    Signal(
        "db lock waits",
        _subject(check_ids.db("lock_waits")),
        _collector(("metric", "waiting", "blocking"), ("metric",)),
    ),
    Signal(
        "db cache hit ratio",
        _subject(check_ids.db("cache_hit_ratio")),
        _collector(("metric", "cache_hit_ratio"), ("metric",)),
    ),
    Signal(
        "db replication lag",
        _subject(check_ids.db("replication_lag")),
        _collector(("metric", "lag_s"), ("metric",)),
    ),
    Signal(
        "integration backlog",
        _subject(check_ids.integration("example", "backlog")),
        _collector(("integration", "backlog"), ("integration",)),
    ),
    Signal(
        "integration oldest age",
        _subject(check_ids.integration("example", "oldest_age")),
        _collector(("integration", "oldest_age_s", "oldest_at"), ("integration",)),
    ),
    Signal(
        "integration failed",
        _subject(check_ids.integration("example", "failed")),
        _collector(("integration", "failed", "window_s"), ("integration",)),
    ),
    Signal(
        "job stale",
        Subject(check_ids.job("example", "stale"), "process", {}, {}),
        _collector(("job", "last_started_at", "expected_interval_s"), ("job",)),
    ),
    Signal(
        "job failed",
        Subject(check_ids.job("example", "failed"), "process", {}, {}),
        _collector(("job", "status", "started_at"), ("job",)),
    ),
    Signal(
        "job duration",
        Subject(check_ids.job("example", "duration"), "process", {}, {}),
        _collector(("job", "duration_s", "median_s", "running"), ("job",)),
    ),
    Signal("collector error", _subject(check_ids.collector("db_health"), kind="collector-error"), _ERROR),
    Signal("check could not run", _subject("gl.unbalanced_entries", kind="collector-error"), _ERROR),
    Signal(
        "source down",
        _subject(None, kind="source-down"),
        EventShape(frozenset(), frozenset({"error", "next_retry_at"}), frozenset({"kind"})),
    ),
)
DUALRUN_SHAPE = EventShape(
    frozenset({"period"}),
    frozenset(
        {
            *("comparison", "legacy_source", "new_source", "period", "as_of", "matched", "changed"),
            *("missing_in_new", "extra_in_new", "match_rate", "money_affected", "materiality"),
            *("classification.*", "differences.*", "totals.*", "not_shown"),
        }
    ),
    frozenset({"kind", "comparison", "entity", "classification"}),
)
"""What a dual-run difference event carries (anomaly/dualrun.py): ``entity.period`` only for an
entity compared by period; ``differences.<n>.key|column|legacy|new`` and ``totals.<n>.group|measure|...``."""
KINDS = frozenset({"collector-error", "source-down", "metric"})
"""Exception kinds (the ``kind`` label) a runbook may name in ``applies_to`` like a check id."""


def check_shape(spec: CheckSpec) -> EventShape:
    if spec.kind == "query":
        return _row_shape(spec.key_columns, output_columns(spec.sql))
    return _row_shape(spec.key_columns, None)


def _signal_shape(check_id: str) -> EventShape | None:
    if check_ids.kind(check_id) == check_ids.DUALRUN:
        return DUALRUN_SHAPE
    family = check_ids.family(check_id)  # integration.example.backlog stands for integration.<any>.backlog
    for signal in BUILTIN_SIGNALS:
        if signal.subject.check_id and check_ids.family(signal.subject.check_id) == family:
            return signal.shape
    return None


# --- the lint ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LintProblem:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


@dataclass
class LintReport:
    runbooks: dict[str, Runbook] = field(default_factory=dict)
    problems: list[LintProblem] = field(default_factory=list)
    checks: int = 0
    watches: int = 0
    """Volume watches covered (``volumes:`` of the packs)."""
    signals: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def shipped_files() -> list[Path]:
    folder = resources.files(SHIPPED_PACKAGE)
    names = sorted(f.name for f in folder.iterdir() if is_runbook_file(f.name))
    return [Path(str(folder / name)) for name in names]


def _files(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.rglob("*.md") if p.is_file() and is_runbook_file(p.name))
        else:
            out.append(path)
    return out


def _parse(path: Path, report: LintReport) -> Runbook | None:
    try:
        text_ = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        report.problems.append(LintProblem(str(path), None, f"cannot read: {exc}"))
        return None
    try:
        return parse_runbook(text_, path, expected_id=path.name.removesuffix(".md"))
    except RunbookError as exc:
        report.problems.append(LintProblem(exc.path, exc.line, exc.problem))
        return None


def lint(
    paths: Iterable[Path] = (),
    *,
    checks: Iterable[CheckSpec] | None = None,
    volumes: Iterable[VolumeSpec] | None = None,
    include_shipped: bool = True,
) -> LintReport:
    """Lint the shipped runbooks overlaid by those under ``paths`` (a user file replaces the shipped one of
    the same id). ``checks``: the checks to cover besides every shipped pack's (the configured files)."""
    report = LintReport()
    loaded: dict[str, Runbook] = {}
    if include_shipped:
        for path in shipped_files():
            runbook = _parse(path, report)
            if runbook is not None:
                loaded[runbook.id] = runbook
    seen: dict[str, Path] = {}
    for path in _files(paths):
        runbook = _parse(path, report)
        if runbook is None:
            continue
        if runbook.id in seen and seen[runbook.id] != path:
            report.problems.append(
                LintProblem(
                    str(path), None, f"runbook id '{runbook.id}' is also defined by {seen[runbook.id]}"
                )
            )
        seen[runbook.id] = path
        loaded[runbook.id] = runbook
    report.runbooks = loaded
    specs = {spec.id: spec for pack in shipped_packs() for spec in load_pack(pack)}
    for spec in checks or ():
        specs[spec.id] = spec
    watches = {w.id: w for w in load_volumes(shipped_packs())}
    for watch in volumes or ():
        watches[watch.id] = watch
    for runbook in loaded.values():
        _lint_runbook(runbook, specs, report, frozenset(watches))
        _lint_translations(runbook, report)
    _coverage(loaded, specs, report)
    _watch_coverage(loaded, watches, report)
    return report


def _lint_translations(runbook: Runbook, report: LintReport) -> None:
    """Each ``<id>.<zh-CN|zh-TW>.md`` beside the runbook reads (title, known sections) and keeps the
    checklist of each section it translates: as many steps, so a tick means the same step in every
    language."""
    for tag in sorted({tag for tags in TRANSLATION_TAGS.values() for tag in tags}):
        sibling = runbook.path.with_name(f"{runbook.id}.{tag}.md")
        if not sibling.is_file():
            continue
        try:
            stat = sibling.stat()
            _, sections = read_translation(sibling, runbook.id, (stat.st_mtime_ns, stat.st_size))
        except RunbookError as exc:
            report.problems.append(LintProblem(exc.path, exc.line, exc.problem))
            continue
        for name, markdown in sections.items():
            want, got = len(checklist(runbook.sections[name])), len(checklist(markdown))
            if want != got:
                problem = f"section '{name}' has {got} checklist step(s); the English runbook has {want}"
                report.problems.append(LintProblem(str(sibling), None, problem))


def _watch_coverage(
    runbooks: Mapping[str, Runbook], watches: Mapping[str, VolumeSpec], report: LintReport
) -> None:
    """Every volume watch names a runbook that exists and applies to the watch."""
    for watch in watches.values():
        report.watches += 1
        linked = runbooks.get(watch.runbook)
        if linked is None:
            problem = f"volume watch {watch.id} names runbook '{watch.runbook}', which does not exist"
            report.problems.append(LintProblem(watch.pack or watch.id, None, problem))
        elif not linked.applies(watch.id):
            line = _key_line(linked.front_matter, "applies_to")
            problem = f"applies_to misses {watch.id}, whose volume watch names this runbook"
            report.problems.append(LintProblem(str(linked.path), line, problem))


def _known(name: str, specs: Mapping[str, CheckSpec], watches: frozenset[str] = frozenset()) -> bool:
    """A check id or pattern names a check, a volume watch, a built-in signal, an exception kind or an
    alert."""
    if any(fnmatch.fnmatchcase(w, name) for w in watches):
        return True
    if name.startswith(("alertmanager.", "dualrun.")):  # alert names; dual-run comparisons of the settings
        return True
    if any(fnmatch.fnmatchcase(n, name) for n in specs) or any(fnmatch.fnmatchcase(k, name) for k in KINDS):
        return True
    examples = [s.subject.check_id for s in BUILTIN_SIGNALS if s.subject.check_id]
    examples += [check_ids.host(what) for what in ("disk_usage", "memory", "process")]
    examples += [check_ids.collector("integration", "example"), check_ids.collector("job", "example")]
    if any(fnmatch.fnmatchcase(e, name) for e in examples):
        return True
    return _signal_shape(name) is not None and name.split(".", maxsplit=1)[0] in {
        "integration",
        "job",
        "probe",
        "collector",
    }


def _lint_runbook(
    runbook: Runbook,
    specs: Mapping[str, CheckSpec],
    report: LintReport,
    watches: frozenset[str] = frozenset(),
) -> None:
    path = str(runbook.path)
    lines = item_lines(runbook.front_matter)

    def problem(key: str, index: int | None, message: str) -> None:
        line = lines.get((key, index)) if index is not None else None
        if line is None:
            line = _key_line(runbook.front_matter, key)
        report.problems.append(LintProblem(path, line, message))

    if runbook.vendor_contact is None:
        problem(
            "escalation",
            None,
            "field 'escalation': add vendor_contact (a placeholder until the contract names one)",
        )
    covered: list[str] = []
    for index, matcher in enumerate(runbook.matchers):
        if matcher.check is not None:
            if not _known(matcher.check, specs, watches):
                problem(
                    "applies_to", index, f"applies_to: no check, signal or alert is named '{matcher.check}'"
                )
            covered.append(matcher.check)
        for key, globs in matcher.labels.items():
            if key == "series" and not any(fnmatch.fnmatchcase(m, g) for g in globs for m in METRIC_HELP):
                problem("applies_to", index, f"applies_to: no metric series matches {list(globs)}")
    verify = runbook.verification.check
    if verify != "ticket" and not _known(verify, specs, watches):
        problem("verification", None, f"field 'verification': check '{verify}' does not exist")
    for index, diagnostic in enumerate(runbook.diagnostics):
        for message in _diagnostic_problems(diagnostic, runbook, covered, specs):
            problem("diagnostics", index, f"diagnostic {diagnostic.name}: {message}")


def _key_line(front: str, key: str) -> int | None:
    for number, line in enumerate(front.splitlines(), start=2):
        if line.startswith(f"{key}:"):
            return number
    return None


def _shapes(
    diagnostic: Diagnostic, runbook: Runbook, covered: list[str], specs: Mapping[str, CheckSpec]
) -> list[tuple[str, EventShape]]:
    """(check id, event shape) of each check the diagnostic runs for."""
    shapes: list[tuple[str, EventShape]] = []
    for pattern in covered:
        ids = [i for i in specs if fnmatch.fnmatchcase(i, pattern)] or [pattern]
        for check_id in ids:
            if not diagnostic.runs_for(check_id) and not any(
                fnmatch.fnmatchcase(check_id, g) or fnmatch.fnmatchcase(g, check_id)
                for g in diagnostic.checks
            ):
                continue
            if check_id in specs:
                shapes.append((check_id, check_shape(specs[check_id])))
            elif (shape := _signal_shape(check_id)) is not None:
                shapes.append((check_id, shape))
    if not covered:  # a runbook for labels / kinds only: the built-in signals it serves
        for signal in BUILTIN_SIGNALS:
            if runbook.match_score(signal.subject):
                shapes.append((signal.name, signal.shape))
    return shapes


def _diagnostic_problems(
    diagnostic: Diagnostic, runbook: Runbook, covered: list[str], specs: Mapping[str, CheckSpec]
) -> list[str]:
    found: list[str] = []
    if diagnostic.sql is not None:
        reason = read_only_problem(diagnostic.sql)
        if reason:
            found.append(reason)
        undeclared = sorted(bind_names(diagnostic.sql) - set(diagnostic.params))
        if undeclared:
            found.append(f"SQL uses :{', :'.join(undeclared)} but params does not declare it")
        unused = sorted(set(diagnostic.params) - bind_names(diagnostic.sql))
        if unused:
            found.append(f"params {unused} are not used by the SQL")
    for pattern in diagnostic.checks:
        if not any(fnmatch.fnmatchcase(pattern, c) or fnmatch.fnmatchcase(c, pattern) for c in covered):
            found.append(f"checks: '{pattern}' is not in the runbook's applies_to")
    shapes = _shapes(diagnostic, runbook, covered, specs)
    for name, param in diagnostic.params.items():
        lacking = [check_id for check_id, shape in shapes if not shape.has(param.from_)]
        if lacking:
            which = ", ".join(sorted(set(lacking))[:4])
            found.append(f"parameter {name}: {param.from_} is not in the events of {which}")
    return found


def _coverage(runbooks: Mapping[str, Runbook], specs: Mapping[str, CheckSpec], report: LintReport) -> None:
    for spec in specs.values():
        report.checks += 1
        linked = runbooks.get(spec.runbook) if spec.runbook else None
        subject = Subject(spec.id, spec.category, {}, {})
        if spec.runbook and linked is None:
            report.problems.append(
                LintProblem(
                    spec.pack or spec.id,
                    None,
                    f"check {spec.id} names runbook '{spec.runbook}', which does not exist",
                )
            )
        elif linked is not None and not linked.applies(spec.id):
            report.problems.append(
                LintProblem(
                    str(linked.path),
                    _key_line(linked.front_matter, "applies_to"),
                    f"applies_to misses {spec.id}, whose check names this runbook",
                )
            )
        elif linked is None and best_runbook(subject, runbooks) is None:
            report.problems.append(LintProblem(spec.pack or spec.id, None, f"check {spec.id} has no runbook"))
    for signal in BUILTIN_SIGNALS:
        report.signals += 1
        specific = {
            k: rb
            for k, rb in runbooks.items()
            if any(m.category is None or m.check or m.labels for m in rb.matchers)
        }
        chosen = best_runbook(signal.subject, specific)
        if chosen is None or runbooks[chosen].match_score(signal.subject) <= 1:
            report.problems.append(
                LintProblem("runbooks", None, f"built-in signal '{signal.name}' has no runbook")
            )
