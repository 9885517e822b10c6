"""``hypercare runbooks``: lint the runbooks (CI gate), list them, re-run a ticket's verification."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hypercare.commands.common import console, err_console, state

runbooks_app = typer.Typer(no_args_is_help=True, help="Runbooks: lint, list, verify a ticket.")


@runbooks_app.command("lint")
def lint(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Runbook files or directories (default: runbooks_dir from the settings)."),
    ] = None,
) -> None:
    """Validate front matter and sections, coverage of every check and built-in signal, and that
    diagnostics are read-only with parameters the events carry. Exit 1 on any problem."""
    from monitor.checks import configured_checks
    from monitor.volumes import load_volumes
    from runbooks.lint import lint as run_lint

    settings = state.settings()
    chosen = list(paths or ([settings.runbooks_dir] if settings.runbooks_dir else []))
    missing = [p for p in chosen if not p.exists()]
    if missing:
        err_console.print(f"{missing[0]}: no such file or directory", soft_wrap=True)
        raise typer.Exit(2)
    checks = configured_checks(settings)
    volumes = load_volumes(settings.checks.packs, settings.checks.paths, [c.id for c in checks])
    report = run_lint(chosen, checks=checks, volumes=volumes)
    for problem in report.problems:
        err_console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    watches = f"{report.watches} volume watches"
    covered = f"{report.checks} checks, {watches} and {report.signals} built-in signals covered"
    summary = f"{len(report.runbooks)} runbooks, {covered}"
    if not report.ok:
        err_console.print(f"runbooks lint: {len(report.problems)} problem(s); {summary}", soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"runbooks lint: ok; {summary}", soft_wrap=True)


@runbooks_app.command("list")
def list_runbooks() -> None:
    """The runbooks in force (shipped, overridden by runbooks_dir), with what they apply to."""
    from runbooks.library import load_runbooks

    settings = state.settings()
    table = Table(title="Runbooks")
    for column in ("id", "severity", "owner", "applies to", "diagnostics"):
        table.add_column(column)
    for runbook in load_runbooks(settings.runbooks_dir).values():
        table.add_row(
            runbook.id,
            runbook.severity,
            runbook.owner,
            ", ".join(runbook.applies_to),
            str(len(runbook.diagnostics)),
        )
    console.print(table)


@runbooks_app.command("verify")
def verify(ticket_id: Annotated[int, typer.Argument(help="The ticket whose check to re-run.")]) -> None:
    """Re-run the ticket's verification check; record the proof; resolve it on a pass where configured."""
    from core.session import make_engine, session_factory
    from runbooks.verification import verify_ticket

    settings = state.settings()
    engine = make_engine(settings.store_url)
    try:
        verdict = verify_ticket(settings, session_factory(engine), ticket_id, "cli")
    finally:
        engine.dispose()
    resolved = "; ticket resolved" if verdict.resolved else ""
    console.print(
        f"#{ticket_id}: {verdict.check_id} {verdict.status} (check result #{verdict.result_id}, "
        f"measured {verdict.measured_value}, violations {verdict.violations}){resolved}"
    )
    if verdict.status != "pass":
        raise typer.Exit(1)
