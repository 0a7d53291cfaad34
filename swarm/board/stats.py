"""The statistics the fold keeps: each train.py content's repeats in its group, a group's pooled sigma and
best, an agent's counts (swarm.board.fold builds them from the board's records).

Results are compared only within a group: (device class, profile). Within a group, measured runs of the
same `train_sha256` are repeats; they give each content's mean and sigma and the group's pooled sigma,
from which the noise band comes (swarm.board.noise). The best of a group is its lowest confirmed mean: a
content measured at least noise.best_runs times.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from swarm.board.experiments import GroupKey, submitted
from swarm.board.noise import RunningStats


@dataclass(frozen=True)
class Best:
    """The best content of a group: the first experiment that measured it, and its repeat statistics."""

    group: GroupKey
    experiment: dict[str, Any]  # the earliest measured experiment of this content (its discoverer)
    train_sha256: str
    mean: float
    sigma: float | None  # sample sigma of this content's repeats; None with one run
    n: int
    verified: bool
    band: float  # the group's noise band
    confirmed: bool = True  # measured often enough to be a best (noise.best_runs): a confirmed mean

    def as_json(self) -> dict[str, Any]:
        e = self.experiment
        return {
            "device": self.group[0],
            "profile": self.group[1],
            "id": e["id"],
            "agent": e.get("agent"),
            "commit": e.get("commit"),
            "description": e.get("description"),
            "train_sha256": self.train_sha256,
            "val_bpb": self.mean,
            "mean": self.mean,
            "sigma": self.sigma,
            "n": self.n,
            "verified": self.verified,
            "confirmed": self.confirmed,
            "band": self.band,
            "unsealed": e.get("unsealed") is True,
        }


class ContentStats:
    """Repeat statistics of one train.py content (sha256) within one group."""

    __slots__ = ("group", "train_sha256", "stats", "first_id", "slots")

    def __init__(self, group: GroupKey, train_sha256: str):
        self.group = group
        self.train_sha256 = train_sha256
        self.stats = RunningStats()  # measured val_bpb by experiment id
        self.first_id: str | None = None  # earliest measured experiment (lowest submitted_at)
        self.slots: dict[str, int] = {}  # runner slot -> runs of this content measured there

    @property
    def n(self) -> int:
        return self.stats.n

    @property
    def mean(self) -> float | None:
        return self.stats.mean

    @property
    def sigma(self) -> float | None:
        return self.stats.sigma

    @property
    def ids(self) -> list[str]:
        return list(self.stats.values)


class GroupStats:
    """All contents of one (device class, profile) group and their pooled sigma."""

    def __init__(self, key: GroupKey, best_runs: int = 1):
        self.key = key
        self.best_runs = (
            best_runs  # runs a content needs to be the best (a confirmed mean, not one lucky run)
        )
        self.contents: dict[str, ContentStats] = {}
        self._squared_deviations = 0.0  # sum over contents of sum (x - content mean)^2
        self._degrees = 0  # sum over contents of (n - 1)
        # (mean, sha) of confirmed contents, the lowest first; an entry whose content changed since is stale
        # and dropped when it comes to the top: the best stays O(log n) however often its own mean moves
        self._best_heap: list[tuple[float, str]] | None = []
        self._top: list[ContentStats] | None = None  # the last top(n), kept until a change could alter it
        self._top_shas: set[str] = set()
        self._confirmed: set[str] = set()  # contents measured at least best_runs times: the best's candidates

    @property
    def pooled_sigma(self) -> float | None:
        """sqrt(sum SS_i / sum (n_i - 1)) over contents with repeats; None before any repeat."""
        if self._degrees <= 0:
            return None
        return math.sqrt(self._squared_deviations / self._degrees)

    def pooled_sigma_without(self, train_sha256: str) -> float | None:
        """The pooled sigma leaving one content's repeats out (so a verification cannot widen its own band)."""
        content = self.contents.get(train_sha256)
        if content is None:
            return self.pooled_sigma
        degrees = self._degrees - max(content.n - 1, 0)
        if degrees <= 0:
            return None
        return math.sqrt(max(self._squared_deviations - content.stats.squared_deviations, 0.0) / degrees)

    @property
    def repeats(self) -> int:
        """Degrees of freedom behind the pooled sigma (0: no content was measured twice yet)."""
        return self._degrees

    def content(self, train_sha256: str) -> ContentStats | None:
        return self.contents.get(train_sha256)

    def add_run(self, record: dict[str, Any], experiments: dict[str, dict[str, Any]]) -> None:
        """Count a measured run (its record is already in `experiments`)."""
        sha = record["train_sha256"]
        content = self.contents.get(sha)
        if content is None:
            content = self.contents[sha] = ContentStats(self.key, sha)
        self._forget_spread(content)
        content.stats.add(record["id"], float(record["val_bpb"]))
        slot = str(record.get("gpu"))
        content.slots[slot] = content.slots.get(slot, 0) + 1
        first = experiments.get(content.first_id) if content.first_id else None
        if first is None or submitted(record) < submitted(first):
            content.first_id = record["id"]
        self._count_spread(content)

    def remove_run(self, record: dict[str, Any], experiments: dict[str, dict[str, Any]]) -> None:
        """Take back a run counted by add_run (a later record of its id replaces it)."""
        sha = record["train_sha256"]
        content = self.contents[sha]
        self._forget_spread(content)
        content.stats.remove(record["id"])
        slot = str(record.get("gpu"))
        content.slots[slot] -= 1
        if not content.slots[slot]:
            del content.slots[slot]
        if content.first_id == record["id"]:
            content.first_id = min(
                content.stats.values, key=lambda e: submitted(experiments[e]), default=None
            )
        if not content.n:
            del self.contents[sha]
        self._count_spread(content)

    def _forget_spread(self, content: ContentStats) -> None:
        self._squared_deviations -= content.stats.squared_deviations
        self._degrees -= max(content.n - 1, 0)

    def _count_spread(self, content: ContentStats) -> None:
        self._squared_deviations += content.stats.squared_deviations
        self._degrees += max(content.n - 1, 0)
        if content.n >= self.best_runs:
            self._confirmed.add(content.train_sha256)
            if self._best_heap is not None:
                heapq.heappush(self._best_heap, (content.mean, content.train_sha256))
        else:
            self._confirmed.discard(content.train_sha256)
        self._note_top_candidate(content)

    def best_content(self) -> ContentStats | None:
        """The lowest-mean content among those measured at least `best_runs` times."""
        heap = self._best_heap
        if heap is None or len(heap) > 2 * len(self._confirmed) + 64:  # restored, or mostly stale entries
            heap = self._best_heap = [(self.contents[s].mean, s) for s in self._confirmed]
            heapq.heapify(heap)
        while heap:
            mean, sha = heap[0]
            content = self.contents.get(sha) if sha in self._confirmed else None
            if content is not None and content.mean == mean:
                return content
            heapq.heappop(heap)  # stale: the content changed (a newer entry holds its mean) or left
        return None

    def _note_top_candidate(self, content: ContentStats) -> None:
        # a content can change the top n only if it is in it, or now ranks above its last entry
        if self._top is not None and (
            content.train_sha256 in self._top_shas
            or (content.n and (not self._top or content.mean < self._top[-1].mean))
        ):
            self._top = None

    def top(self, n: int) -> list[ContentStats]:
        """The n contents with the lowest mean val_bpb (cached: a display asks every refresh; a longer cached
        top answers a shorter one, as a checkpoint saves one for every display: packing.SAVED_TOP)."""
        if self._top is None or len(self._top) < min(n, len(self.contents)):
            self._top = heapq.nsmallest(n, self.contents.values(), key=lambda c: c.mean)
            self._top_shas = {c.train_sha256 for c in self._top}
        return self._top[:n]

    def confirmed_shas(self) -> set[str]:
        return self._confirmed

    def confirmed_top(self, n: int) -> list[ContentStats]:
        """The n confirmed contents (at least best_runs runs) with the lowest mean: the first is the best."""
        return [self.contents[s] for s in heapq.nsmallest(n, self._confirmed, key=self._rank)]

    def _rank(self, train_sha256: str) -> tuple[float, str]:
        return (self.contents[train_sha256].mean, train_sha256)  # ties broken the same way every time


@dataclass
class AgentSummary:
    """One agent's experiments: counts by status, its current and last experiment, its best."""

    name: str
    counts: Counter[str] = field(default_factory=Counter)  # status -> experiments now in that status
    current: str | None = None  # id of its running experiment, if any
    last: str | None = None  # id of its most recently finished experiment
    last_group: GroupKey | None = None  # group of its most recent measured result
    best: str | None = None  # id of the measured experiment with its lowest content mean (in last_group)
    submitted: int = 0  # experiments ever submitted (ids)

    def as_json(self) -> dict[str, Any]:
        return {
            "agent": self.name,
            "counts": dict(self.counts),
            "current": self.current,
            "last": self.last,
            "best": self.best,
            "experiments": self.submitted,
        }
