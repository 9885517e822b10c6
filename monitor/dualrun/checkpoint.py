"""Resuming an interrupted dual run: a keyed diff with a checkpoint file compares its key range in chunks and
records, after each chunk, what it has found so far; run again with the same file, it starts after the last
chunk it completed (``hypercare dualrun run CONFIG --checkpoint FILE``).

The file is JSON, written atomically (a temporary file renamed over it) after every chunk: per entity, a
fingerprint of what is compared (the entity's configuration, the sides' parameters, the key range), the next
key to compare and the tally so far. A changed configuration, period or key range starts that entity over.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from monitor.dualrun.model import RowDifference

__all__ = ["Checkpoint", "TallyState"]


class TallyState(Protocol):
    """What a checkpoint saves and restores of a tally (:class:`monitor.dualrun.keyed.Tally`)."""

    matched: int
    changed: int
    missing_in_new: int
    extra_in_new: int
    money: Decimal
    by_class: Counter[str]
    money_by_class: dict[str, Decimal]
    samples: list[RowDifference]
    rows_legacy: int
    rows_new: int
    queries: int
    normalised: dict[str, dict[str, int]]


def _dump(tally: TallyState) -> dict[str, Any]:
    return {
        "matched": tally.matched,
        "changed": tally.changed,
        "missing_in_new": tally.missing_in_new,
        "extra_in_new": tally.extra_in_new,
        "money": str(tally.money),
        "by_class": dict(tally.by_class),
        "money_by_class": {k: str(v) for k, v in tally.money_by_class.items()},
        "samples": [s.to_dict() for s in tally.samples],
        "rows_legacy": tally.rows_legacy,
        "rows_new": tally.rows_new,
        "queries": tally.queries,
        "normalised": tally.normalised,
    }


def _restore(tally: TallyState, data: dict[str, Any]) -> None:
    tally.matched = int(data["matched"])
    tally.changed = int(data["changed"])
    tally.missing_in_new = int(data["missing_in_new"])
    tally.extra_in_new = int(data["extra_in_new"])
    tally.money = Decimal(data["money"])
    tally.by_class.clear()
    tally.by_class.update({k: int(v) for k, v in data["by_class"].items()})
    tally.money_by_class.clear()
    tally.money_by_class.update({k: Decimal(v) for k, v in data["money_by_class"].items()})
    tally.samples[:] = [RowDifference.from_dict(s) for s in data["samples"]]
    tally.rows_legacy = int(data["rows_legacy"])
    tally.rows_new = int(data["rows_new"])
    tally.queries = int(data["queries"])
    tally.normalised = {r: {s: int(n) for s, n in sides.items()} for r, sides in data["normalised"].items()}


@dataclass
class Checkpoint:
    """A checkpoint file; :meth:`resume` and :meth:`save` per entity."""

    path: Path

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"checkpoint {self.path}: cannot read it ({exc}); remove it to start over"
            ) from None
        return data if isinstance(data, dict) else {}

    @staticmethod
    def fingerprint(*parts: object) -> str:
        return hashlib.sha256(json.dumps([str(p) for p in parts]).encode("utf-8")).hexdigest()[:32]

    def resume(self, entity: str, fingerprint: str, tally: TallyState) -> int | None:
        """The next key to compare (the tally restored), or None: start this entity from the beginning."""
        state = self._read().get(entity)
        if not isinstance(state, dict) or state.get("fingerprint") != fingerprint:
            return None
        _restore(tally, state["tally"])
        return int(state["next"])

    def save(self, entity: str, fingerprint: str, next_key: int, tally: TallyState) -> None:
        data = self._read()
        data[entity] = {"fingerprint": fingerprint, "next": next_key, "tally": _dump(tally)}
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(data), encoding="utf-8")
        os.replace(temporary, self.path)
