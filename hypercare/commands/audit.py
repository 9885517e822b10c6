"""``hypercare audit``: check the audit trail's hash chain."""

from __future__ import annotations

import typer

from hypercare.commands.common import console, err_console, state

audit_app = typer.Typer(no_args_is_help=True, help="The ticket audit trail.")


@audit_app.command("verify")
def verify() -> None:
    """Recompute the audit trail's hash chain; exit 1 naming the first row that breaks it."""
    from core.session import make_engine, session_factory
    from tickets.audit import verify as verify_chain

    settings = state.settings()
    engine = make_engine(settings.store_url)
    try:
        with session_factory(engine)() as session:
            report = verify_chain(session)
    finally:
        engine.dispose()
    if report.ok:
        extra = f" ({report.unchained} older unchained rows)" if report.unchained else ""
        console.print(f"audit chain intact: {report.checked} rows verified{extra}")
        return
    where = f"row {report.broken_id}" if report.broken_id is not None else "chain head"
    err_console.print(f"audit chain BROKEN at {where}: {report.reason} ({report.checked} rows checked)")
    raise typer.Exit(1)
