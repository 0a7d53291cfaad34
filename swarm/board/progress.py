"""The progress of a run over time, per comparison group: finished experiments and the running bests.

Fed with experiment records in finishing order (the board's state feeds each record it folds; `swarm plot`
sorts the board's experiments), it keeps, per (device class, profile) group, every finished experiment's
place and optionally the experiment as a point, each agent's lowest single run so far, and the steps of the
group's best. The best is the board's one definition (swarm.board.state: the lowest confirmed mean, with n
and sigma), so the board's state reports it (`note_best`) as it folds: a single lucky run never moves the
line, and a best whose mean rose when re-measured moves it up. Each record costs O(1); only the first final
record of an id counts as a finished experiment (a later correction of a value does not rewrite history).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from swarm.board.experiments import FINAL_STATUSES, GroupKey, group_of, is_measured


@dataclass(frozen=True)
class Point:
    """A finished experiment: its place in the group's finishing order and its value (None: no result)."""

    index: int
    at: float
    value: float | None
    record: dict[str, Any]


@dataclass(frozen=True)
class Step:
    """The best changed to `value` at time `at`, when the `index`-th experiment of the group had finished;
    `id`: the experiment that first measured the best (for the global best), or the run (an agent's)."""

    index: int
    at: float
    value: float
    id: str


@dataclass
class GroupProgress:
    key: GroupKey
    finished: int = 0
    points: list[Point] = field(default_factory=list)  # only when the tracker keeps points
    best: list[Step] = field(default_factory=list)  # the group's best (a confirmed mean), one step per change
    agent_best: dict[str, list[Step]] = field(default_factory=dict)  # each agent's lowest single run so far


def finished_at(record: dict[str, Any]) -> float:
    return record.get("finished_at") or record.get("ts") or 0.0


class ProgressTracker:
    def __init__(self, keep_points: bool = False):
        self.keep_points = keep_points
        self.groups: dict[GroupKey, GroupProgress] = {}
        self._seen: set[str] = set()

    def add(self, record: dict[str, Any]) -> bool:
        """Take one experiment record; anything but the first final record of an id is ignored (False)."""
        eid = record.get("id")
        if record.get("status") not in FINAL_STATUSES or eid in self._seen or not isinstance(eid, str):
            return False
        self._seen.add(eid)
        key = group_of(record)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = GroupProgress(key)
        index, at = group.finished, finished_at(record)
        group.finished += 1
        value = float(record["val_bpb"]) if is_measured(record) else None
        if self.keep_points:
            group.points.append(Point(index, at, value, record))
        if value is None:
            return True
        steps = group.agent_best.setdefault(str(record.get("agent")), [])
        if not steps or value < steps[-1].value:
            steps.append(Step(index, at, value, eid))
        return True

    def note_best(self, key: GroupKey, value: float, best_id: str, at: float) -> None:
        """The group's best (swarm.board.state.best) is now the mean `value` of the content that `best_id`
        first measured, as of a result that finished at `at`: a step when that changed."""
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = GroupProgress(key)
        last = group.best[-1] if group.best else None
        if last is None or last.value != value or last.id != best_id:
            group.best.append(Step(max(group.finished - 1, 0), at, value, best_id))

    def add_all(self, records: list[dict[str, Any]]) -> ProgressTracker:
        for record in records:
            self.add(record)
        return self

    def main_group(self) -> GroupProgress | None:
        """The group with the most finished experiments (what a single plot shows)."""
        return max(self.groups.values(), key=lambda g: g.finished, default=None)


def from_experiments(
    experiments: list[dict[str, Any]], bests: ProgressTracker | None = None
) -> ProgressTracker:
    """Progress of finished experiments (latest records), ordered by when they finished, every one a point;
    `bests`: the board state's own tracker, whose steps of each group's best are placed among the points by
    the time they were taken."""
    finished = [e for e in experiments if e.get("status") in FINAL_STATUSES]
    finished.sort(key=finished_at)
    tracker = ProgressTracker(keep_points=True).add_all(finished)
    for key, group in tracker.groups.items():
        source = bests.groups.get(key) if bests is not None else None
        times = [p.at for p in group.points]
        group.best = [
            Step(max(bisect.bisect_right(times, s.at) - 1, 0), s.at, s.value, s.id)
            for s in (source.best if source else ())
        ]
    return tracker
