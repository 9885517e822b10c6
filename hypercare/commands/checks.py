"""`hypercare check ...` and `hypercare collect`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hypercare.commands.common import console, state
from hypercare.config import Settings
from hypercare.errors import HypercareError
from monitor.checks import CheckDefinitionError, CheckSpec, load_checks

check_app = typer.Typer(no_args_is_help=True, help="Data-consistency checks.")


def _load_checks(settings: Settings, pack: str | None = None) -> list[CheckSpec]:
    try:
        return list(
            load_checks([pack] if pack else settings.checks.packs, () if pack else settings.checks.paths)
        )
    except CheckDefinitionError as exc:
        raise HypercareError(str(exc)) from None


@check_app.command("list")
def check_list(pack: Annotated[str | None, typer.Option(help="Only this shipped pack.")] = None) -> None:
    """List the configured checks."""
    table = Table("id", "severity", "category", "source", "title")
    for spec in _load_checks(state.settings(), pack):
        table.add_row(spec.id, spec.severity, spec.category, spec.source, spec.title)
    console.print(table)


@check_app.command("validate")
def check_validate(
    paths: Annotated[list[Path] | None, typer.Argument(help="Check files or folders.")] = None,
) -> None:
    """Validate check definitions (the configured ones, or the files given)."""
    try:
        specs = load_checks([], paths) if paths else _load_checks(state.settings())
    except CheckDefinitionError as exc:
        raise HypercareError(str(exc)) from None
    console.print(f"{len(specs)} check(s) valid")


def collect() -> None:
    """Run every check and probe once, raise events, update tickets, send notifications."""
    from hypercare.pipeline import run_pipeline
    from hypercare.store import make_engine, require_current_schema, session_factory

    settings = state.settings()
    engine = make_engine(settings.store_url)
    require_current_schema(engine)
    report = run_pipeline(settings, session_factory(engine), _load_checks(settings), trigger="cli")
    table = Table("check", "source", "status", "violations", "amount at risk", "error", title="Results")
    for r in report.results:
        table.add_row(
            r.check_id, r.source, r.status, str(r.violations), str(r.amount_at_risk or ""), r.error or ""
        )
    console.print(table)
    console.print(f"events: {report.events}; tickets: {dict(report.outcomes)}")
