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
    Progress,
    Tally,
    _checksums,
    _differing,
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
from monitor.dualrun.normalise import concat, key_bucket, row_hash
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

    def _checksums(
        self,
        q: SourceQuery,
        key: Sequence[ColumnSpec],
        columns: Sequence[ColumnSpec],
        buckets: int,
        where: str | None,
    ) -> Checksums:
        bucket = self._bucket(q, key, buckets)
        text = concat([q.canon(c) for c in columns], q.dialect)
        extra = [where] if where else []
        sql = checksum_sql(q, bucket, row_hash(text, q.dialect), q.where(*extra))
        return _checksums(q.fetch(sql, checksum=True))

    def _rows(self, q: SourceQuery, columns: Sequence[ColumnSpec], condition: str) -> list[Row]:
        exprs = [q.canon(c) for c in columns]
        names = [c.name for c in columns]
        return [
            dict(zip(names, r, strict=True))
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
        headers = self._pair(
            lambda q: self._checksums(q, self.entity.key, header_cols, buckets, None), (legacy,), (new,)
        )
        self.tally.rows_legacy = sum(n for n, _ in headers[0].values())
        self.tally.rows_new = sum(n for n, _ in headers[1].values())
        differing, _ = _differing(*headers)
        suspect = set(differing)
        for line, lq, nq in self.line_sides:
            sums = self._pair(
                lambda q, ln=line: self._checksums(q, ln.parent, self._line_columns(ln), buckets, None),
                (lq,),
                (nq,),
            )
            suspect |= set(_differing(*sums)[0])
        # Objects in clean buckets match: count headers there.
        for b, (n, _) in headers[0].items():
            if b not in suspect and headers[1].get(b, (0, 0))[0] == n:
                self.tally.matched += n
        ordered = sorted(suspect)
        for i in range(0, len(ordered), IN_LIST):
            self._compare_buckets(ordered[i : i + IN_LIST], buckets)
        return self.tally

    def _compare_buckets(self, chunk: Sequence[int], buckets: int) -> None:
        self.progress("comparing objects")
        legacy, new = self.sides
        listed = ", ".join(str(b) for b in chunk)
        header_cols = (*self.entity.key, *self.entity.columns)
        width = len(self.entity.key)

        def objects(q: SourceQuery) -> Objects:
            rows = self._rows(q, header_cols, f"{self._bucket(q, self.entity.key, buckets)} IN ({listed})")
            return {tuple(str(v) for v in list(r.values())[:width]): r for r in rows}

        heads = self._pair(objects, (legacy,), (new,))
        lines: list[tuple[LineConfig, Lines, Lines]] = []
        for line, lq, nq in self.line_sides:

            def fetch(q: SourceQuery, ln: LineConfig = line) -> Lines:
                cols = self._line_columns(ln)
                found: Lines = defaultdict(list)
                for r in self._rows(q, cols, f"{self._bucket(q, ln.parent, buckets)} IN ({listed})"):
                    found[tuple(str(r[c.name]) for c in ln.parent)].append(r)
                return found

            a, b = self._pair(fetch, (lq,), (nq,))
            lines.append((line, a, b))
        keys = sorted(heads[0].keys() | heads[1].keys())  # lines of objects outside the filter: ignored
        for key in keys:
            self._compare_object(key, heads[0].get(key), heads[1].get(key), lines)

    def _compare_object(
        self, key: tuple[str, ...], a: Row | None, b: Row | None, lines: list[tuple[LineConfig, Lines, Lines]]
    ) -> None:
        entity = self.entity
        key_dict = dict(zip((c.name for c in entity.key), key, strict=True))
        if a is None or b is None:
            kind: DiffKind = "missing_in_new" if b is None else "extra_in_new"
            self.tally.add(difference(entity, entity.name, key_dict, kind, entity.columns, (), a, b))
            return
        diffs = compare_rows(entity, entity.columns, a, b)
        line_diffs: list[RowDifference] = []
        for line, la, lb in lines:
            line_diffs += self._compare_lines(line, la.get(key, []), lb.get(key, []))
        if not diffs and not line_diffs:
            self.tally.matched += 1
            return
        head = difference(entity, entity.name, key_dict, "changed", entity.columns, diffs, a, b)
        money = head.money_affected + sum((d.money_affected for d in line_diffs), Decimal(0))
        classes = [d.classification for d in line_diffs] + ([head.classification] if diffs else [])
        worst: Classification = "defect" if "defect" in classes else classes[0]
        self.tally.add(replace(head, lines=tuple(line_diffs), money_affected=money, classification=worst))

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
