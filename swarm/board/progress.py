"""The progress of a run over time, per comparison group: finished experiments and the running bests.

Fed with experiment records in finishing order (`swarm plot` sorts the board's experiments; the TUI feeds
the new records of each board refresh), it keeps, per (device class, profile) group, the steps of the
global running best and of each agent's running best, and optionally every finished experiment as a point.
Each record costs O(1); only the first final record of an id counts (a later correction of a value does
not rewrite history). The running best here is over individual measurements (each agent's lowest single
run, as watch draws it); the board's best, a confirmed mean, comes from swarm.board.fold (`best_steps`),
which `from_experiments` places among the points when given.
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
    """The running best changed to `value` at time `at` (the `index`-th finished experiment, `id`)."""

    index: int
    at: float
    value: float
    id: str


@dataclass
class GroupProgress:
    key: GroupKey
    finished: int = 0
    points: list[Point] = field(default_factory=list)  # only when the tracker keeps points
    best: list[Step] = field(default_factory=list)  # the global running best, one step per improvement
    agent_best: dict[str, list[Step]] = field(default_factory=dict)


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
        if not group.best or value < group.best[-1].value:
            group.best.append(Step(index, at, value, eid))
        steps = group.agent_best.setdefault(str(record.get("agent")), [])
        if not steps or value < steps[-1].value:
            steps.append(Step(index, at, value, eid))
        return True

    def add_all(self, records: list[dict[str, Any]]) -> ProgressTracker:
        for record in records:
            self.add(record)
        return self

    def main_group(self) -> GroupProgress | None:
        """The group with the most finished experiments (what a single plot shows)."""
        return max(self.groups.values(), key=lambda g: g.finished, default=None)


def from_experiments(
    experiments: list[dict[str, Any]], best: dict[GroupKey, list[Step]] | None = None
) -> ProgressTracker:
    """Progress of finished experiments (latest records), ordered by when they finished; with `best`, each
    group's best line is those steps (swarm.board.fold.BoardState.best_steps: the confirmed mean) instead of
    the lowest single run, each placed after the last experiment that had finished by its time."""
    finished = [e for e in experiments if e.get("status") in FINAL_STATUSES]
    finished.sort(key=finished_at)
    tracker = ProgressTracker(keep_points=True).add_all(finished)
    for key, group in tracker.groups.items() if best is not None else ():
        times = [p.at for p in group.points]
        group.best = [
            Step(max(bisect.bisect_right(times, s.at) - 1, 0), s.at, s.value, s.id) for s in best.get(key, ())
        ]
    return tracker
