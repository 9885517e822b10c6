"""``hypercare report daily``: the daily hypercare report of one day, as PDF or HTML, archived and sent on
request."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer

from hypercare.commands.common import console, err_console, state

report_app = typer.Typer(no_args_is_help=True, help="Reports for managers.")


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint="--date") from None


@report_app.command("daily")
def report_daily(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the report here: FILE.pdf or FILE.html.")
    ] = None,
    day: Annotated[
        str | None,
        typer.Option("--date", help="The day reported on, YYYY-MM-DD (default: yesterday, site time zone)."),
    ] = None,
    keep: Annotated[bool, typer.Option("--archive", help="Keep it in the archive (/reports/daily).")] = False,
    send: Annotated[
        bool, typer.Option("--send", help="Archive it and send it to the notification targets tagged for it.")
    ] = False,
    language: Annotated[
        str | None,
        typer.Option(
            "--language",
            help="Render it in en, zh_CN (简体中文) or zh_TW (繁體中文); default: site.language. "
            "Sent reports go to each target in its own notifications.targets[].language.",
        ),
    ] = None,
) -> None:
    """Render the daily hypercare report of one day of the site's time zone (dashboard.daily_report)."""
    from core.i18n import parse_language
    from core.schema import require_current_schema
    from core.session import make_engine
    from hypercare.daily_report import produce, yesterday

    if out is None and not keep and not send:
        raise typer.BadParameter("say where it goes: --out FILE.pdf / FILE.html, --archive or --send")
    if out is not None and out.suffix.lower() not in (".pdf", ".html", ".htm"):
        raise typer.BadParameter(f"{out.name}: the file must end in .pdf or .html", param_hint="--out")
    try:
        chosen_language = None if language is None else parse_language(language)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--language") from None
    settings = state.settings()
    now = datetime.now(UTC)
    chosen = _day(day) or yesterday(settings, now)
    engine = make_engine(settings.store_url)
    try:
        require_current_schema(engine)
        produced = produce(settings, engine, chosen, now=now, keep=keep, send=send, language=chosen_language)
    finally:
        engine.dispose()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".pdf":
            out.write_bytes(produced.pdf)
        else:
            out.write_text(produced.html, encoding="utf-8")
        console.print(f"{produced.title} ({produced.report.timezone}) -> {out}")
    if keep or send:
        console.print(f"archived: {chosen.isoformat()}")
    if send:
        if produced.error:
            err_console.print(f"[red]sent to {produced.sent_to} target(s); {produced.error}[/]")
            raise typer.Exit(1)
        console.print(f"sent to {produced.sent_to} notification target(s)")
