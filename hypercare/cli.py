"""The ``hypercare`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from core.errors import HypercareError
from core.settings import redact_url
from hypercare.commands.anomaly import anomaly_app
from hypercare.commands.audit import audit_app
from hypercare.commands.checks import check_app
from hypercare.commands.collect import collect
from hypercare.commands.common import ConfigOption, console, err_console, state
from hypercare.commands.dashboard import dashboard
from hypercare.commands.dualrun import dualrun_app
from hypercare.commands.oncall import oncall_app
from hypercare.commands.report import report_app
from hypercare.commands.runbooks import runbooks_app
from hypercare.commands.users import tokens_app, users_app
from hypercare.logging import configure_logging

if TYPE_CHECKING:
    from hypercare.config import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Hypercare: ERP post-go-live support.")
config_app = typer.Typer(no_args_is_help=True, help="Inspect the configuration.")
db_app = typer.Typer(no_args_is_help=True, help="Manage the Hypercare store.")
demo_erp_app = typer.Typer(no_args_is_help=True, help="The simulated ERP used by the demo and benchmarks.")
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(demo_erp_app, name="demo-erp")
# One line per area's command module (hypercare/commands/):
app.add_typer(check_app, name="check")
app.command("collect")(collect)
app.add_typer(users_app, name="users")
app.add_typer(anomaly_app, name="anomaly")
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")
app.add_typer(dualrun_app, name="dualrun")
app.command("dashboard")(dashboard)
app.add_typer(report_app, name="report")
app.add_typer(runbooks_app, name="runbooks")
app.add_typer(oncall_app, name="oncall")


@app.callback()
def _main(config: ConfigOption = None) -> None:
    state.config = config
    state._settings = None


# --- config ------------------------------------------------------------------------------------------


@config_app.command("check")
def config_check() -> None:
    """Validate the settings and show them, secrets redacted; fail when a check pack or collector reads
    a source that is not configured."""
    from hypercare.commands.checks import load_configured_checks, load_watches, require_known_sources

    settings = state.settings()
    try:
        checks = load_configured_checks(settings)
        watches = load_watches(settings, None, checks)
    except HypercareError:  # a definition the read-only section below names (refused SQL included)
        checks, watches = [], []
    require_known_sources(settings, checks, watches)
    table = Table(title="Hypercare settings (valid)", show_header=True)
    table.add_column("key")
    table.add_column("value")
    table.add_row("store", redact_url(settings.store_url))
    table.add_row("data_dir", str(settings.data_dir))
    table.add_row("server", settings.server.base_url())
    for name, source in settings.sources.items():
        table.add_row(f"sources.{name}", redact_url(source.url.get_secret_value()))
    for probe in settings.probes:
        table.add_row(f"probes.{probe.name}", f"{probe.method} {redact_url(probe.url)}")
    table.add_row("checks.packs", ", ".join(settings.checks.packs) or "-")
    table.add_row("notifications", f"{len(settings.notifications.targets)} target(s)")
    console.print(table)
    if not _read_only_guarantee(settings):
        raise typer.Exit(1)


def _read_only_guarantee(settings: Settings) -> bool:
    """Print what ``config check`` found about the read-only guarantee; False when something is refused:
    SQL the allow-list refuses in its source's dialect, or a source whose user may do more than read."""
    from monitor.checks import CheckDefinitionError, load_checks
    from monitor.privileges import inspect_sources
    from monitor.startup import sql_problems

    problems: list[str] = []
    try:
        checks = load_checks(settings.checks.packs, settings.checks.paths)
    except CheckDefinitionError as exc:
        problems.append(str(exc))
        checks = []
    problems += sql_problems(settings, checks, settings.dualrun.comparisons)
    reports = inspect_sources(settings.sources)
    console.print("[bold]Read-only guarantee[/bold]")
    for report in reports:
        mark = "refused" if report.refused else "warning" if report.privileged or report.error else "ok"
        console.print(f"  {mark}: {report.describe()}", markup=False, highlight=False)
    for problem in problems:
        console.print(f"  refused: {problem}", markup=False, highlight=False)
    if not problems:
        console.print(f"  ok: the SQL of {len(checks)} check(s) and of the settings is on the allow-list")
    return not problems and not any(report.refused for report in reports)


# --- db ----------------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the store's schema to this version's head."""
    from core.schema import head_revision
    from core.session import make_engine
    from hypercare.store import upgrade

    settings = state.settings()
    engine = make_engine(settings.store_url)
    upgrade(engine)
    console.print(f"store {redact_url(settings.store_url)} is at revision {head_revision()}")


@db_app.command("current")
def db_current() -> None:
    """Show the store's schema revision and whether it is current."""
    from core.schema import current_revision, head_revision
    from core.session import make_engine

    settings = state.settings()
    current = current_revision(make_engine(settings.store_url))
    head = head_revision()
    console.print(f"store revision: {current or 'none'}; code head: {head}")
    if current != head:
        raise typer.Exit(1)


@db_app.command("check")
def db_check(
    url: Annotated[
        str | None, typer.Option(help="Scratch database to check in (default: a temporary SQLite).")
    ] = None,
) -> None:
    """Fail when the models and the migrations disagree (a migration is missing)."""
    import tempfile

    from hypercare.store import check_migrations

    if url:
        check_migrations(url)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            check_migrations(f"sqlite:///{tmp}/check.db")
    console.print("migrations match the models")


# --- serve -------------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default: server.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: server.port).")] = None,
) -> None:
    """Serve the API and the ticket UI."""
    import os

    import uvicorn

    from core.errors import ConfigError
    from core.schema import require_current_schema
    from hypercare.app import build_app, serving_engine
    from hypercare.config import config_path
    from monitor.startup import guard_sources

    settings = state.settings()
    engine = serving_engine(settings)
    require_current_schema(engine)
    notices = guard_sources(settings)  # runbook diagnostics query the sources: the same refusal as collect
    bind_host = host or settings.server.host
    bind_port = port or settings.server.port
    workers = settings.server.workers
    if workers > 1 and engine.dialect.name == "sqlite":
        raise ConfigError("server.workers > 1 needs a PostgreSQL store (SQLite: set server.workers to 1)")
    console.print(f"Hypercare on http://{bind_host}:{bind_port}/  (API docs: /docs, metrics: /metrics)")
    if workers == 1:
        uvicorn.run(
            build_app(settings, engine, notices=notices), host=bind_host, port=bind_port, log_config=None
        )
        return
    engine.dispose()
    chosen = config_path(state.config)
    if chosen is not None:  # the workers read the same file
        os.environ["HYPERCARE_CONFIG"] = str(chosen.resolve())
    uvicorn.run(
        "hypercare.app:worker_app",
        factory=True,
        workers=workers,
        host=bind_host,
        port=bind_port,
        log_config=None,
    )


# --- checks and collection ------------------------------------------------------------------------------


# --- demo --------------------------------------------------------------------------------------------


@app.command()
def demo(
    once: Annotated[
        bool, typer.Option("--once", help="Exit after the summary (non-zero if it misses a fault).")
    ] = False,
    port: Annotated[int, typer.Option(help="Port of the API and ticket UI.")] = 8080,
    directory: Annotated[Path, typer.Option("--dir", help="Where the demo keeps its files.")] = Path(
        ".hypercare/demo"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the simulated ERP.")] = 42,
    faults: Annotated[str, typer.Option(help="Fault kinds to inject: all, none, or a comma list.")] = "all",
) -> None:
    """Build the demo ERP, watch it once, show what was found, then serve the UI until Ctrl-C."""
    from hypercare.demo.run import parse_faults, run_demo

    try:
        kinds = parse_faults(faults)
    except ValueError as exc:
        raise HypercareError(str(exc)) from None
    ok = run_demo(directory, port=port, seed=seed, faults=kinds, once=once, console=console)
    if not ok:
        raise typer.Exit(1)


@demo_erp_app.command("build")
def demo_erp_build(
    directory: Annotated[Path, typer.Argument(help="Folder for the SQLite files and ground truth.")],
    scale: Annotated[float, typer.Option(help="Volume multiplier (1 = ~100k journal lines).")] = 1.0,
    seed: Annotated[int, typer.Option()] = 42,
    faults: Annotated[str, typer.Option(help="all, none, or a comma list of fault kinds.")] = "all",
    erp_url: Annotated[str | None, typer.Option(help="Build the ERP in this database instead.")] = None,
) -> None:
    """Build the simulated ERP (for benchmarks and the dual run)."""
    from hypercare.demo.builder import build_demo_erp
    from hypercare.demo.run import parse_faults

    configure_logging()
    try:
        erp = build_demo_erp(
            directory, seed=seed, scale=scale, faults=parse_faults(faults), erp_url=erp_url, progress=True
        )
    except ValueError as exc:
        raise HypercareError(str(exc)) from None
    console.print(
        f"ERP: {redact_url(erp.erp_url)}; {erp.counts.get('journal_line', 0):,} journal lines; "
        f"{len(erp.faults)} faults; ground truth: {erp.ground_truth_path}"
    )


def main() -> None:
    try:
        code = app(standalone_mode=False)  # returns typer.Exit's code instead of raising it
        sys.exit(code if isinstance(code, int) else 0)
    except HypercareError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors (unknown option, missing or bad value): exit 2
        _show_usage_error(exc)
        sys.exit(exc.exit_code)


def _show_usage_error(exc: typer.TyperException) -> None:
    """Print a usage error as click does: the usage line, a hint, then ``Error: ...``, on stderr.

    Since typer 0.26 click is vendored inside typer: its exceptions are not ``click.ClickException`` but
    derive from ``typer.TyperException`` (public since 0.28), whose public surface has no ``show()``; every
    one typer raises has it. A command run without arguments shows its help (typer has printed it already
    when rich formats help: the error then has no message of its own)."""
    if not exc.format_message().strip():
        return
    show = getattr(exc, "show", None)
    if callable(show):
        show()
    else:
        err_console.print(f"Error: {exc.format_message()}", markup=False, highlight=False)
