"""`hypercare anomaly score`: offline, causal anomaly scoring of a timestamp,value CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from core.errors import HypercareError
from hypercare.commands.common import console, err_console

anomaly_app = typer.Typer(no_args_is_help=True, help="Anomaly detection over metric series.")


@anomaly_app.command("score")
def score(
    input_csv: Annotated[Path, typer.Argument(help="CSV with columns timestamp,value (others are kept).")],
    output_csv: Annotated[Path, typer.Argument(help="Where to write the rows plus anomaly_score.")],
    detector: Annotated[
        str,
        typer.Option(
            help="ensemble (the default: seasonal baseline, seasonality chosen per series), seasonal, "
            "level-shift, trend, zscore (rolling baseline) or iforest."
        ),
    ] = "ensemble",
    warmup: Annotated[int, typer.Option(help="Points before any alarm (score 0 until then).", min=1)] = 288,
    calendar_file: Annotated[
        Path | None, typer.Option("--calendar", help="Business calendar YAML (close days, holidays).")
    ] = None,
) -> None:
    """Score every row using only the rows before it; anomaly_score is in [0, 1), 0.5 = alarm threshold.

    Rows out of time order (a duplicate timestamp, a clock stepped back) are scored, not learnt, and
    counted; the file is not refused for them."""
    from anomaly.calendar import CalendarError, load_calendar
    from anomaly.offline import DETECTORS, read_series, score_series, write_scores

    if detector not in DETECTORS:
        raise HypercareError(f"unknown detector {detector!r}; choose one of {', '.join(DETECTORS)}")
    try:
        calendar = load_calendar(calendar_file) if calendar_file is not None else None
    except CalendarError as exc:
        raise HypercareError(str(exc)) from None
    series = read_series(input_csv)
    with Progress(
        TextColumn("scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("score", total=len(series.rows))
        scores = score_series(
            series,
            detector,
            warmup_points=warmup,
            calendar=calendar,
            progress=lambda done: bar.advance(task, done),
        )
    try:
        write_scores(output_csv, series, scores)
    except OSError as exc:
        raise HypercareError(f"{output_csv}: cannot write ({exc.strerror})") from None
    alarms = sum(1 for s in scores if s >= 0.5)
    console.print(
        f"{len(scores):,} rows scored with {detector}; {alarms:,} at or above 0.5; wrote {output_csv}"
    )
    if series.duplicates or series.late:
        console.print(
            f"{series.duplicates:,} duplicate and {series.late:,} out-of-order timestamps: "
            "scored against the rows before them, not learnt"
        )
