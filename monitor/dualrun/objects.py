"""Header + lines business objects (invoice + lines, journal entry + lines) compared as one object.

Pushed down like the keyed diff: each side computes, per bucket of the header key's hash, the checksum of
its headers and, separately, of each line set (lines bucketed by their parent key, so an object's header
and lines land in the same bucket). A line's hash covers its parent key, its line key (if any) and its
compared columns; sums are order-free, so reordered lines hash the same. Buckets that differ in any table
are fetched and the objects compared in Python: header columns, then lines matched by line key or, without
one, by content (a multiset: a changed line is one line missing and one extra).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from monitor.dualrun.classify import clean, compare_rows, difference
from monitor.dualrun.keyed import (
    HASH_BUCKET_ROWS,
    IN_LIST,
    MAX_HASH_BUCKETS,
    Checksums,
    EntityDiff,
    Flags,
    Progress,
    Tally,
    _checksums,
    _differing,
    _flags,
    checksum_sql,
)
from monitor.dualrun.model import (
    Classification,
    ColumnSpec,
    DiffKind,
    EntityConfig,
    LineConfig,
    RowDifference,
)
from monitor.dualrun.normalise import (
    Normalisation,
    changed_flag,
    concat,
    key_bucket,
    normalisations,
    row_hash,
)
from monitor.dualrun.sql import Period, SourceQuery

Row = dict[str, str | None]
Objects = dict[tuple[str, ...], Row]
Lines = dict[tuple[str, ...], list[Row]]


class ObjectDiff(EntityDiff):
    def __init__(
        self,
        entity: EntityConfig,
        legacy: SourceQuery,
        new: SourceQuery,
        pool: ThreadPoolExecutor,
        progress: Progress | None = None,
        *,
        as_of: date | None = None,
        period: Period | None = None,
    ) -> None:
        super().__init__(entity, legacy, new, pool, progress)
        self.tally = Tally(entity.name, entity.sample_limit)
        # Normalisations: the header's (``total.scale``), then each line set's (``lines.amount.scale``).
        self.header_rules = normalisations((*entity.key, *entity.columns))
        self.line_rules = {ln.name: normalisations(self._line_columns(ln)) for ln in entity.lines}
        self.rule_names = [r.name for r in self.header_rules] + [
            f"{ln}.{r.name}" for ln, rules in self.line_rules.items() for r in rules
        ]
        self.tally.normalised = {name: {"legacy": 0, "new": 0} for name in self.rule_names}
        # Line queries: the line table on each side, restricted to the headers' filter through the bucket.
        self.line_sides = [
            (
                line,
                SourceQuery(legacy.source, line.legacy, as_of=as_of),
                SourceQuery(new.source, line.new, as_of=as_of),
            )
            for line in entity.lines
        ]

    # --- SQL ----------------------------------------------------------------------------------------

    @staticmethod
    def _bucket(q: SourceQuery, key: Sequence[ColumnSpec], buckets: int) -> str:
        return f"({key_bucket(concat([q.canon(c) for c in key], q.dialect), q.dialect)} % {buckets})"

    @staticmethod
    def _line_columns(line: LineConfig) -> tuple[ColumnSpec, ...]:
        return (*line.parent, *line.key, *line.columns)

    def _checksums(  # noqa: PLR0917 - one checksum query is made of exactly these
        self,
        q: SourceQuery,
        key: Sequence[ColumnSpec],
        columns: Sequence[ColumnSpec],
        buckets: int,
        where: str | None,
        rules: Sequence[Normalisation] = (),
    ) -> tuple[Checksums, Flags]:
        bucket = self._bucket(q, key, buckets)
        text = concat([q.canon(c) for c in columns], q.dialect)
        extra = [where] if where else []
        flags = [changed_flag(r, q.source.role, q.dialect, q.source.quote) for r in rules]
        rows = q.fetch(
            checksum_sql(q, bucket, row_hash(text, q.dialect), q.where(*extra), flags), checksum=True
        )
        return _checksums(rows), _flags(rows)

    def _rows(
        self,
        q: SourceQuery,
        columns: Sequence[ColumnSpec],
        condition: str,
        rules: Sequence[Normalisation] = (),
    ) -> list[tuple[Row, tuple[int, ...]]]:
        """Canonical rows, each with its per-rule flags (1: the normalisation changed a value of it)."""
        exprs = [q.canon(c) for c in columns]
        exprs += [changed_flag(r, q.source.role, q.dialect, q.source.quote) for r in rules]
        names = [c.name for c in columns]
        width = len(names)
        return [
            (dict(zip(names, r[:width], strict=True)), tuple(int(v or 0) for v in r[width:]))
            for r in q.fetch(f"SELECT {', '.join(exprs)} {q.from_clause()} {q.where(condition)}")
        ]

    def _pair(self, fn: Any, *args: Any) -> tuple[Any, Any]:
        futures = [self.pool.submit(fn, *a) for a in args]
        self.tally.queries += len(futures)
        first, second = (f.result() for f in futures)
        return first, second

    # --- run ----------------------------------------------------------------------------------------

    def run(self) -> Tally:
        legacy, new = self.sides
        header_cols = (*self.entity.key, *self.entity.columns)
        self.progress("object counts")
        counts = self._pair(
            lambda q: int(q.fetch(f"SELECT COUNT(*) {q.from_clause()} {q.where()}")[0][0]), (legacy,), (new,)
        )
        rows = max(counts)
        buckets = min(MAX_HASH_BUCKETS, 1 << max(0, math.ceil(math.log2(max(1, rows / HASH_BUCKET_ROWS)))))
        self.progress(f"checksums ({buckets} buckets)")
        (headers_a, flags_a), (headers_b, flags_b) = self._pair(
            lambda q: self._checksums(q, self.entity.key, header_cols, buckets, None, self.header_rules),
            (legacy,),
            (new,),
        )
        headers = (headers_a, headers_b)
        self.tally.rows_legacy = sum(n for n, _ in headers[0].values())
        self.tally.rows_new = sum(n for n, _ in headers[1].values())
        differing, _ = _differing(*headers)
        suspect = set(differing)
        bucket_flags: list[tuple[Flags, Flags]] = [(flags_a, flags_b)]
        for line, lq, nq in self.line_sides:
            (sums_a, line_a), (sums_b, line_b) = self._pair(
                lambda q, ln=line: self._checksums(
                    q, ln.parent, self._line_columns(ln), buckets, None, self.line_rules[ln.name]
                ),
                (lq,),
                (nq,),
            )
            suspect |= set(_differing(sums_a, sums_b)[0])
            bucket_flags.append((line_a, line_b))
        # Objects in clean buckets match: count headers there (and what the normalisations changed in them).
        for b, (n, _) in headers[0].items():
            if b not in suspect and headers[1].get(b, (0, 0))[0] == n:
                self.tally.matched += n
                self._count_flags(b, bucket_flags)
        ordered = sorted(suspect)
        for i in range(0, len(ordered), IN_LIST):
            self._compare_buckets(ordered[i : i + IN_LIST], buckets)
        return self.tally

    def _count_flags(self, bucket: int, found: list[tuple[Flags, Flags]]) -> None:
        """Add one clean bucket's per-rule counts: the header's rules, then each line set's."""
        widths = [len(self.header_rules)] + [len(self.line_rules[ln.name]) for ln in self.entity.lines]
        legacy: list[int] = []
        new: list[int] = []
        for (a, b), width in zip(found, widths, strict=True):
            legacy += a.get(bucket, (0,) * width)
            new += b.get(bucket, (0,) * width)
        if self.rule_names:
            self.tally.count_normalised(self.rule_names, legacy, new)

    def _compare_buckets(self, chunk: Sequence[int], buckets: int) -> None:
        self.progress("comparing objects")
        legacy, new = self.sides
        listed = ", ".join(str(b) for b in chunk)
        header_cols = (*self.entity.key, *self.entity.columns)
        width = len(self.entity.key)

        # per object key and side: the per-rule flags of its header and lines (summed), in rule_names order
        flags: list[dict[tuple[str, ...], list[int]]] = [{}, {}]
        total = len(self.rule_names)

        def add_flags(side: int, key: tuple[str, ...], offset: int, values: tuple[int, ...]) -> None:
            counts = flags[side].setdefault(key, [0] * total)
            for i, v in enumerate(values):
                counts[offset + i] += v

        def objects(q: SourceQuery) -> Objects:
            condition = f"{self._bucket(q, self.entity.key, buckets)} IN ({listed})"
            found: Objects = {}
            for r, row_flags in self._rows(q, header_cols, condition, self.header_rules):
                key = tuple(str(v) for v in list(r.values())[:width])
                found[key] = r
                add_flags(0 if q.source.role == "legacy" else 1, key, 0, row_flags)
            return found

        heads = self._pair(objects, (legacy,), (new,))
        lines: list[tuple[LineConfig, Lines, Lines]] = []
        offset = len(self.header_rules)
        for line, lq, nq in self.line_sides:

            def fetch(q: SourceQuery, ln: LineConfig = line, at: int = offset) -> Lines:
                cols = self._line_columns(ln)
                found: Lines = defaultdict(list)
                condition = f"{self._bucket(q, ln.parent, buckets)} IN ({listed})"
                for r, row_flags in self._rows(q, cols, condition, self.line_rules[ln.name]):
                    key = tuple(str(r[c.name]) for c in ln.parent)
                    found[key].append(r)
                    add_flags(0 if q.source.role == "legacy" else 1, key, at, row_flags)
                return found

            a, b = self._pair(fetch, (lq,), (nq,))
            lines.append((line, a, b))
            offset += len(self.line_rules[line.name])
        keys = sorted(heads[0].keys() | heads[1].keys())  # lines of objects outside the filter: ignored
        for key in keys:
            if self._compare_object(key, heads[0].get(key), heads[1].get(key), lines) and total:
                none = [0] * total
                self.tally.count_normalised(self.rule_names, flags[0].get(key, none), flags[1].get(key, none))

    def _compare_object(
        self, key: tuple[str, ...], a: Row | None, b: Row | None, lines: list[tuple[LineConfig, Lines, Lines]]
    ) -> bool:
        """Compare one object; True when it matched."""
        entity = self.entity
        key_dict = dict(zip((c.name for c in entity.key), key, strict=True))
        if a is None or b is None:
            kind: DiffKind = "missing_in_new" if b is None else "extra_in_new"
            self.tally.add(difference(entity, entity.name, key_dict, kind, entity.columns, (), a, b))
            return False
        diffs = compare_rows(entity, entity.columns, a, b)
        line_diffs: list[RowDifference] = []
        for line, la, lb in lines:
            line_diffs += self._compare_lines(line, la.get(key, []), lb.get(key, []))
        if not diffs and not line_diffs:
            self.tally.matched += 1
            return True
        head = difference(entity, entity.name, key_dict, "changed", entity.columns, diffs, a, b)
        money = head.money_affected + sum((d.money_affected for d in line_diffs), Decimal(0))
        classes = [d.classification for d in line_diffs] + ([head.classification] if diffs else [])
        worst: Classification = "defect" if "defect" in classes else classes[0]
        self.tally.add(replace(head, lines=tuple(line_diffs), money_affected=money, classification=worst))
        return False

    def _compare_lines(self, line: LineConfig, mine: list[Row], theirs: list[Row]) -> list[RowDifference]:
        name = f"{self.entity.name}.{line.name}"
        cols = line.columns
        found: list[RowDifference] = []
        if line.key:
            index_a = {tuple(str(r[c.name]) for c in line.key): r for r in mine}
            index_b = {tuple(str(r[c.name]) for c in line.key): r for r in theirs}
            for lk in sorted(index_a.keys() | index_b.keys()):
                ra, rb = index_a.get(lk), index_b.get(lk)
                key = dict(zip((c.name for c in line.key), lk, strict=True))
                if ra is not None and rb is not None:
                    diffs = compare_rows(self.entity, cols, ra, rb)
                    if diffs:
                        found.append(difference(self.entity, name, key, "changed", cols, diffs, ra, rb))
                elif ra is not None:
                    found.append(difference(self.entity, name, key, "missing_in_new", cols, (), ra, None))
                else:
                    found.append(difference(self.entity, name, key, "extra_in_new", cols, (), None, rb))
            return found
        content = [c.name for c in cols]

        def signature(r: Row) -> tuple[str | None, ...]:
            return tuple(clean(r[c]) for c in content)

        count_a = Counter(signature(r) for r in mine)
        count_b = Counter(signature(r) for r in theirs)
        for sig, n in sorted((count_a - count_b).items(), key=str):
            row = dict(zip(content, sig, strict=True))
            found += [difference(self.entity, name, {}, "missing_in_new", cols, (), row, None)] * n
        for sig, n in sorted((count_b - count_a).items(), key=str):
            row = dict(zip(content, sig, strict=True))
            found += [difference(self.entity, name, {}, "extra_in_new", cols, (), None, row)] * n
        return found
