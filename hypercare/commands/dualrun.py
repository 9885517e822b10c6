"""`hypercare dualrun run CONFIG` and `hypercare dualrun report`: legacy vs new, entity by entity."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from core import csvsafe
from core.errors import HypercareError, StoreError
from hypercare.commands.common import JsonOption, console, err_console, print_json, state
from monitor.dualrun.model import ComparisonResult

dualrun_app = typer.Typer(
    no_args_is_help=True,
    help="Dual-run comparisons between the legacy and the new ERP. A comparison file names two sources; "
    "their connections come from `sources:` in the settings file of the global --config "
    "(`hypercare --config hypercare.yaml dualrun run gl.yaml`).",
)

EXIT_SAME, EXIT_DIFFERENT, EXIT_ERROR = 0, 1, 2


class DualRunCliError(HypercareError):
    """The comparison could not run (bad file, unknown source, an entity that could not be compared)."""

    exit_code = EXIT_ERROR


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _as_of(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HypercareError(f"--as-of {value!r} is not a date (YYYY-MM-DD)") from None


@dualrun_app.command("run")
def dualrun_run(  # noqa: PLR0917 - typer maps parameters to options
    config: Annotated[Path, typer.Argument(help="The comparison file (YAML).")],
    entity: Annotated[
        list[str] | None, typer.Option("--entity", "-e", help="Only this entity (repeatable).")
    ] = None,
    as_of: Annotated[str | None, typer.Option(help="Compare the period of this day (YYYY-MM-DD).")] = None,
    as_json: JsonOption = False,
    output: Annotated[Path | None, typer.Option(help="Also write the result as JSON to this file.")] = None,
    store: Annotated[
        bool, typer.Option(help="Store the run and turn differences into tickets (the Hypercare store).")
    ] = True,
    show: Annotated[int, typer.Option(help="Differences listed per entity in the table (all: --json).")] = 20,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="Record progress here; an interrupted run given the same file resumes (integer keys)."
        ),
    ] = None,
) -> None:
    """Compare the legacy and the new system entity by entity, as the comparison file CONFIG says.

    CONFIG names its two sources (`legacy:` and `new:`); their connections come from `sources:` in the
    Hypercare settings file given with the global --config: `hypercare --config hypercare.yaml dualrun run
    CONFIG` (default: $HYPERCARE_CONFIG or ./hypercare.yaml). `hypercare dualrun init` writes a first CONFIG.

    Values are compared exactly as stored (timestamps to the microsecond, text with its spaces); each
    normalisation CONFIG asks for is reported with the rows it changed.

    `--json` prints the result object that `--output` writes and `report --input` reads.

    Exit status: 0 every entity is the same; 1 differences found; 2 error (bad file or option, unknown
    source, an entity that could not be compared); 3 the Hypercare store is unreachable (storing only)."""
    try:
        _run(
            config,
            entity,
            as_of,
            as_json=as_json,
            output=output,
            store=store,
            show=show,
            checkpoint=checkpoint,
        )
    except StoreError:
        raise
    except HypercareError as exc:
        if exc.exit_code == EXIT_ERROR:
            raise
        raise DualRunCliError(str(exc)) from None


def _run(
    config: Path,
    entity: list[str] | None,
    as_of: str | None,
    *,
    as_json: bool,
    output: Path | None,
    store: bool,
    show: int,
    checkpoint: Path | None = None,
) -> None:
    from monitor.dualrun.config import load_comparison, resolve_sources
    from monitor.dualrun.runner import run_comparison
    from monitor.startup import guard_sources

    settings = state.settings()
    comparison = load_comparison(config)
    guard_sources(settings, {comparison.legacy, comparison.new})
    day = _as_of(as_of)
    legacy, new = resolve_sources(comparison, settings, str(config))
    chosen = entity or [e.name for e in comparison.entities if e.enabled]
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[entity]}"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err_console if as_json else console,
            transient=True,
        ) as bar:
            tasks = {name: bar.add_task("waiting", entity=name, total=None) for name in chosen}

            def progress(name: str, step: str) -> None:
                if name in tasks:
                    bar.update(tasks[name], description=step)

            try:
                result = run_comparison(
                    comparison,
                    legacy,
                    new,
                    as_of=day,
                    only=entity or (),
                    progress=progress,
                    checkpoint=checkpoint,
                )
            except ValueError as exc:
                raise HypercareError(str(exc)) from None
    finally:
        legacy.engine.dispose()
        new.engine.dispose()
    if output is not None:
        output.write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    if store:
        _store(result, err_console if as_json else console)
    if as_json:
        print_json(result.to_dict())
    else:
        _print_table(result, show=show)
    if any(e.error is not None for e in result.entities):
        raise typer.Exit(EXIT_ERROR)
    if not result.ok:
        raise typer.Exit(EXIT_DIFFERENT)


def _store(result: ComparisonResult, out: Console) -> None:
    from core.schema import require_current_schema
    from core.session import make_engine, session_factory
    from hypercare.pipeline import process_dualrun

    settings = state.settings()
    engine = make_engine(settings.store_url)
    try:
        require_current_schema(engine)
        report = process_dualrun(settings, session_factory(engine), result, trigger="cli")
    finally:
        engine.dispose()
    out.print(
        f"stored run {report.run_id}: {report.events} event(s), {len(report.opened)} ticket(s) opened",
        style="dim",
    )


def _load_report(input_: Path | None, comparison: str | None) -> ComparisonResult:
    if input_ is not None:
        try:
            return ComparisonResult.from_dict(json.loads(input_.read_text(encoding="utf-8")))
        except OSError as exc:
            raise HypercareError(f"{input_}: cannot read ({exc.strerror})") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise HypercareError(f"{input_}: not a dual-run result ({exc})") from None
    from core.schema import require_current_schema
    from core.session import make_engine, session_factory, session_scope
    from monitor.dualrun.store import list_runs, load_result

    engine = make_engine(state.settings().store_url)
    try:
        require_current_schema(engine)
        with session_scope(session_factory(engine)) as session:
            runs, _entities, _total = list_runs(session, comparison=comparison, limit=1)
            loaded = load_result(session, runs[0].id) if runs else None
    finally:
        engine.dispose()
    if loaded is None:
        which = f" of comparison {comparison}" if comparison else ""
        raise HypercareError(
            f"no dual-run result{which} stored yet: run `hypercare dualrun run CONFIG` first"
        )
    return loaded


@dualrun_app.command("report")
def dualrun_report(
    input_: Annotated[
        Path | None, typer.Option("--input", "-i", help="A result file written by `run --output`.")
    ] = None,
    comparison: Annotated[str | None, typer.Option(help="The last run of this comparison.")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table, json or csv.")] = Format.table,
    samples: Annotated[bool, typer.Option(help="With the sampled differences (table).")] = True,
    show: Annotated[int, typer.Option(help="Differences listed per entity in the table.")] = 20,
) -> None:
    """Show the last stored comparison result (or one written by `run --output`)."""
    result = _load_report(input_, comparison)
    if fmt is Format.json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    elif fmt is Format.csv:
        typer.echo(to_csv(result), nl=False)
    else:
        _print_table(result, samples=samples, show=show)


def to_csv(result: ComparisonResult) -> str:
    """One line per entity: counts, money affected, match rate, error."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["comparison", "as_of", "entity", "kind", "period", "matched", "changed", "missing_in_new",
         "extra_in_new", "match_rate", "money_affected", "rows_legacy", "rows_new", "duration_s", "error"]
    )  # fmt: skip
    for e in result.entities:
        writer.writerow(csvsafe.row(
            [result.comparison, result.as_of or "", e.entity, e.kind, e.period or "", e.matched, e.changed,
             e.missing_in_new, e.extra_in_new, f"{e.match_rate:.6f}", e.money_affected, e.rows_legacy,
             e.rows_new, f"{e.duration_s:.3f}", e.error or ""]
        ))  # fmt: skip
    return out.getvalue()


def _print_table(result: ComparisonResult, *, samples: bool = True, show: int = 20) -> None:
    """The summary, each entity's plan and normalisations, then its differences. Nothing is cut: long keys
    and values fold onto further lines (piped output is at full width, see the operator guide)."""
    title = f"Dual run {result.comparison}: {result.legacy_source} -> {result.new_source}"
    if result.as_of:
        title += f" as of {result.as_of}"
    table = Table(title=title)
    for column in ("entity", "kind", "matched", "changed", "missing", "extra", "match", "money", "time"):
        table.add_column(column, justify="left" if column in {"entity", "kind"} else "right", overflow="fold")
    for e in result.entities:
        if e.error:
            table.add_row(
                e.entity, e.kind, "[red]error[/red]", e.error, "", "", "", "", f"{e.duration_s:.2f}s"
            )
            continue
        style = "green" if e.ok else "red"
        table.add_row(
            f"[{style}]{e.entity}[/{style}]", e.kind, str(e.matched), str(e.changed), str(e.missing_in_new),
            str(e.extra_in_new), f"{e.match_rate:.2%}", str(e.money_affected), f"{e.duration_s:.2f}s",
        )  # fmt: skip
    console.print(table)
    _print_plans(result)
    if samples:
        _print_samples(result, show)


def _print_plans(result: ComparisonResult) -> None:
    for e in result.entities:
        if e.plan.startswith("key-hash buckets"):
            console.print(f"[yellow]{e.entity}: {e.plan}[/yellow]", soft_wrap=True)
        if e.normalised:
            rules = Table(
                title=f"{e.entity}: matched rows each normalisation changed (matched only after it)"
            )
            for column in ("rule", "legacy rows", "new rows"):
                rules.add_column(column, justify="left" if column == "rule" else "right", overflow="fold")
            for rule, sides in e.normalised.items():
                rules.add_row(rule, str(sides.get("legacy", 0)), str(sides.get("new", 0)))
            console.print(rules)


def _print_samples(result: ComparisonResult, show: int) -> None:
    for e in result.entities:
        if not e.samples:
            continue
        listed = e.samples[: max(show, 0)]
        more = e.differences - len(listed)
        note = f"{len(listed)} of {e.differences}" + (
            f"; {len(e.samples)} in --json/--output" if more > 0 else ""
        )
        detail = Table(title=f"{e.entity}: differences ({note})")
        for column in ("key", "kind", "class", "columns", "money"):
            detail.add_column(column, overflow="fold")
        for d in listed:
            cols = "; ".join(f"{c.column}: {c.legacy!r} -> {c.new!r}" for c in d.columns)
            if d.lines:
                cols = (cols + "; " if cols else "") + f"{len(d.lines)} line difference(s)"
            key = ", ".join(f"{k}={v}" for k, v in d.key.items())
            detail.add_row(key, d.kind, d.classification, cols, str(d.money_affected))
        console.print(detail)


@dualrun_app.command("init")
def dualrun_init(  # noqa: PLR0917 - typer maps parameters to options
    legacy_table: Annotated[str, typer.Argument(help="The legacy table (schema.table allowed).")],
    new_table: Annotated[str, typer.Argument(help="The new system's table.")],
    legacy: Annotated[str, typer.Option(help="The legacy source's name under `sources:`.")] = "legacy",
    new: Annotated[str, typer.Option(help="The new system's source name under `sources:`.")] = "erp",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the file here (default: stdout).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="The comparison's name (default: the new table's).")
    ] = None,
) -> None:
    """Write a complete, commented comparison file from the two tables' schemas.

    Both tables are read (columns, types, primary key) through the sources of the global --config; columns
    pair up by name, then by a close name (marked `guessed`). Exact comparison: no normalisation is switched
    on; the comments list the options. Exit 2 when a source or a table is unknown."""
    from monitor.dualrun.config import resolve_sources
    from monitor.dualrun.model import ComparisonConfig
    from monitor.dualrun.scaffold import comparison_yaml, read_table

    settings = state.settings()
    entity = new_table.rpartition(".")[2].lower()
    label = (name or entity.replace("_", "-")).lower()
    probe = ComparisonConfig.model_validate(
        {"name": "init", "legacy": legacy, "new": new, "entities": [{"name": "e", "legacy": {"table": "x"},
         "new": {"table": "x"}, "key": ["k"]}]}
    )  # fmt: skip
    try:
        legacy_side, new_side = resolve_sources(probe, settings, "dualrun init")
    except HypercareError as exc:
        raise DualRunCliError(str(exc)) from None
    try:
        schemas = (read_table(legacy_side.engine, legacy_table), read_table(new_side.engine, new_table))
    except LookupError as exc:
        raise DualRunCliError(f"{exc.args[0]}") from None
    finally:
        legacy_side.engine.dispose()
        new_side.engine.dispose()
    text = comparison_yaml(label, legacy, new, schemas[0], schemas[1], entity)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {output}: check it, then `hypercare dualrun run {output}`", highlight=False)
