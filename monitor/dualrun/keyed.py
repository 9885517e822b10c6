"""Keyed row diff: checksums pushed down into both databases, bisected, then rows compared column by column.

1. Each side computes, in one pass, a checksum per *segment* of keys: ``COUNT(*)`` and the sum (mod 2**64)
   of the 64-bit SHA-256 of each row's canonical text, ``GROUP BY`` the segment. For an integer leading key a
   segment is a key range (``(id - lo) / S``, a power of two, at most ~8k segments), so later passes are index
   range scans; otherwise a segment is a bucket of the SHA-256 of the key text.
   The hashed text skips conversions the source column types make unnecessary (read once per side from a
   zero-row query, :meth:`~monitor.dualrun.sql.SourceQuery.describe`).
2. Segments whose count or sum differ are re-checksummed at a 64x finer size, only inside their ranges,
   until they hold at most ``segment_rows`` keys.
3. The rows of the differing finest segments are fetched (in batches: memory stays bounded) and compared
   column by column with tolerances (:mod:`monitor.dualrun.classify`).

Both sides run each step at the same time (two threads, two connections). Matching segments count as
matched rows without leaving the database.
"""

# size: the keyed diff's passes (plan, checksum levels, fetches) and the row comparison share their state

from __future__ import annotations

import itertools
import logging
import math
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from monitor.dualrun.checkpoint import Checkpoint
from monitor.dualrun.classify import compare_rows, difference
from monitor.dualrun.model import (
    ColumnSpec,
    EntityConfig,
    EntityKind,
    EntityResult,
    RowDifference,
)
from monitor.dualrun.normalise import (
    changed_flag,
    concat,
    hash_sum,
    key_bucket,
    mod64,
    normalisations,
    row_hash,
)
from monitor.dualrun.sql import SourceQuery

log = logging.getLogger(__name__)

MAX_SEGMENTS = 8192
"""Segments per side in the first pass (a power of two)."""
REFINE = 64
"""Each bisection step splits a differing segment into this many."""
FETCH_BATCH_KEYS = 20_000
"""Keys (range width, or estimated rows) fetched per side per batch: the memory bound."""
HASH_BUCKET_ROWS = 16
"""Rows per bucket aimed at for keys that are not integers (bucketed by key hash)."""
MAX_HASH_BUCKETS = 1 << 18
IN_LIST = 5_000
CHUNK_KEYS = 1 << 22
"""With a checkpoint file: keys compared (and recorded) per chunk (whole segments)."""
SPLIT_FIRST_PASS = {"mysql": 2}
"""MariaDB/MySQL run a query on one core: their first pass is split into this many key ranges, run at once.
(PostgreSQL hashes in parallel workers itself; SQLite's hashing is Python, bound by the GIL.)"""

Progress = Callable[[str], None]
T = TypeVar("T")


@dataclass
class Tally:
    """Counts, money and bounded samples of one entity's differences, accumulated as they are found."""

    name: str
    sample_limit: int
    matched: int = 0
    changed: int = 0
    missing_in_new: int = 0
    extra_in_new: int = 0
    money: Decimal = Decimal("0.00")
    by_class: Counter[str] = field(default_factory=Counter)
    money_by_class: dict[str, Decimal] = field(default_factory=lambda: defaultdict(lambda: Decimal("0.00")))
    samples: list[RowDifference] = field(default_factory=list)
    rows_legacy: int = 0
    rows_new: int = 0
    queries: int = 0
    normalised: dict[str, dict[str, int]] = field(default_factory=dict)
    plan: str = ""

    def count_normalised(self, rules: Sequence[str], legacy: Sequence[Any], new: Sequence[Any]) -> None:
        """Add matched rows' (or segments') per-rule counts of values a normalisation changed, per side."""
        for rule, a, b in zip(rules, legacy, new, strict=True):
            counts = self.normalised.setdefault(rule, {"legacy": 0, "new": 0})
            counts["legacy"] += int(a or 0)
            counts["new"] += int(b or 0)

    def add(self, diff: RowDifference) -> None:
        if diff.kind == "changed":
            self.changed += 1
        elif diff.kind == "missing_in_new":
            self.missing_in_new += 1
        else:
            self.extra_in_new += 1
        self.money += diff.money_affected
        self.by_class[diff.classification] += 1
        self.money_by_class[diff.classification] += diff.money_affected
        if len(self.samples) < self.sample_limit:
            self.samples.append(diff)

    def result(self, kind: EntityKind, period: str | None, duration_s: float) -> EntityResult:
        return EntityResult(
            entity=self.name,
            kind=kind,
            period=period,
            matched=self.matched,
            changed=self.changed,
            missing_in_new=self.missing_in_new,
            extra_in_new=self.extra_in_new,
            money_affected=self.money,
            by_classification=dict(self.by_class),
            money_by_classification=dict(self.money_by_class),
            samples=tuple(self.samples),
            duration_s=duration_s,
            rows_legacy=self.rows_legacy,
            rows_new=self.rows_new,
            queries=self.queries,
            normalised={rule: dict(sides) for rule, sides in self.normalised.items()},
            plan=self.plan,
        )


Checksums = dict[int, tuple[int, int]]
"""Segment -> (row count, hash sum mod 2**64)."""
Flags = dict[int, tuple[int, ...]]
"""Segment -> per normalisation rule, the rows whose value it changed."""


def _checksums(rows: Sequence[tuple[Any, ...]]) -> Checksums:
    return {int(row[0]): (int(row[1]), mod64(row[2])) for row in rows}


def _flags(rows: Sequence[tuple[Any, ...]]) -> Flags:
    return {int(row[0]): tuple(int(v or 0) for v in row[3:]) for row in rows}


def _differing(a: Checksums, b: Checksums) -> tuple[list[int], int]:
    """Segments that differ, and the rows of the segments that match."""
    matched = 0
    differing = []
    for segment in sorted(a.keys() | b.keys()):
        mine, theirs = a.get(segment, (0, 0)), b.get(segment, (0, 0))
        if mine == theirs:
            matched += mine[0]
        else:
            differing.append(segment)
    return differing, matched


def checksum_sql(q: SourceQuery, bucket: str, hash_expr: str, where: str, flags: Sequence[str] = ()) -> str:
    """``(segment, COUNT(*), hash sum, SUM(flag)...)`` per segment; run it with ``q.fetch(...,
    checksum=True)`` so that PostgreSQL hashes the rows in parallel workers (see
    :meth:`monitor.dualrun.sql.Source.connect`).
    ``flags``: per normalisation rule, 1 when it changed the row (counted per segment)."""
    total = hash_sum(hash_expr, q.dialect)
    extra = "".join(f", SUM({flag})" for flag in flags)
    return f"SELECT {bucket} AS b, COUNT(*), {total}{extra} {q.from_clause()} {where} GROUP BY {bucket}"


def _warm(q: SourceQuery) -> None:
    """Open one connection into the side's pool (a NullPool engine: a wasted connect, nothing worse)."""
    try:
        with q.source.engine.connect():
            pass
    except SQLAlchemyError:  # the real query will say what is wrong
        log.debug("dual-run: warming a connection failed", extra={"source": q.source.name})


def _merge(ranges: Iterator[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for lo, hi in ranges:
        if merged and merged[-1][1] + 1 >= lo:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


class EntityDiff:
    """What every comparison of one entity starts from: the entity, its legacy and new side, the pool the
    two sides' queries run on at once, and where progress messages go."""

    def __init__(
        self,
        entity: EntityConfig,
        legacy: SourceQuery,
        new: SourceQuery,
        pool: ThreadPoolExecutor,
        progress: Progress | None = None,
    ) -> None:
        self.entity = entity
        self.sides = (legacy, new)
        self.pool = pool
        self.progress: Progress = progress or (lambda _msg: None)


class KeyedDiff(EntityDiff):
    """One entity's keyed diff between two sides. ``run`` fills a :class:`Tally`."""

    def __init__(
        self,
        entity: EntityConfig,
        legacy: SourceQuery,
        new: SourceQuery,
        pool: ThreadPoolExecutor,
        progress: Progress | None = None,
        *,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        super().__init__(entity, legacy, new, pool, progress)
        self.checkpoint = checkpoint
        self.keys: tuple[ColumnSpec, ...] = entity.key
        self.columns: tuple[ColumnSpec, ...] = entity.columns
        self.mapped = tuple(c for c in (*self.keys, *self.columns) if c.map)
        self.tally = Tally(entity.name, entity.sample_limit)
        self.rules = normalisations((*self.keys, *self.columns))
        self.tally.normalised = {r.name: {"legacy": 0, "new": 0} for r in self.rules}
        self.ranged = self.keys[0].type == "integer"

    # --- the plan -----------------------------------------------------------------------------------

    def _plan(self) -> tuple[bool, str]:
        """Key ranges (index range scans, bisected) when the leading key is an integer, declared
        (``type: integer``) or found in both databases; else key-hash buckets, with the reason why."""
        first = self.keys[0]
        if first.type == "integer":
            return True, f"key ranges on {first.name}"
        natives = [q.natives.get(first.name) for q in self.sides]
        kinds = [n.kind if n is not None else "unknown" for n in natives]
        if first.type == "text" and kinds == ["integer", "integer"]:
            return True, f"key ranges on {first.name} (an integer column in both databases)"
        if first.type != "text":
            why = f"the leading key {first.name} is compared as {first.type}"
        else:
            sides = ", ".join(
                f"{kind} on the {q.source.role} side" for q, kind in zip(self.sides, kinds, strict=True)
            )
            why = f"the leading key {first.name} is not an integer column in both databases ({sides})"
        return False, (
            f"key-hash buckets (slower: every pass reads the whole table): {why}; key ranges need an integer "
            "leading key (declare type: integer if its values are whole numbers)"
        )

    def _rule_flags(self, q: SourceQuery) -> list[str]:
        """Per rule, SQL flagging a row it changes; ``0`` for a rounding the column's stored type rules out
        (a ``DECIMAL(p,2)`` or integer column is never changed by rounding to 2 places: no cost per row)."""
        flags = []
        for rule in self.rules:
            native = q.natives.get(rule.column.name)
            exact = native is not None and (
                native.kind == "integer"
                or (
                    native.kind == "decimal"
                    and native.scale is not None
                    and native.scale <= rule.column.decimal_scale
                )
            )
            if rule.name.endswith(".scale") and exact:
                flags.append("0")
            else:
                flags.append(changed_flag(rule, q.source.role, q.dialect, q.source.quote))
        return flags

    # --- SQL pieces ---------------------------------------------------------------------------------

    def _hash(self, q: SourceQuery) -> str:
        parts = [q.canon(c, lean=True) for c in (*self.keys, *self.columns)]
        return row_hash(concat(parts, q.dialect), q.dialect)

    def _key_bucket(self, q: SourceQuery, buckets: int) -> str:
        text = concat([q.canon(c, lean=True) for c in self.keys], q.dialect)
        return f"({key_bucket(text, q.dialect)} % {buckets})"

    def _range_bucket(self, q: SourceQuery, lo: int, size: int) -> str:
        raw = q.raw(self.keys[0])
        native = q.natives.get(self.keys[0].name)
        if native is not None and native.kind == "integer":
            return f"(({raw} - {lo}) DIV {size})" if q.dialect == "mysql" else f"(({raw} - {lo}) / {size})"
        if q.dialect == "postgresql":
            return f"((CAST({raw} AS bigint) - {lo}) / {size})"
        if q.dialect == "mysql":
            return f"((CAST({raw} AS SIGNED) - {lo}) DIV {size})"
        return f"((CAST({raw} AS INTEGER) - {lo}) / {size})"

    def _ranges_condition(self, q: SourceQuery, ranges: Sequence[tuple[int, int]]) -> str:
        raw = q.raw(self.keys[0])
        parts = [f"{raw} = {a}" if a == b else f"{raw} BETWEEN {a} AND {b}" for a, b in ranges]
        return "(" + " OR ".join(parts) + ")"

    def _both(self, fn: Callable[[SourceQuery], T]) -> tuple[T, T]:
        futures = [self.pool.submit(fn, q) for q in self.sides]
        self.tally.queries += 2
        legacy, new = (f.result() for f in futures)
        return legacy, new

    # --- the passes ---------------------------------------------------------------------------------

    def run(self) -> Tally:
        self.progress("column types")

        def describe(q: SourceQuery) -> None:
            q.describe((*self.keys, *self.columns))

        for future in [self.pool.submit(describe, q) for q in self.sides]:  # (not counted as a pass)
            future.result()
        self.ranged, self.tally.plan = self._plan()
        if self.ranged:
            log.info("dual-run plan", extra={"entity": self.entity.name, "plan": self.tally.plan})
        else:
            log.warning("dual-run slower plan", extra={"entity": self.entity.name, "plan": self.tally.plan})
        if self.ranged:
            self._run_ranged()
        else:
            self._run_hashed()
        return self.tally

    def _run_ranged(self) -> None:
        def bounds(q: SourceQuery) -> tuple[Any, Any]:
            raw = q.raw(self.keys[0])
            # a split first pass needs more connections: open them (into the engine's pool) meanwhile
            warm = [
                threading.Thread(target=_warm, args=(q,))
                for _ in range(SPLIT_FIRST_PASS.get(q.dialect, 1) - 1)
            ]
            for thread in warm:
                thread.start()
            with q.source.connect() as conn:
                row = q.execute(conn, f"SELECT MIN({raw}), MAX({raw}) {q.from_clause()} {q.where()}").one()
            for thread in warm:
                thread.join()
            return row[0], row[1]

        self.progress("key range")
        found = [v for pair in self._both(bounds) for v in pair if v is not None]
        if not found:
            return
        lo, hi = int(min(found)), int(max(found))
        size = 1 << max(0, math.ceil(math.log2(max(1, (hi - lo + 1) / MAX_SEGMENTS))))
        if self.checkpoint is None:
            self._ranged_span(lo, hi, size, None)
            return
        # with a checkpoint: chunks of whole segments, each recorded once compared
        sides = [q.params() for q in self.sides]
        fingerprint = self.checkpoint.fingerprint(self.entity.model_dump_json(), sides, lo, hi)
        start = self.checkpoint.resume(self.entity.name, fingerprint, self.tally)
        if start is not None:
            self.progress(f"resuming at key {start}")
            log.info("dual-run resumed", extra={"entity": self.entity.name, "next_key": start})
        chunk = max(size, CHUNK_KEYS // size * size)
        for first in range(lo if start is None else start, hi + 1, chunk):
            last = min(hi, first + chunk - 1)
            self._ranged_span(lo, hi, size, [(first, last)])
            self.checkpoint.save(self.entity.name, fingerprint, last + 1, self.tally)

    def _ranged_span(self, lo: int, hi: int, size: int, ranges: list[tuple[int, int]] | None) -> None:
        """Checksum levels then fetches over the key ranges (None: the whole table), segments from ``lo``."""
        level = 1
        first = True
        while True:
            self.progress(f"checksums, level {level} ({size} keys/segment)")
            differing = self._segment_level(lo, size, ranges, hi, first=first)
            first = False
            if not differing:
                return
            spans = _merge((lo + s * size, lo + (s + 1) * size - 1) for s in differing)
            if size <= self.entity.segment_rows:
                self._fetch_ranges(spans)
                return
            ranges, size, level = spans, max(1, size // REFINE), level + 1

    def _segment_level(
        self, lo: int, size: int, ranges: list[tuple[int, int]] | None, hi: int, *, first: bool = False
    ) -> list[int]:
        def one(q: SourceQuery, chunk: Sequence[tuple[int, int]] | None) -> tuple[Checksums, Flags]:
            bucket = self._range_bucket(q, lo, size)
            more = [self._ranges_condition(q, chunk)] if chunk else []
            sql = checksum_sql(q, bucket, self._hash(q), q.where(*more), self._rule_flags(q))
            rows = q.fetch(sql, checksum=True)
            return _checksums(rows), _flags(rows)

        def checksums(q: SourceQuery, chunk: Sequence[tuple[int, int]] | None) -> tuple[Checksums, Flags]:
            parts = SPLIT_FIRST_PASS.get(q.dialect, 1) if chunk is None else 1
            segments = (hi - lo) // size + 1
            if parts < 2 or segments < parts:
                return one(q, chunk)
            cuts = [segments * k // parts for k in range(parts + 1)]  # segment-aligned: no segment split
            spans = [[(lo + a * size, lo + b * size - 1)] for a, b in itertools.pairwise(cuts)]
            with ThreadPoolExecutor(parts, thread_name_prefix="dualrun-part") as pool:
                found: Checksums = {}
                flags: Flags = {}
                for part, part_flags in pool.map(lambda span: one(q, span), spans):
                    found.update(part)
                    flags.update(part_flags)
            self.tally.queries += parts - 1
            return found, flags

        differing: list[int] = []
        chunks: list[Sequence[tuple[int, int]] | None] = (
            [None] if ranges is None else [ranges[i : i + 500] for i in range(0, len(ranges), 500)]
        )
        for chunk in chunks:

            def level(q: SourceQuery, c: Sequence[tuple[int, int]] | None = chunk) -> tuple[Checksums, Flags]:
                return checksums(q, c)

            (legacy, legacy_flags), (new, new_flags) = self._both(level)
            if first:
                self.tally.rows_legacy += sum(n for n, _ in legacy.values())
                self.tally.rows_new += sum(n for n, _ in new.values())
            found, matched = _differing(legacy, new)
            differing.extend(found)
            self.tally.matched += matched
            self._count_matched_flags(legacy_flags, new_flags, set(found))
        return differing

    def _count_matched_flags(self, legacy: Flags, new: Flags, differing: set[int]) -> None:
        if not self.rules:
            return
        none = (0,) * len(self.rules)
        names = [r.name for r in self.rules]
        for segment in (legacy.keys() | new.keys()) - differing:
            self.tally.count_normalised(names, legacy.get(segment, none), new.get(segment, none))

    def _fetch_ranges(self, spans: list[tuple[int, int]]) -> None:
        batches: list[list[tuple[int, int]]] = [[]]
        width = 0
        for span in spans:
            if width >= FETCH_BATCH_KEYS or len(batches[-1]) >= 500:
                batches.append([])
                width = 0
            batches[-1].append(span)
            width += span[1] - span[0] + 1
        for batch in batches:
            if batch:

                def condition(q: SourceQuery, b: Sequence[tuple[int, int]] = batch) -> str:
                    return self._ranges_condition(q, b)

                self._compare_batch(condition)

    def _run_hashed(self) -> None:
        self.progress("row counts")

        def count(q: SourceQuery) -> int:
            with q.source.connect() as conn:
                return int(q.execute(conn, f"SELECT COUNT(*) {q.from_clause()} {q.where()}").scalar_one())

        counts = self._both(count)
        rows = max(counts)
        if rows == 0:
            return
        buckets = 1 << max(0, math.ceil(math.log2(max(1, rows / HASH_BUCKET_ROWS))))
        buckets = min(buckets, MAX_HASH_BUCKETS)

        def checksums(q: SourceQuery) -> tuple[Checksums, Flags]:
            sql = checksum_sql(q, self._key_bucket(q, buckets), self._hash(q), q.where(), self._rule_flags(q))
            rows = q.fetch(sql, checksum=True)
            return _checksums(rows), _flags(rows)

        self.progress(f"checksums ({buckets} key-hash buckets)")
        (legacy, legacy_flags), (new, new_flags) = self._both(checksums)
        self.tally.rows_legacy = sum(n for n, _ in legacy.values())
        self.tally.rows_new = sum(n for n, _ in new.values())
        differing, matched = _differing(legacy, new)
        self.tally.matched += matched
        self._count_matched_flags(legacy_flags, new_flags, set(differing))
        per_batch = max(1, min(IN_LIST, FETCH_BATCH_KEYS * buckets // max(rows, 1)))
        for i in range(0, len(differing), per_batch):
            chunk = differing[i : i + per_batch]
            listed = ", ".join(str(b) for b in chunk)

            def condition(q: SourceQuery, c: str = listed) -> str:
                return f"{self._key_bucket(q, buckets)} IN ({c})"

            self._compare_batch(condition)

    # --- rows ---------------------------------------------------------------------------------------

    def _select_rows(self, q: SourceQuery, condition: str) -> list[tuple[Any, ...]]:
        exprs = [q.canon(c) for c in (*self.keys, *self.columns)]
        if q.source.role == "legacy":
            exprs += [q.canon(c, mapped=False) for c in self.mapped]
        exprs += self._rule_flags(q)
        return q.fetch(f"SELECT {', '.join(exprs)} {q.from_clause()} {q.where(condition)}")

    def _compare_batch(self, condition: Callable[[SourceQuery], str]) -> None:
        self.progress("comparing rows")
        legacy_rows, new_rows = self._both(lambda q: self._select_rows(q, condition(q)))
        rules = [r.name for r in self.rules]
        compare_fetched(self.entity, self.tally, legacy_rows, new_rows, self.mapped, rules=rules)


def compare_fetched(
    entity: EntityConfig,
    tally: Tally,
    legacy_rows: Sequence[tuple[Any, ...]],
    new_rows: Sequence[tuple[Any, ...]],
    mapped: Sequence[ColumnSpec] = (),
    *,
    rules: Sequence[str] = (),
) -> None:
    """Match fetched canonical rows by key and add each difference (and each match) to the tally.

    ``rules``: each row ends with one flag per normalisation rule (1: the rule changed its value); a match
    counts them (:attr:`Tally.normalised`)."""
    keys, columns = entity.key, entity.columns
    flagged = len(rules)

    def matched(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
        tally.matched += 1
        if flagged:
            tally.count_normalised(rules, a[-flagged:], b[-flagged:])

    names = [c.name for c in (*keys, *columns)]
    width, width_all = len(keys), len(names)

    def index(rows: Sequence[tuple[Any, ...]]) -> dict[tuple[str, ...], list[tuple[Any, ...]]]:
        found: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for row in rows:
            key = tuple(map(str, row[:width]))
            if key in found:
                found[key].append(row)
            else:
                found[key] = [row]
        return found

    legacy, new = index(legacy_rows), index(new_rows)
    for key in sorted(legacy.keys() | new.keys()):
        mine, theirs = legacy.get(key, []), new.get(key, [])
        for n in range(max(len(mine), len(theirs))):
            a = mine[n] if n < len(mine) else None
            b = theirs[n] if n < len(theirs) else None
            if a is not None and b is not None and a[:width_all] == b[:width_all]:
                matched(a, b)  # equal canonical text is equal (compare_value): no diff to build
                continue
            key_dict = dict(zip((c.name for c in keys), key, strict=True))
            a_row = dict(zip(names, a[: len(names)], strict=True)) if a is not None else None
            b_row = dict(zip(names, b[: len(names)], strict=True)) if b is not None else None
            unmapped = (
                dict(zip((c.name for c in mapped), a[len(names) : len(names) + len(mapped)], strict=True))
                if a is not None
                else {}
            )
            if a is not None and b is not None and a_row is not None and b_row is not None:
                diffs = compare_rows(entity, columns, a_row, b_row)
                if not diffs:
                    matched(a, b)
                    continue
                tally.add(
                    difference(
                        entity, entity.name, key_dict, "changed", columns, diffs, a_row, b_row, unmapped
                    )
                )
            elif a_row is not None:
                tally.add(
                    difference(
                        entity, entity.name, key_dict, "missing_in_new", columns, (), a_row, None, unmapped
                    )
                )
            elif b_row is not None:
                tally.add(difference(entity, entity.name, key_dict, "extra_in_new", columns, (), None, b_row))
