"""UNIT-LEVEL CHECK ONLY: anomaly/'s detectors on labelled series this script generates (seeded).

    .venv/bin/python bench/anomaly_eval.py [--seeds 5] [--throughput-points 200000] [--throughput-only]

These series were written by the same team as the detectors, so they show that a detector does what its
author meant - not that it works: ranked on them, the old ensemble came first; on real labelled series it
scored below silence. The evidence for detection quality is bench/anomaly_real_eval.py (real, labelled
operational series; docs/benchmarks.md, "Anomaly detection on real labelled series"). Keep this one for
what it is good at: a quick regression check per anomaly kind, the related-series (group) case, and the
throughput of the default detector in one process.

Series: 5-minute samples over 3 weeks with a daily and a weekly cycle and noise, each with one kind of
labelled anomaly: spikes, a level shift, a drift, a dropout, a gradual degradation. Every detector's scores
go through the same alarm post-processing (anomaly.alarms: min duration 3, instant 0.9, hysteresis
0.5/0.3), and its alarm onsets are scored by windows around each labelled anomaly, NAB-like: the first
onset in a window earns 2/(1+e^(5y))-1 (y from -1 at the window start to 0 at its end: early is better),
an onset outside every window costs 0.11, a missed window costs 1; the score is normalised to 0 for no
detection and 100 for perfect. Also: precision and recall of onsets, F1, and the mean detection delay.
The comparison baseline is a rolling z-score (window 100, threshold 3) under the same post-processing.
Throughput: points per CPU-second of the univariate ensemble in this one process (one core), best of 3.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's anomaly/, not an install

from anomaly.alarms import AlarmProcessor
from anomaly.ensemble import Score, UnivariateEnsemble
from anomaly.groups import GroupAlarm, GroupStep, MemberPoint, combine
from anomaly.multivariate import ResidualModel, WindowedIsolationForest

STEP = 300.0
DAY = 288
START = datetime(2026, 11, 2, tzinfo=UTC).timestamp()  # a Monday
WARMUP = 2 * DAY
DETECTORS = ("ensemble", "seasonal", "level-shift", "trend", "iforest", "zscore")
KINDS = ("spikes", "level_shift", "drift", "dropout", "degradation")


@dataclass
class Labelled:
    kind: str
    timestamps: list[float]
    values: list[float]
    windows: list[tuple[int, int, int]] = field(default_factory=list)
    """(window start, anomaly onset, window end) as point indexes."""


def generate(kind: str, seed: int, days: int = 21) -> Labelled:
    rng = random.Random(f"{kind}:{seed}")
    n = days * DAY
    noise = rng.uniform(1.0, 3.0)
    base = rng.uniform(80, 300)
    amp = rng.uniform(5, 15) * noise
    values = []
    for i in range(n):
        tod = (i % DAY) / DAY
        weekend = (i // DAY) % 7 >= 5
        daily = amp * max(0.0, math.sin(math.pi * (tod - 0.3) / 0.45)) if 0.3 <= tod <= 0.75 else 0.0
        values.append(base + (0.3 if weekend else 1.0) * daily + rng.gauss(0, noise))
    out = Labelled(kind, [START + i * STEP for i in range(n)], values)
    first = WARMUP + DAY
    if kind == "spikes":
        for onset in sorted(rng.sample(range(first, n - 20, 50), 5)):
            values[onset] += rng.choice((-1, 1)) * rng.uniform(8, 14) * noise
            out.windows.append((onset - 3, onset, onset + 12))
    elif kind == "level_shift":
        onset = rng.randrange(first, n - 2 * DAY)
        shift = rng.choice((-1, 1)) * rng.uniform(5, 9) * noise
        for i in range(onset, n):
            values[i] += shift
        out.windows.append((onset - 6, onset, onset + 72))
    elif kind == "drift":
        onset = rng.randrange(first, n - 2 * DAY)
        slope = rng.choice((-1, 1)) * rng.uniform(8, 12) * noise / DAY
        for i in range(onset, n):
            values[i] += slope * min(i - onset, DAY)
        out.windows.append((onset - 6, onset, onset + DAY))
    elif kind == "dropout":
        onset = rng.randrange(first, n - DAY)
        for i in range(onset, onset + 24):
            values[i] = 0.0
        out.windows.append((onset - 3, onset, onset + 36))
    elif kind == "degradation":
        onset = rng.randrange(first, n - 3 * DAY)
        for i in range(onset, n):
            grow = min((i - onset) / (2 * DAY), 1.0)
            values[i] += grow * 6 * noise + rng.gauss(0, grow * 2 * noise)
        out.windows.append((onset - 6, onset, onset + 2 * DAY))
    return out


def scores_for(series: Labelled, detector: str) -> list[Score | float]:
    if detector == "iforest":
        forest = WindowedIsolationForest(("value",), min_train=WARMUP)
        return list(forest.score_many([[v] for v in series.values]))
    only = None if detector == "ensemble" else detector
    ensemble = UnivariateEnsemble(warmup_points=WARMUP, only=only)
    return [ensemble.update(t, v) for t, v in zip(series.timestamps, series.values, strict=True)]


def onsets(series: Labelled, scores: list[Score | float]) -> list[int]:
    alarms = AlarmProcessor("value", "bench")
    found = []
    for i, (ts, s) in enumerate(zip(series.timestamps, scores, strict=True)):
        score = s if isinstance(s, Score) else Score(float(s), "iforest", series.values[i])
        event = alarms.update(datetime.fromtimestamp(ts, UTC), score)
        if event is not None and event.action == "trigger":
            found.append(i)
    return found


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    raw: float = 0.0
    perfect: float = 0.0
    null: float = 0.0
    delays: list[float] = field(default_factory=list)

    def add(self, series: Labelled, found: list[int]) -> None:
        inside: set[int] = set()
        for start, onset, end in series.windows:
            hits = [i for i in found if start <= i <= end]
            inside.update(hits)
            self.perfect += 2 / (1 + math.exp(-5)) - 1
            self.null -= 1.0
            if hits:
                self.tp += 1
                y = (hits[0] - end) / (end - start)
                self.raw += 2 / (1 + math.exp(5 * y)) - 1
                self.delays.append(max(0, hits[0] - onset) * STEP / 60)
            else:
                self.fn += 1
                self.raw -= 1.0
        false = [i for i in found if i not in inside]
        self.fp += len(false)
        self.raw -= 0.11 * len(false)

    def row(self, name: str) -> str:
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        nab = 100 * (self.raw - self.null) / (self.perfect - self.null)
        delay = sum(self.delays) / len(self.delays) if self.delays else math.nan
        return (
            f"| {name} | {precision:.2f} | {recall:.2f} | {f1:.2f} | {delay:.0f} | {nab:.1f} | "
            f"{self.tp} | {self.fp} | {self.fn} |"
        )


def throughput(points: int, repeats: int = 3) -> float:
    """Points per CPU-second of the default ensemble in this process, best of ``repeats`` (CPU time, not
    wall time: the machine is shared, and a busy neighbour must not halve the figure)."""
    rng = random.Random(7)
    data = [(START + i * STEP, 100 + 10 * math.sin(i / 40) + rng.gauss(0, 1)) for i in range(points)]
    best = 0.0
    for _ in range(repeats):
        ensemble = UnivariateEnsemble(warmup_points=WARMUP)
        began = time.process_time()
        ensemble.score_many(data)
        best = max(best, points / (time.process_time() - began))
    return best


# --- related series: latency, error rate and throughput of one system ---------------------------------

RELATED = ("latency", "errors", "throughput")
RELATED_ROWS = ("zscore", "ensemble", "ensemble+multivariate", "ensemble+multivariate (iforest)")


def generate_related(seed: int, days: int = 21) -> tuple[list[float], dict[str, list[float]], Labelled]:
    """Three series driven by one load (they move together), with one joint incident: latency and errors
    up, throughput down, each by 2.2-2.8 sigmas for 30 minutes, under every univariate threshold."""
    rng = random.Random(f"related:{seed}")
    n = days * DAY
    sigma = {"latency": 0.01, "errors": 0.001, "throughput": 4.0}
    base = {"latency": (0.2, 0.05), "errors": (0.005, 0.002), "throughput": (50.0, 100.0)}
    values: dict[str, list[float]] = {k: [] for k in RELATED}
    for i in range(n):
        tod, weekend = (i % DAY) / DAY, (i // DAY) % 7 >= 5
        load = (
            (0.3 if weekend else 1.0) * max(0.0, math.sin(math.pi * (tod - 0.3) / 0.45))
            if 0.3 <= tod <= 0.75
            else 0.0
        )
        shared = rng.gauss(0, 1)
        for k in RELATED:
            level, swing = base[k]
            values[k].append(level + swing * load + sigma[k] * (0.7 * shared + 0.71 * rng.gauss(0, 1)))
    onset = rng.randrange(WARMUP + 3 * DAY, n - DAY)
    size = rng.uniform(2.2, 2.8)
    for i in range(onset, onset + 6):
        for k, sign in zip(RELATED, (1, 1, -1), strict=True):
            values[k][i] += sign * size * sigma[k]
    label = Labelled("related", [START + i * STEP for i in range(n)], [], [(onset - 3, onset, onset + 24)])
    return label.timestamps, values, label


def related_onsets(ts: list[float], values: dict[str, list[float]], row: str) -> list[int]:
    """Alarm onsets of one row: every series' own alarm (zscore or the univariate ensemble), plus the
    group's alarm for the multivariate rows, covering each other as in the pipeline (MetricWatch)."""
    only = "zscore" if row == "zscore" else None
    scores = {
        k: [e.update(t, v) for t, v in zip(ts, values[k], strict=True)]
        for k in RELATED
        for e in [UnivariateEnsemble(warmup_points=WARMUP, only=only)]
    }
    steps: list[GroupStep | None] = [None] * len(ts)
    if row.startswith("ensemble+"):
        model = ResidualModel(
            RELATED,
            min_train=2 * DAY,
            train_size=5 * DAY,
            refit_every=DAY,
            threshold=1.25,
            model="iforest" if "iforest" in row else "covariance",
        )
        mv = model.score_many([[scores[k][i].z for k in RELATED] for i in range(WARMUP, len(ts))])
        for i, m in enumerate(mv, WARMUP):
            if m.fitted:
                points = {
                    k: MemberPoint(ts[i], scores[k][i].z, scores[k][i].score, "", True) for k in RELATED
                }
                steps[i] = GroupStep(ts[i], combine(m, points), m, RELATED)
    alarms = {k: AlarmProcessor(k, "bench") for k in RELATED}
    group = GroupAlarm(AlarmProcessor("group", "bench", instant=1.0))
    found = []
    for i, t in enumerate(ts):
        at = datetime.fromtimestamp(t, UTC)
        for k in RELATED:
            event = alarms[k].update(at, scores[k][i])
            if event is not None and event.action == "trigger" and not group.speaks:
                found.append(i)
        step = steps[i]
        if step is not None:
            event = group.update(step, members_alarmed=any(a.active for a in alarms.values()))
            if event is not None and event.action == "trigger":
                found.append(i)
    return sorted(set(found))


def multivariate_cost(vectors: int = 2000) -> tuple[float, float]:
    """Seconds per aligned vector scored one at a time (as in a pass) and to refit on 1440 vectors."""
    rng = random.Random(3)
    rows = [[rng.gauss(0, 1) for _ in range(4)] for _ in range(1440 + vectors)]
    model = ResidualModel(("a", "b", "c", "d"), min_train=1440, train_size=1440, refit_every=10**9)
    began = time.perf_counter()
    model.score_many(rows[:1440])
    fit = time.perf_counter() - began
    began = time.perf_counter()
    for r in rows[1440:]:
        model.update(r)
    return (time.perf_counter() - began) / vectors, fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="series per anomaly kind")
    parser.add_argument("--throughput-points", type=int, default=200_000)
    parser.add_argument("--related-seeds", type=int, default=5, help="related-series sets (joint incidents)")
    parser.add_argument("--throughput-only", action="store_true", help="only measure points per CPU-second")
    args = parser.parse_args()
    if args.throughput_only:
        rate = throughput(args.throughput_points)
        print(f"throughput (univariate ensemble, one core): {rate:,.0f} points per CPU-second")
        return
    tallies = {d: Tally() for d in DETECTORS}
    per_kind = {(d, k): Tally() for d in DETECTORS for k in KINDS}
    for kind in KINDS:
        for seed in range(args.seeds):
            series = generate(kind, seed)
            for detector in DETECTORS:
                found = onsets(series, scores_for(series, detector))
                tallies[detector].add(series, found)
                per_kind[(detector, kind)].add(series, found)
    head = "| detector | precision | recall | F1 | mean delay (min) | NAB-like score | TP | FP | FN |"
    print(f"{args.seeds} series per kind x {len(KINDS)} kinds, 21 days of 5-minute points each\n")
    print(head)
    print("|" + "---|" * 9)
    for detector in DETECTORS:
        print(tallies[detector].row(detector))
    print("\nNAB-like score per anomaly kind:\n")
    print("| detector | " + " | ".join(KINDS) + " |")
    print("|" + "---|" * (len(KINDS) + 1))
    for detector in DETECTORS:
        cells = []
        for kind in KINDS:
            t = per_kind[(detector, kind)]
            cells.append(f"{100 * (t.raw - t.null) / (t.perfect - t.null):.0f}")
        print(f"| {detector} | " + " | ".join(cells) + " |")
    related = {r: Tally() for r in RELATED_ROWS}
    for seed in range(args.related_seeds):
        ts, values, label = generate_related(seed)
        for name in RELATED_ROWS:
            related[name].add(label, related_onsets(ts, values, name))
    print(
        f"\nRelated series (latency, errors, throughput of one system), {args.related_seeds} sets, one joint "
        "incident each under every univariate threshold; onsets of any series' alarm or the group's:\n"
    )
    print(head)
    print("|" + "---|" * 9)
    for name in RELATED_ROWS:
        print(related[name].row(name))
    per_vector, fit = multivariate_cost()
    print(
        f"\nmultivariate (covariance, 4 series): {per_vector * 1e3:.2f} ms per aligned vector scored alone, "
        f"{fit:.2f} s to fit on 1,440 vectors"
    )
    rate = throughput(args.throughput_points)
    print(
        f"\nthroughput (univariate ensemble, one core): {rate:,.0f} points/s over {args.throughput_points:,}"
    )


if __name__ == "__main__":
    main()
