"""Related series of one source, aligned on a time grid and scored together (no I/O).

A group's members (latency, error rate, throughput, backlog of one source) each go through their own
:class:`~anomaly.ensemble.UnivariateEnsemble`; :class:`AlignedGroup` collects each member's latest point
per slot of ``align_seconds`` and, when a slot is complete (every member has a point in it) or a later slot
begins, forms one vector of the members' robust residuals (a member that missed the slot carries its last
value if it is not older than ``stale_seconds``). The vector goes through a
:class:`~anomaly.multivariate.ResidualModel`, and :func:`combine` merges its calibrated score with the
members' univariate scores of that slot into the group's one score in [0, 1] with an explanation.

No vector is formed until every member is past its own warm-up (its residuals mean nothing before), and
no score comes out until the forest has ``min_train`` vectors: there is no multivariate alarm before then.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from anomaly.alarms import AlarmProcessor
from anomaly.ensemble import Score
from anomaly.events import Event
from anomaly.multivariate import ModelFit, MultivariateScore, ResidualModel


@dataclass(frozen=True, slots=True)
class MemberPoint:
    """A member's latest scored point, as the group saw it."""

    ts: float
    residual: float
    score: float
    explanation: str
    warm: bool


@dataclass(frozen=True, slots=True)
class GroupStep:
    """One scored slot: when (its newest member point), the combined score, and the forest's view."""

    at: float
    score: Score
    multivariate: MultivariateScore
    fresh: tuple[str, ...]
    """Members with a point in the slot (the others were carried)."""


def combine(multivariate: MultivariateScore, members: Mapping[str, MemberPoint]) -> Score:
    """The group's score: the largest of the forest's calibrated score and the slot's univariate scores
    (the same max rule as the univariate ensemble), explained by whichever gave it."""
    top = max(members.items(), key=lambda item: item[1].score, default=None)
    if top is None or multivariate.score >= top[1].score:
        return Score(
            multivariate.score,
            "multivariate",
            multivariate.statistic,
            statistic=multivariate.statistic,
            threshold=1.0,
            note=multivariate.explain(),
        )
    _, point = top
    return Score(point.score, "multivariate", point.residual, z=point.residual, note=point.explanation)


class AlignedGroup:
    def __init__(
        self,
        name: str,
        members: Sequence[str],
        *,
        align_seconds: int = 60,
        stale_seconds: int = 900,
        forest: ResidualModel | None = None,
        **forest_params: Any,
    ) -> None:
        if align_seconds < 1 or stale_seconds < 0:
            raise ValueError("needs align_seconds >= 1 and stale_seconds >= 0")
        self.name = name
        self.members = tuple(members)
        self.align_seconds, self.stale_seconds = align_seconds, stale_seconds
        self.forest = forest or ResidualModel(self.members, **forest_params)
        if self.forest.series != self.members:
            raise ValueError("the forest's series must be the group's members, in order")
        self.pending: int | None = None
        """The open slot (index on the grid), not yet scored."""
        self.closed: int | None = None
        """The last slot scored: later points of it are carried into the next one."""
        self.in_slot: set[str] = set()
        self.seen: dict[str, MemberPoint] = {}

    def slot(self, ts: float) -> int:
        return int(ts // self.align_seconds)

    def close_before(self, ts: float) -> GroupStep | None:
        """Score the open slot if ``ts`` belongs to a later one (call before feeding that point)."""
        if self.pending is not None and self.slot(ts) > self.pending:
            return self._finalise()
        return None

    def observe(self, member: str, ts: float, score: Score, *, warm: bool) -> GroupStep | None:
        """Record a member's scored point; score its slot at once if every member is now in it."""
        if member not in self.members:
            raise ValueError(f"{member!r} is not a member of group {self.name!r}")
        self.seen[member] = MemberPoint(ts, score.z, score.score, score.explain(member), warm)
        slot = self.slot(ts)
        if self.closed is not None and slot <= self.closed:
            return None
        self.pending = slot
        self.in_slot.add(member)
        if len(self.in_slot) == len(self.members):
            return self._finalise()
        return None

    def _finalise(self) -> GroupStep | None:
        assert self.pending is not None  # noqa: S101 - only called with an open slot
        start = self.pending * self.align_seconds
        fresh, self.in_slot = self.in_slot, set()
        self.closed, self.pending = self.pending, None
        points = [self.seen.get(m) for m in self.members]
        vector: list[float] = []
        for p in points:
            if p is None or not p.warm or p.ts < start - self.stale_seconds:
                return None  # a member still warming up or silent too long: nothing to learn or score
            vector.append(p.residual)
        mv = self.forest.update(vector)
        if not mv.fitted:
            return None
        in_slot = {m: self.seen[m] for m in self.members if m in fresh}
        at = max(p.ts for p in in_slot.values())
        return GroupStep(at, combine(mv, in_slot), mv, tuple(m for m in self.members if m in fresh))

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": "group",
            "name": self.name,
            "members": list(self.members),
            "align_seconds": self.align_seconds,
            "stale_seconds": self.stale_seconds,
            "pending": self.pending,
            "closed": self.closed,
            "in_slot": sorted(self.in_slot),
            "seen": {m: asdict(p) for m, p in self.seen.items()},
            "forest": self.forest.to_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], fits: dict[str, ModelFit] | None = None) -> AlignedGroup:
        self = cls(
            str(state["name"]),
            [str(m) for m in state["members"]],
            align_seconds=int(state["align_seconds"]),
            stale_seconds=int(state["stale_seconds"]),
            forest=ResidualModel.from_state(state["forest"], fits=fits),
        )
        self.pending = None if state["pending"] is None else int(state["pending"])
        self.closed = None if state["closed"] is None else int(state["closed"])
        self.in_slot = {str(m) for m in state["in_slot"]}
        self.seen = {
            str(m): MemberPoint(
                float(p["ts"]),
                float(p["residual"]),
                float(p["score"]),
                str(p["explanation"]),
                bool(p["warm"]),
            )
            for m, p in state["seen"].items()
        }
        return self


class GroupAlarm:
    """The group's alarm post-processing, quiet while a member's own alarm already speaks for the incident.

    A group alarm that starts while any member's alarm is active is *covered*: that member's event already
    stands for the incident, so neither the group's trigger nor its resolve is emitted. The other way round,
    :attr:`speaks` tells the caller to cover a member alarm that starts while the group's is the open one,
    so one incident is one event and one recovery whichever detector saw it first.
    """

    def __init__(self, alarm: AlarmProcessor, *, covered: bool = False) -> None:
        self.alarm, self.covered = alarm, covered

    @property
    def speaks(self) -> bool:
        return self.alarm.active and not self.covered

    def update(self, step: GroupStep, *, members_alarmed: bool) -> Event | None:
        event = self.alarm.update(datetime.fromtimestamp(step.at, UTC), step.score)
        if event is None:
            return None
        if event.action == "trigger":
            self.covered = members_alarmed
        if self.covered:
            if event.action == "resolve":
                self.covered = False
            return None
        return event
