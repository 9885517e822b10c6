"""`hypercare check ...` and `hypercare collect`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy import Engine

from core.errors import ConfigError, HypercareError
from hypercare.commands.common import JsonOption, console, err_console, print_json, state
from hypercare.config import Settings
from monitor.checks import CheckDefinitionError, CheckSpec, configured_checks, load_checks
from monitor.preflight import unconfigured_sources
from monitor.results import CheckResult, VolumeSeries
from monitor.volumes import VolumeSpec, load_volumes

check_app = typer.Typer(no_args_is_help=True, help="Data-consistency checks.")


def load_configured_checks(settings: Settings, pack: str | None = None) -> list[CheckSpec]:
    try:
        return list(
            load_checks([pack], sample_limit=settings.checks.sample_limit)
            if pack
            else configured_checks(settings)
        )
    except CheckDefinitionError as exc:
        raise HypercareError(str(exc)) from None


def require_known_sources(
    settings: Settings, specs: list[CheckSpec], volumes: list[VolumeSpec] | None = None
) -> None:
    """Refuse, with one line per problem, checks, volume watches and collectors that read a source
    nobody configured."""
    problems = unconfigured_sources(settings, specs, volumes or ())
    if problems:
        raise ConfigError("; ".join(problems))


@check_app.command("list")
def check_list(
    pack: Annotated[str | None, typer.Option(help="Only this shipped pack.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List the configured checks and volume watches."""
    settings = state.settings()
    checks = load_configured_checks(settings, pack)
    watches = load_watches(settings, pack, checks)
    if as_json:
        print_json([_spec_json(spec) for spec in checks] + [_watch_json(w) for w in watches])
        return
    table = Table("id", "severity", "category", "source", "title")
    for spec in checks:
        table.add_row(spec.id, spec.severity, spec.category, spec.source, spec.title)
    console.print(table)
    if watches:
        listed = Table(
            "volume watch", "bucket", "keys", "measures", "source", "runbook", title="Volume watches"
        )
        for w in watches:
            listed.add_row(
                w.id, w.bucket, ", ".join(w.key_columns), ", ".join(w.measures), w.source, w.runbook
            )
        console.print(listed)


def load_watches(settings: Settings, pack: str | None, checks: list[CheckSpec]) -> list[VolumeSpec]:
    """The volume watches of the configured packs and files (or of one pack), ids distinct from checks'."""
    packs, paths = ([pack], ()) if pack else (settings.checks.packs, settings.checks.paths)
    try:
        return load_volumes(packs, paths, [c.id for c in checks])
    except CheckDefinitionError as exc:
        raise HypercareError(str(exc)) from None


def _watch_json(watch: VolumeSpec) -> dict[str, Any]:
    return {
        "id": watch.id,
        "title": watch.title,
        "severity": watch.severity,
        "category": watch.category,
        "kind": "volume",
        "source": watch.source,
        "sources": [watch.source],
        "pack": watch.pack or None,
        "schedule": watch.schedule,
        "runbook": watch.runbook,
        "owner": watch.owner,
        "tags": list(watch.tags),
    }


def _spec_json(spec: CheckSpec) -> dict[str, Any]:
    return {
        "id": spec.id,
        "title": spec.title,
        "severity": spec.severity,
        "category": spec.category,
        "kind": spec.kind,
        "source": spec.source,
        "sources": list(spec.sources),
        "pack": spec.pack or None,
        "schedule": spec.schedule,
        "runbook": spec.runbook,
        "owner": spec.owner,
        "tags": list(spec.tags),
    }


@check_app.command("validate")
def check_validate(
    paths: Annotated[list[Path] | None, typer.Argument(help="Check files or folders.")] = None,
) -> None:
    """Validate check definitions and volume watches (the configured ones, or the files given)."""
    try:
        specs = load_checks([], paths) if paths else load_configured_checks(state.settings())
        if paths:
            watches = load_volumes([], paths, [s.id for s in specs])
        else:
            watches = load_watches(state.settings(), None, specs)
    except CheckDefinitionError as exc:
        raise HypercareError(str(exc)) from None
    console.print(f"{len(specs)} check(s) valid")
    if watches:
        console.print(f"{len(watches)} volume watch(es) valid")


# --- check run / check trace ---------------------------------------------------------------------------

EXIT_FAILED = 1
"""``check run``: some check failed (found offending rows or crossed its fail threshold)."""
EXIT_ERRORED = 4
"""``check run``: some check could not run; its result is unknown. (2 and 3 already mean a settings or
store problem, so "could not check" has a code of its own.) Errors win over failures."""


def _select(specs: list[CheckSpec], source: str | None, check_id: str | None) -> list[CheckSpec]:
    chosen = [
        s for s in specs if (source is None or s.source == source) and (check_id is None or s.id == check_id)
    ]
    if not chosen:
        wanted = ", ".join(
            f"{k} {v!r}" for k, v in (("--source", source), ("--check", check_id)) if v is not None
        )
        raise HypercareError(f"no configured check matches {wanted}; see `hypercare check list`")
    return chosen


def _result_json(r: CheckResult) -> dict[str, Any]:
    return {
        "check_id": r.check_id,
        "source": r.source,
        "status": r.status,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "title": r.title,
        "category": r.category,
        "severity": r.severity,
        "violations": r.violations,
        "measured_value": r.measured_value,
        "amount_at_risk": str(r.amount_at_risk) if r.amount_at_risk is not None else None,
        "duration_s": round(r.duration_s, 6),
        "error": r.error,
        "runbook": r.runbook,
        "sample": r.sample,
    }


@check_app.command("run")
def check_run(
    pack: Annotated[str | None, typer.Option(help="Only this shipped pack.")] = None,
    source: Annotated[str | None, typer.Option(help="Only checks of this source.")] = None,
    check_id: Annotated[str | None, typer.Option("--check", help="Only the check with this id.")] = None,
    as_json: JsonOption = False,
    volumes: Annotated[
        bool,
        typer.Option(
            "--volumes", help="Also run the volume watches and show each series' last complete bucket."
        ),
    ] = False,
) -> None:
    """Run checks now, read-only, and show the results (nothing is stored; `hypercare collect` stores).

    Exit status: 0 every check passed or warned, 1 some check failed, 4 some check could not run.
    """
    from monitor.collect import run_configured_check, run_configured_volume
    from monitor.startup import guard_sources

    settings = state.settings()
    checks = load_configured_checks(settings, pack)
    watches: list[VolumeSpec] = []
    if volumes:
        watches = [
            w
            for w in load_watches(settings, pack, checks)
            if source in {None, w.source} and check_id in {None, w.id}
        ]
    specs = [] if watches and check_id is not None else _select(checks, source, check_id)
    require_known_sources(settings, specs, watches)
    guard_sources(settings, {name for spec in specs for name in spec.sources} | {w.source for w in watches})
    series: list[VolumeSeries] = []
    results: list[CheckResult] = []
    engines: dict[str, Engine] = {}
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console if as_json else console,
        transient=True,
    )
    now = datetime.now(UTC)
    try:
        with progress:
            task = progress.add_task("checks", total=len(specs) + len(watches))
            for spec in specs:
                progress.update(task, description=spec.id)
                results.append(run_configured_check(settings, spec, now=now, engines=engines))
                progress.advance(task)
            for watch in watches:
                progress.update(task, description=watch.id)
                found = run_configured_volume(settings, watch, now=now, engines=engines)
                results.extend(found.results)
                series.extend(found.volumes)
                progress.advance(task)
    finally:
        for engine in engines.values():
            engine.dispose()
    if as_json:
        print_json([_result_json(r) for r in results])
    else:
        _print_results(results)
        if watches:
            _print_volumes(series)
    statuses = {r.status for r in results}
    if "error" in statuses:
        raise typer.Exit(EXIT_ERRORED)
    if "fail" in statuses:
        raise typer.Exit(EXIT_FAILED)


_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "error": "magenta"}


def _print_results(results: list[CheckResult]) -> None:
    table = Table("check", "source", "severity", "status", "violations", "amount at risk", "time", "error")
    for r in results:
        table.add_row(
            r.check_id,
            r.source,
            r.severity,
            f"[{_STYLE[r.status]}]{r.status}[/]",
            str(r.violations),
            str(r.amount_at_risk or ""),
            f"{r.duration_s:.2f}s",
            r.error or "",
        )
    console.print(table)
    counts = {status: sum(1 for r in results if r.status == status) for status in _STYLE}
    console.print(", ".join(f"{n} {status}" for status, n in counts.items()))


def _print_volumes(found: list[VolumeSeries]) -> None:
    """Each volume series' last complete bucket (what `hypercare collect` exposes on /metrics)."""
    table = Table("watch", "key", "measure", "last bucket with data", "value", "buckets read")
    for series in found:
        last = series.points[-1] if series.points else None
        table.add_row(
            series.watch_id,
            "/".join(series.key.values()) or "all",
            series.measure,
            last[0].isoformat(sep=" ", timespec="minutes") if last else "-",
            f"{last[1]:,.2f}".rstrip("0").rstrip(".") if last else "-",
            str(len(series.points)),
        )
    console.print(table)


@check_app.command("trace")
def check_trace(
    key: Annotated[str, typer.Argument(help="The document's business key (e.g. an invoice number).")],
    as_json: Annotated[bool, typer.Option("--json", help="Rows as JSON on stdout.")] = False,
) -> None:
    """Where is document KEY across the systems (the `collectors.trace` queries)."""
    from monitor.collectors import trace_document
    from monitor.startup import guard_sources

    settings = state.settings()
    if not settings.collectors.trace:
        raise HypercareError("no trace queries configured (collectors.trace in the settings)")
    guard_sources(settings, {query.source for query in settings.collectors.trace})
    rows = trace_document(settings, key)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    table = Table("where", "source", "found", title=f"Trace of {key}")
    for row in rows:
        rest = {k: v for k, v in row.items() if k not in {"trace", "source"}}
        shown = "; ".join(f"{k}={v}" for k, v in rest.items())
        table.add_row(row["trace"], row["source"], f"[magenta]{shown}[/]" if "trace_error" in row else shown)
    missing = [q.name for q in settings.collectors.trace if q.name not in {r["trace"] for r in rows}]
    for name in missing:
        table.add_row(
            name, next(q.source for q in settings.collectors.trace if q.name == name), "[red]not found[/]"
        )
    console.print(table)
