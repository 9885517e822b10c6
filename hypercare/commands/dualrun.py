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
from core.errors import HypercareError
from hypercare.commands.common import JsonOption, console, err_console, print_json, state
from monitor.dualrun.model import ComparisonResult

dualrun_app = typer.Typer(
    no_args_is_help=True, help="Dual-run comparisons between the legacy and the new ERP."
)


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
) -> None:
    """Run a comparison; exit 1 when any entity differs or could not be compared.

    `--json` prints the result object that `--output` writes and `report --input` reads."""
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
                    comparison, legacy, new, as_of=day, only=entity or (), progress=progress
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
        _print_table(result)
    if not result.ok:
        raise typer.Exit(1)


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
) -> None:
    """Show the last stored comparison result (or one written by `run --output`)."""
    result = _load_report(input_, comparison)
    if fmt is Format.json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    elif fmt is Format.csv:
        typer.echo(to_csv(result), nl=False)
    else:
        _print_table(result, samples=samples)


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


def _print_table(result: ComparisonResult, *, samples: bool = True) -> None:
    title = f"Dual run {result.comparison}: {result.legacy_source} -> {result.new_source}"
    if result.as_of:
        title += f" as of {result.as_of}"
    table = Table(title=title)
    for column in ("entity", "kind", "matched", "changed", "missing", "extra", "match", "money", "time"):
        table.add_column(column, justify="left" if column in {"entity", "kind"} else "right")
    for e in result.entities:
        if e.error:
            table.add_row(
                e.entity, e.kind, "[red]error[/red]", e.error[:80], "", "", "", "", f"{e.duration_s:.2f}s"
            )
            continue
        style = "green" if e.ok else "red"
        table.add_row(
            f"[{style}]{e.entity}[/{style}]", e.kind, str(e.matched), str(e.changed), str(e.missing_in_new),
            str(e.extra_in_new), f"{e.match_rate:.2%}", str(e.money_affected), f"{e.duration_s:.2f}s",
        )  # fmt: skip
    console.print(table)
    if not samples:
        return
    for e in result.entities:
        if not e.samples:
            continue
        detail = Table(title=f"{e.entity}: differences (first {len(e.samples)})")
        for column in ("key", "kind", "class", "columns", "money"):
            detail.add_column(column)
        for d in e.samples[:20]:
            cols = "; ".join(f"{c.column}: {c.legacy} -> {c.new}" for c in d.columns)
            if d.lines:
                cols = (cols + "; " if cols else "") + f"{len(d.lines)} line difference(s)"
            key = ", ".join(f"{k}={v}" for k, v in d.key.items())
            detail.add_row(key, d.kind, d.classification, cols[:100], str(d.money_affected))
        console.print(detail)
