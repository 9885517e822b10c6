"""Score every metric detector on REAL labelled series, NAB-style, with the baselines in the same table.

    .venv/bin/python bench/anomaly_corpus.py --cloud-monitoring ... --donut ...   # once: builds bench/.corpus
    .venv/bin/python bench/anomaly_real_eval.py [--corpus bench/.corpus] [--detectors a,b] [--markdown]

Rows: a windowed Gaussian (the classic baseline: mean and deviation of the last 6,400 points, refreshed
every 100, score = 1 - the Gaussian tail probability), the product's detectors (``anomaly.offline``:
the default first, then each component, the rolling z-score and the isolation forest) and the PREVIOUS
default ensemble as it was on main (frozen in bench/legacy_ensemble.py). Every detector sees the rows in
order and scores row t from rows before it only (causal; tests/anomaly check a prefix run equals the
full run); every detector gets the same warm-up, the file's 15% probation period.

Scoring (bench/nab_scoring.py): NAB-style windows, three profiles, normalised 0 = silence, 100 = perfect,
ONE threshold per profile over the whole corpus, reported per source and overall. Then what an operator
sees: the share of normal rows (labelled 0, outside every window, after probation) at or above the
standard threshold and at 0.5 (the product's alarm level; meaningless for the baselines, whose scores are
not calibrated to it) per series, median and max; alarm onsets after the product's post-processing
(anomaly.alarms defaults) - incidents (windows) with an onset, and onsets on normal rows per 1,000 normal
rows; and the points per CPU-second of each detector in this process (CPU time, as the machine is
shared; bench/anomaly_eval.py --throughput-only gives a best-of-3 figure).

Honesty about tuning: the series are split in two halves by a hash of their name (``dev`` / ``held-out``).
Detector parameters were tuned looking only at the ``dev`` half; the second table chooses the threshold on
``dev`` and applies it unchanged to ``held-out``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # bench/ is not a package; this checkout's anomaly/ wins

import legacy_ensemble  # noqa: E402 - bench/ is not a package
import nab_scoring as nab  # noqa: E402

from anomaly.alarms import AlarmProcessor  # noqa: E402
from anomaly.ensemble import Score  # noqa: E402
from anomaly.offline import DEFAULT_DETECTOR, DETECTORS, Series, score_series  # noqa: E402

DEFAULT_CORPUS = HERE / ".corpus"
Scorer = Callable[[list[float], list[float], int], list[float]]


@dataclass
class CorpusFile:
    source: str
    name: str
    timestamps: list[float]
    values: list[float]
    labels: list[int]
    labelled: nab.LabelledFile = field(init=False)

    def __post_init__(self) -> None:
        self.labelled = nab.prepare(self.name, self.source, self.labels)

    half: str = field(default="dev", init=False)
    """``dev`` or ``held-out``: alternate series of each source, in an order fixed by a hash of the name."""


def load(corpus: Path) -> list[CorpusFile]:
    files = []
    for path in sorted(corpus.glob("*/*.csv")):
        with path.open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        files.append(
            CorpusFile(
                path.parent.name,
                path.stem,
                [float(r["timestamp"]) for r in rows],
                [float(r["value"]) for r in rows],
                [int(r["label"]) for r in rows],
            )
        )
    for source in {f.source for f in files}:
        mine = sorted(
            (f for f in files if f.source == source), key=lambda f: hashlib.sha256(f.name.encode()).digest()
        )
        for i, f in enumerate(mine):
            f.half = "dev" if i % 2 == 0 else "held-out"
    return files


# --- detectors ----------------------------------------------------------------------------------------


def windowed_gaussian(timestamps: list[float], values: list[float], warmup: int) -> list[float]:
    """Mean and deviation of the last ``window`` points, refreshed every ``step``; 1 - two-sided tail."""
    window, step = 6400, 100
    out: list[float] = []
    mean = std = 0.0
    for i, value in enumerate(values):
        if i % step == 0 and i:
            recent = values[max(0, i - window) : i]
            mean = sum(recent) / len(recent)
            std = math.sqrt(sum((v - mean) ** 2 for v in recent) / len(recent))
        if i < warmup or std == 0.0:
            out.append(0.0)
            continue
        z = abs(value - mean) / std
        out.append(1.0 - math.erfc(z / math.sqrt(2.0)))
    return out


def old_ensemble(timestamps: list[float], values: list[float], warmup: int) -> list[float]:
    return legacy_ensemble.UnivariateEnsemble(warmup_points=warmup).score_many(
        zip(timestamps, values, strict=True)
    )


def product(detector: str) -> Scorer:
    def run(timestamps: list[float], values: list[float], warmup: int) -> list[float]:
        series = Series(["timestamp", "value"], [], timestamps, values)
        return score_series(series, detector, warmup_points=warmup)

    return run


def scorers() -> dict[str, Scorer]:
    found: dict[str, Scorer] = {"windowed-gaussian": windowed_gaussian, "old-ensemble": old_ensemble}
    ordered = [DEFAULT_DETECTOR, *(d for d in DETECTORS if d != DEFAULT_DETECTOR)]
    found.update({d: product(d) for d in ordered})
    return found


# --- evaluation ---------------------------------------------------------------------------------------


@dataclass
class Result:
    detector: str
    scores: list[npt.NDArray[np.float64]]
    seconds: float
    points: int

    @property
    def rate(self) -> float:
        return self.points / self.seconds if self.seconds else math.inf


def run_all(files: Sequence[CorpusFile], chosen: dict[str, Scorer]) -> list[Result]:
    results = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()) as bar:
        task = bar.add_task("scoring", total=len(files) * len(chosen))
        for name, scorer in chosen.items():
            scores, seconds = [], 0.0
            for f in files:
                bar.update(task, description=f"{name}: {f.source}/{f.name}")
                began = time.process_time()
                out = scorer(f.timestamps, f.values, f.labelled.probation)
                seconds += time.process_time() - began
                scores.append(np.asarray(out, dtype=np.float64))
                bar.advance(task)
            results.append(Result(name, scores, seconds, sum(len(f.values) for f in files)))
    return results


def table(files: Sequence[CorpusFile], results: Sequence[Result]) -> tuple[list[str], dict[str, float]]:
    """NAB-style scores per source and overall, three profiles, one threshold per profile over the corpus.

    Also returns each detector's standard-profile threshold (the operator table uses it)."""
    sources = sorted({f.source for f in files})
    head = ["detector"]
    for profile in nab.PROFILES:
        head += [f"{s} {profile.name}" for s in sources] + [f"overall {profile.name}"]
    head += ["threshold (standard)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    thresholds: dict[str, float] = {}
    for r in results:
        cells = [r.detector]
        for profile in nab.PROFILES:
            threshold, overall = nab.best_threshold([f.labelled for f in files], r.scores, profile)
            tallies = [nab.tally(f.labelled, s, threshold) for f, s in zip(files, r.scores, strict=True)]
            for source in sources:
                picked = [t for f, t in zip(files, tallies, strict=True) if f.source == source]
                cells.append(f"{nab.normalised(picked, profile):.1f}")
            cells.append(f"**{overall:.1f}**")
            thresholds.setdefault(r.detector, threshold)
        cells.append(f"{thresholds[r.detector]:.4g}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines, thresholds


def alarm_onsets(scores: npt.NDArray[np.float64], start: int) -> list[int]:
    """Indexes where the product's alarm post-processing (its defaults: on 0.5, 3 points or 0.9 at once,
    off 0.3 for 3 points) triggers: what an operator is paged for."""
    alarm = AlarmProcessor("series", "bench")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    found = []
    for i in range(start, len(scores)):
        event = alarm.update(at, Score(float(scores[i]), "bench", 0.0))
        if event is not None and event.action == "trigger":
            found.append(i)
    return found


def operator_table(
    files: Sequence[CorpusFile], results: Sequence[Result], thresholds: dict[str, float]
) -> list[str]:
    """What an operator sees: the share of normal rows flagged, and alarm onsets after post-processing."""
    lines = [
        "| detector | flagged normal rows at the standard threshold: median / max | flagged at 0.5: median "
        "/ max | alarms (0.5, post-processed): incidents caught | false alarms per 1,000 normal rows | "
        "points per CPU-second |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        cells = [r.detector]
        for threshold in (thresholds[r.detector], 0.5):
            flags = [
                nab.tally(f.labelled, s, threshold).flagged_normal
                for f, s in zip(files, r.scores, strict=True)
                if f.labelled.normal.any()
            ]
            cells.append(f"{100 * statistics.median(flags):.2f}% / {100 * max(flags):.2f}%")
        caught = windows = false = normal = 0
        for f, s in zip(files, r.scores, strict=True):
            lab = f.labelled
            found = np.array(alarm_onsets(s, lab.probation), dtype=np.int64)
            inside = np.zeros(len(found), dtype=bool)
            for lo, hi in zip(lab.starts, lab.ends, strict=True):
                hits = (found >= lo) & (found <= hi)
                caught += bool(hits.any())
                inside |= hits
            windows += lab.windows
            false += int(lab.normal[found[~inside]].sum()) if len(found) else 0
            normal += int(lab.normal.sum())
        cells += [f"{caught}/{windows}", f"{1000 * false / normal:.2f}", f"{r.rate:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def split_table(files: Sequence[CorpusFile], results: Sequence[Result]) -> list[str]:
    """Threshold chosen on the dev half, applied unchanged to the held-out half (standard profile)."""
    profile = nab.PROFILES[0]
    dev = [i for i, f in enumerate(files) if f.half == "dev"]
    held = [i for i, f in enumerate(files) if f.half != "dev"]
    lines = [
        f"| detector | dev ({len(dev)} series, threshold chosen here) | held-out ({len(held)} series) |",
        "|---|---|---|",
    ]
    for r in results:
        threshold, on_dev = nab.best_threshold(
            [files[i].labelled for i in dev], [r.scores[i] for i in dev], profile
        )
        tallies = [nab.tally(files[i].labelled, r.scores[i], threshold) for i in held]
        lines.append(f"| {r.detector} | {on_dev:.1f} | {nab.normalised(tallies, profile):.1f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--detectors", help="comma-separated subset of the rows (default: all)")
    parser.add_argument("--half", choices=("dev", "held-out", "all"), default="all")
    args = parser.parse_args()
    files = load(args.corpus)
    if not files:
        parser.error(f"no series under {args.corpus}; build it with bench/anomaly_corpus.py")
    if args.half != "all":
        files = [f for f in files if f.half == args.half]
    chosen = scorers()
    if args.detectors:
        wanted = args.detectors.split(",")
        unknown = [w for w in wanted if w not in chosen]
        if unknown:
            parser.error(f"unknown detector(s) {', '.join(unknown)}; choose from {', '.join(chosen)}")
        chosen = {w: chosen[w] for w in wanted}
    by_source = {s: sum(1 for f in files if f.source == s) for s in sorted({f.source for f in files})}
    print(
        f"{len(files)} series ({', '.join(f'{s}: {n}' for s, n in by_source.items())}), "
        f"{sum(len(f.values) for f in files):,} points, "
        f"{sum(f.labelled.windows for f in files)} scored anomaly windows"
    )
    results = run_all(files, chosen)
    print("\nNAB-style normalised scores (one threshold per profile over these series):\n")
    lines, thresholds = table(files, results)
    print("\n".join(lines))
    print("\nAs an operator sees it (normal rows: labelled 0, outside every window, after probation):\n")
    print("\n".join(operator_table(files, results, thresholds)))
    if args.half == "all":
        print(
            "\nTuned on the dev half only; threshold chosen on dev, applied to held-out (standard profile):\n"
        )
        print("\n".join(split_table(files, results)))


if __name__ == "__main__":
    main()
