"""The board folded into queryable state, updated incrementally: experiments, repeats, noise, bests, agents.

    state = BoardState(board, noise)    # nothing read yet (noise: NoiseSettings, default floors)
    state.refresh()                     # folds what was appended since the last call; cheap when idle
    state.observers.append(fn)          # fn(record) for every record read, e.g. to build a plot series

  experiments and jobs
    state.experiments[id]               -> latest record of each experiment (dict, DESIGN.md field names)
    state.experiment("3fa1")            -> latest record of the unique id with that prefix (or BoardError)
    state.queue(slot) / next_queued(slot) / running(slot) / running_slots() / queued_counts()
    state.experiments_of(agent)         -> an agent's experiments, submission order (a scan: for displays)
    state.verify_reruns(id)             -> verification reruns of an experiment
  groups, noise, bests (a group is (device class, profile))
    state.groups                        -> {group: GroupStats} (contents by train_sha256, pooled_sigma)
    state.content(group, sha)           -> ContentStats (n, mean, sigma, ids, slots, first_id) or None
    state.band(group)                   -> max(sigmas x pooled sigma, the profile's floor) (one run's band)
    state.calibrated(group)             -> enough repeats for a keep decision (swarm.board.noise)
    state.best(group) / state.bests()   -> Best (experiment, mean, sigma, n, verified, band) / {group: Best}:
                                           the lowest mean among contents with at least noise.best_runs runs
    state.top(group, n)                 -> the n lowest-mean contents, each once, as Best (confirmed or not)
    state.confirmed_top(group, n)       -> the n lowest-mean confirmed contents: the first is state.best(group)
    state.decide(record)                -> (promising|keep|marginal|discard, reason, reference id, band)
  agents, run, other records
    state.agent_summary("gpu3")         -> AgentSummary (counts by status, current, last, best, experiments)
    state.agent_summaries()             -> all of them, by name
    state.run                           -> the latest run record as a RunRecord (None before spawn)
    state.notes / state.usage / state.other / state.verifications / state.adopted

Folding rules:
- experiments by id, the latest record wins (an id's earlier contribution to statistics is taken back);
- `note`, `usage` and record types this module does not know are kept in arrival order;
- the latest `run` record is the run's definition (`state.run`, a RunRecord);
- `verification` records mark a content verified (or not) in its group; `adopt` records make an adopted
  content part of the adopting agent's reference.

Results are compared only within a group: (device class, profile). Within a group, measured runs of the
same `train_sha256` are repeats; they give each content's mean and sigma and the group's pooled sigma,
from which the noise band comes (see swarm.board.noise). Every update costs O(1) per record (plus a lazily
recomputed best when the best content itself changes), so a TUI or coordinator can follow a board of
100,000 experiments by calling `refresh()` on a timer.
"""

from __future__ import annotations

import bisect
import heapq
import math
import sys
from collections import Counter
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarm.board.charges import fair_order, payer
from swarm.board.experiments import (
    FINAL_STATUSES,
    KEEP,
    PROMISING,
    QUEUED,
    RUNNING,
    GroupKey,
    group_of,
    has_result,
    is_control,
    is_measured,
)
from swarm.board.noise import Evidence, NoiseSettings, RunningStats, decide, decide_paired
from swarm.board.progress import ProgressTracker, Step, finished_at
from swarm.board.run_record import RunRecord, choose_tag
from swarm.board.store import ADOPT, EXPERIMENT, NOTE, RUN, USAGE, VERIFICATION, Board, BoardReader
from swarm.config import load_section
from swarm.errors import BoardError, SwarmError
from swarm.repo.paths import run_paths

FOLD_CHUNK_BYTES = 4 << 20  # how much of the board one fold step reads
# Values that thousands of experiments repeat: held once (a 100,000-experiment board in less memory).
SHARED_FIELDS = (
    "agent",
    "gpu",
    "device",
    "profile",
    "tag",
    "branch",
    "base",
    "status",
    "prepare_sha256",
    "parent",
)


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


def _pack_content(content: ContentStats) -> tuple:
    stats = content.stats
    if stats.n == 1 and stats._sum == 0.0 and stats._sumsq == 0.0 and len(content.slots) == 1:
        # most contents were measured once: (its id, its value, its slot), a third of the objects
        ((eid, value),), ((slot, runs),) = stats.values.items(), content.slots.items()
        if value == stats._origin and runs == 1 and eid == content.first_id:
            return (eid, value, slot)
    return (
        content.first_id,
        tuple(stats.values),
        tuple(stats.values.values()),
        stats._origin,
        stats._sum,
        stats._sumsq,
        tuple(content.slots.items()),
    )


def _unpack_content(group: GroupKey, train_sha256: str, packed: tuple) -> ContentStats:
    if len(packed) == 3:  # measured once
        eid, value, slot = packed
        packed = (eid, (eid,), (value,), value, 0.0, 0.0, ((slot, 1),))
    first_id, ids, values, origin, total, squares, slots = packed
    content = ContentStats(group, train_sha256)
    content.first_id = first_id
    content.stats.values = dict(zip(ids, values, strict=True))
    content.stats._origin, content.stats._sum, content.stats._sumsq = origin, total, squares
    content.slots = dict(slots)
    return content


# How a PackedTable of each kind packs a value into a plain tuple and builds it back (context, key, tuple).
PACKERS: dict[str, Callable[[Any], tuple]] = {"content": _pack_content, "set": tuple, "ids": tuple}
BUILDERS: dict[str, Callable[[Any, Any, tuple], Any]] = {
    "content": _unpack_content,  # a group's contents: sha256 -> ContentStats
    "set": lambda context, key, packed: set(packed),  # (group, sha256) -> the agents that measured it
    "ids": lambda context, key, packed: dict.fromkeys(packed),  # sha256 -> an agent's experiment ids
}


class PackedTable(MutableMapping):
    """A dict of the folded state as a checkpoint restores it (swarm.board.checkpoint): a value nobody
    asked for yet is still the plain tuple the checkpoint held, built the first time it is asked for.
    Restoring a 100,000-experiment board then builds 100,000 tuples instead of half a million objects, and
    a display that shows the top ten contents builds ten. Pickling packs whatever was built."""

    def __init__(self, kind: str, table: dict[Any, Any], context: Any = None):
        self.kind = kind
        self.context = context  # what building a value needs besides its key (a content: its group)
        self._table = table
        self._all_built = False  # after values() / items(): the table is a plain dict again, at C speed

    @classmethod
    def of(cls, kind: str, table: dict[Any, Any] | PackedTable, context: Any = None) -> PackedTable:
        return table if isinstance(table, PackedTable) else cls(kind, table, context)

    def __getitem__(self, key: Any) -> Any:
        value = self._table[key]
        if type(value) is tuple:
            value = self._table[key] = BUILDERS[self.kind](self.context, key, value)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key] if key in self._table else default

    def __setitem__(self, key: Any, value: Any) -> None:
        self._table[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._table[key]

    def __contains__(self, key: object) -> bool:
        return key in self._table

    def __iter__(self) -> Iterator[Any]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def values(self):
        self._build_all()
        return self._table.values()

    def items(self):
        self._build_all()
        return self._table.items()

    def _build_all(self) -> None:
        if not self._all_built:
            for key in self._table:
                self[key]
            self._all_built = True

    def __getstate__(self) -> dict[str, Any]:
        pack = PACKERS[self.kind]
        table = {k: v if type(v) is tuple else pack(v) for k, v in self._table.items()}
        return {"kind": self.kind, "context": self.context, "_table": table}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state.get("kind") not in BUILDERS or not isinstance(state.get("_table"), dict):
            raise TypeError("not a packed table")  # a forged checkpoint: folded from scratch instead
        self.__dict__.update(state, _all_built=False)


class GroupStats:
    """All contents of one (device class, profile) group and their pooled sigma."""

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a checkpoint: swarm.board.checkpoint) with its contents packed as plain tuples, and
        without the heap of the best's candidates (rebuilt from the confirmed contents when first asked)."""
        state = {**self.__dict__, "contents": PackedTable.of("content", self.contents, self.key)}
        state["_best_heap"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        contents = state["contents"]
        if not isinstance(contents, PackedTable):
            raise TypeError("not a packed table")
        for content in state.get("_top") or ():  # objects already: the table hands out these very ones
            contents[content.train_sha256] = content
        self.__dict__.update(state)

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
        if first is None or _submitted(record) < _submitted(first):
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
                content.stats.values, key=lambda e: _submitted(experiments[e]), default=None
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
        top answers a shorter one, as a checkpoint saves one for every display: SAVED_TOP)."""
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


class BoardState:
    """Incrementally folded view of a board. Not thread-safe: one owner calls refresh() and reads."""

    # What a checkpoint (swarm.board.checkpoint) leaves out: the process's own objects, and what it stores in its own
    # way (experiments as board positions). Everything else set in __init__ is saved as it is, so a field
    # added here is checkpointed without further work (and must be picklable plain data).
    NOT_CHECKPOINTED = (
        "board",
        "noise",
        "reader",
        "observers",
        "_run_parsed",
        "experiments",
        "experiment_at",
    )

    def __init__(self, board: Board | Path | str, noise: NoiseSettings | None = None):
        self.board = board if isinstance(board, Board) else Board(Path(board))
        self.noise = noise or NoiseSettings()
        self.reader: BoardReader = self.board.reader()
        self.experiments: dict[str, dict[str, Any]] = {}
        # id -> (offset, length) of its latest record's line on the board, when it was read from there (a
        # checkpoint stores these instead of the records: swarm.board.checkpoint; in a restored state, an id
        # whose record was not read from the board maps to the record itself, which is what is saved again)
        self.experiment_at: dict[str, tuple[int, int]] = {}
        self.notes: list[dict[str, Any]] = []
        self.usage: list[dict[str, Any]] = []
        self.other: list[dict[str, Any]] = []  # record types this module does not know
        self.run_record: dict[str, Any] | None = None  # the latest run record of any tag
        self.run_records: dict[str, dict[str, Any]] = {}  # tag -> its latest run record
        self._run_parsed: tuple[dict[str, Any], RunRecord] | None = None  # (record, its RunRecord)
        self.groups: dict[GroupKey, GroupStats] = {}
        self.agents: dict[str, AgentSummary] = {}
        self.verifications: dict[tuple[GroupKey, str], dict[str, Any]] = {}
        self.adopted: dict[str, dict[GroupKey, set[str]]] = {}  # agent -> group -> adopted contents
        # agent -> group -> content -> number of that agent's experiments with status keep
        self._kept: dict[str, dict[GroupKey, Counter[str]]] = {}
        self._queued: dict[str, dict[str, None]] = {}  # slot -> ids in submission order
        self._running: dict[str, str] = {}  # slot -> id
        # slot -> payer -> when its latest job there started, and the job started last there: the turns
        # of the agents paying for a slot's jobs (swarm.board.charges)
        self._served: dict[str, dict[str, float]] = {}
        self._last_started: dict[str, str] = {}
        # agent -> group -> content -> ids of the agent's results (measured or reused) with that content
        self._agent_results: dict[str, dict[GroupKey, dict[str, dict[str, None]]]] = {}
        self._verify_reruns: dict[str, dict[str, None]] = {}  # verified id -> its rerun ids
        # An agent's best depends on the means of the contents it measured, which anyone's repeat moves.
        # A changed content concerns only the agents holding it: it becomes their best if it now beats it,
        # and only an agent whose best content itself changed (or whose group changed) is recomputed.
        self._content_agents: dict[tuple[GroupKey, str], set[str]] = {}  # (group, content) -> agents
        self._agent_best_sha: dict[str, tuple[GroupKey, str | None]] = {}  # agent -> (group, best content)
        self._stale_best: set[str] = set()
        self.records_read = 0
        # Called with each record once it is folded, whoever triggered the fold (a display's own refresh,
        # or a command such as verify refreshing the same state): lets a display derive its own series
        # (e.g. the progress plot) from the one read of the board.
        self.observers: list[Callable[[dict[str, Any]], None]] = []
        # The running bests over time per group, and every experiment's finishing time in order: what watch
        # plots and counts. Folded here, so that a checkpoint carries them and a display need not read every
        # record again to draw them (swarm.board.progress; the first final record of an id counts).
        self.progress = ProgressTracker()
        self.finish_times: list[float] = []

    @property
    def forged(self) -> int:
        """Lines of a signed board without a valid signature: written by no runner, coordinator or user
        command (swarm.board.signing), so never folded. Only a reader holding the key can tell."""
        return self.reader.forged

    @property
    def forged_lines(self) -> list[bytes]:
        """The beginnings of the last few forged lines."""
        return self.reader.forged_lines

    # ---------------------------------------------------------------------------------------------------
    # Folding

    def refresh(self) -> list[dict[str, Any]]:
        """Fold the records appended since the last call; returns them (oldest first)."""
        new: list[dict[str, Any]] = []
        self._fold(new.extend)
        return new

    def follow(self) -> int:
        """Fold the records appended since the last call, a piece at a time, keeping none of them beyond
        what the state holds: the first read of a 100,000-experiment board never has it all in memory at
        once (a long-lived display uses this; `observers` see every record). Returns how many were folded."""
        return self._fold(None)

    def _fold(self, keep: Callable[[list[dict[str, Any]]], None] | None) -> int:
        folded = 0
        while True:
            offset = self.reader.offset
            positions: list[tuple[int, int]] = []
            records = self.reader.read_new(FOLD_CHUNK_BYTES, positions)
            # Within one piece only the last record of an experiment id changes the final state, so earlier
            # ones are skipped (a first read of a board is mostly queued/running records later superseded).
            last = {r.get("id"): i for i, r in enumerate(records) if r.get("type") == EXPERIMENT}
            for i, record in enumerate(records):
                if record.get("type") == EXPERIMENT and last.get(record.get("id")) != i:
                    self.records_read += 1
                    self._note_progress(record)
                    for observe in self.observers:
                        observe(record)
                else:
                    self.apply(record, positions[i])
            if keep is not None:
                keep(records)
            folded += len(records)
            if self.reader.offset == offset:
                return folded

    def apply(self, record: dict[str, Any], position: tuple[int, int] | None = None) -> None:
        """Fold one record (refresh() calls this, with the record's place on the board; tests and writers
        may call it for their own appends, which a later refresh folds again, to the same effect)."""
        self.records_read += 1
        kind = record.get("type")
        if kind == EXPERIMENT:
            self._note_progress(record)
            self._apply_experiment(record, position)
        elif kind == NOTE:
            self.notes.append(record)
        elif kind == USAGE:
            self.usage.append(record)
        elif kind == RUN:
            self.run_record = record
            self.run_records[record.get("tag")] = record
        elif kind == VERIFICATION:
            self.verifications[(group_of(record), record.get("train_sha256"))] = record
        elif kind == ADOPT:
            agent, sha = record.get("agent"), record.get("train_sha256")
            if agent and sha:
                self.adopted.setdefault(agent, {}).setdefault(group_of(record), set()).add(sha)
        else:
            self.other.append(record)
        for observe in self.observers:
            observe(record)

    def _note_progress(self, record: dict[str, Any]) -> None:
        if self.progress.add(record):  # the first final record of this id
            bisect.insort(self.finish_times, finished_at(record))

    def _apply_experiment(self, record: dict[str, Any], position: tuple[int, int] | None) -> None:
        eid = record.get("id")
        if not isinstance(eid, str):
            self.other.append(record)
            return
        for name in SHARED_FIELDS:
            value = record.get(name)
            if type(value) is str:
                record[name] = sys.intern(value)
        old = self.experiments.get(eid)
        if old is not None:
            self._retract(old)
        self.experiments[eid] = record
        if position is None:
            self.experiment_at.pop(eid, None)
        else:
            self.experiment_at[eid] = position
        self._account(record, new_id=old is None)

    def _retract(self, record: dict[str, Any]) -> None:
        eid, status, slot, agent = record["id"], record.get("status"), record.get("gpu"), record.get("agent")
        summary = self.agents[agent]
        summary.counts[status] -= 1
        if not summary.counts[status]:
            del summary.counts[status]
        if summary.current == eid:
            summary.current = None
        if status == QUEUED:
            self._queued.get(slot, {}).pop(eid, None)
        elif status == RUNNING and self._running.get(slot) == eid:
            del self._running[slot]
        elif has_result(record):
            group = group_of(record)
            if not record.get("reused_from"):
                self.groups[group].remove_run(record, self.experiments)
            ids = self._agent_results[agent][group][record["train_sha256"]]
            del ids[eid]
            if not ids:
                del self._agent_results[agent][group][record["train_sha256"]]
                self._content_agents[(group, record["train_sha256"])].discard(agent)
            self._mark_stale(group, record["train_sha256"], agent)
            if status == KEEP and not record.get("verify_of"):
                kept = self._kept[agent][group]
                kept[record["train_sha256"]] -= 1
                if kept[record["train_sha256"]] <= 0:
                    del kept[record["train_sha256"]]

    def _account(self, record: dict[str, Any], new_id: bool) -> None:
        eid, status, slot, agent = record["id"], record.get("status"), record.get("gpu"), record.get("agent")
        summary = self.agents.get(agent)
        if summary is None:
            summary = self.agents[agent] = AgentSummary(name=agent)
        summary.counts[status] += 1
        if new_id:
            summary.submitted += 1
            if record.get("verify_of"):
                self._verify_reruns.setdefault(record["verify_of"], {})[eid] = None
        if status == QUEUED:
            self._queued.setdefault(slot, {})[eid] = None
        elif status == RUNNING:
            self._running[slot] = eid
            charged = payer(record, [a.name for a in self.run.agents] if self.run else [])
            self._served.setdefault(slot, {})[charged or ""] = record.get("started_at") or 0.0
            self._last_started[slot] = eid
            summary.current = eid
        elif status in FINAL_STATUSES:
            summary.last = eid
            if has_result(record):
                group = group_of(record)
                if not record.get("reused_from"):  # answered from the board: not a new measurement
                    stats = self.groups.get(group)
                    if stats is None:
                        stats = self.groups[group] = GroupStats(group, self.noise.best_runs)
                    stats.add_run(record, self.experiments)
                by_group = self._agent_results.setdefault(agent, {}).setdefault(group, {})
                by_group.setdefault(record["train_sha256"], {})[eid] = None
                summary.last_group = group
                self._content_agents.setdefault((group, record["train_sha256"]), set()).add(agent)
                self._mark_stale(group, record["train_sha256"], agent)
                if status == KEEP and not record.get("verify_of"):  # a rerun is evidence, not a decision
                    kept = self._kept.setdefault(agent, {}).setdefault(group, Counter())
                    kept[record["train_sha256"]] += 1

    def _mark_stale(self, group: GroupKey, train_sha256: str, agent: str) -> None:
        """Content `train_sha256` of `group` changed (a result of `agent` came or went): update the bests of
        the agents holding it, or mark them for a recompute when that cannot be done in O(1)."""
        content = self.groups[group].contents.get(train_sha256) if group in self.groups else None
        for holder in {agent} | self._content_agents.get((group, train_sha256), set()):
            if holder in self._stale_best:
                continue
            best_group, best_sha = self._agent_best_sha.get(holder, (None, None))
            if (
                best_group != group
                or best_group != self.agents[holder].last_group
                or best_sha == train_sha256
            ):
                self._stale_best.add(holder)
            elif content is not None and train_sha256 in self._agent_results[holder][group]:
                best = self.groups[group].contents.get(best_sha) if best_sha else None
                if content.n >= self.noise.best_runs and (best is None or content.mean < best.mean):
                    self._agent_best_sha[holder] = (group, train_sha256)
                    self.agents[holder].best = next(iter(self._agent_results[holder][group][train_sha256]))

    # ---------------------------------------------------------------------------------------------------
    # The run

    @property
    def run(self) -> RunRecord | None:
        """The latest run record, or None before `swarm spawn` wrote one (parsed once per record: displays
        ask for it per agent on every refresh)."""
        if self.run_record is None:
            return None
        if self._run_parsed is None or self._run_parsed[0] is not self.run_record:
            self._run_parsed = (self.run_record, RunRecord.from_record(self.run_record))
        return self._run_parsed[1]

    def find_run(self, tag: str | None = None) -> RunRecord:
        """The run a command is about, by the one rule of swarm.board.run_record.choose_tag."""
        latest = self.run_record.get("tag") if self.run_record else None
        chosen = choose_tag(tag, latest, self.board.directory)
        record = self.run_records.get(chosen)
        if record is None:
            raise SwarmError(f"no run {chosen!r} on the board {self.board.directory}")
        return RunRecord.from_record(record)

    # ---------------------------------------------------------------------------------------------------
    # Experiments and jobs

    def experiment(self, prefix: str) -> dict[str, Any]:
        """The latest record of the experiment whose id starts with `prefix` (unique), else a SwarmError."""
        prefix = prefix.strip().lower()
        if not prefix:
            raise BoardError("empty experiment id")
        if prefix in self.experiments:
            return self.experiments[prefix]
        matches = [eid for eid in self.experiments if eid.startswith(prefix)]
        if not matches:
            raise BoardError(f"unknown experiment id {prefix!r}")
        if len(matches) > 1:
            shown = ", ".join(sorted(matches)[:5])
            raise BoardError(f"ambiguous experiment id prefix {prefix!r}: matches {shown}")
        return self.experiments[matches[0]]

    def queue(self, slot: str) -> list[dict[str, Any]]:
        """Queued experiments of a runner slot in the order they run: calibration reruns first, then the
        agents paying for them in turn, oldest submission first within a turn (a requeued job keeps its
        place; swarm.board.charges)."""
        agents = [a.name for a in self.run.agents] if self.run else []
        queued = (self.experiments[eid] for eid in self._queued.get(slot, {}))
        last = self.experiments.get(self._last_started.get(slot, ""))
        return fair_order(queued, agents, self._served.get(slot), last)

    def next_queued(self, slot: str) -> dict[str, Any] | None:
        """The job a runner of this slot takes next (the head of `queue(slot)`)."""
        if not self._queued.get(slot):
            return None
        return self.queue(slot)[0]

    def running(self, slot: str) -> dict[str, Any] | None:
        eid = self._running.get(slot)
        return self.experiments[eid] if eid else None

    def running_slots(self) -> dict[str, dict[str, Any]]:
        return {slot: self.experiments[eid] for slot, eid in self._running.items()}

    def queued_counts(self) -> dict[str, int]:
        return {slot: len(ids) for slot, ids in self._queued.items() if ids}

    def experiments_of(self, agent: str) -> list[dict[str, Any]]:
        """An agent's experiments in submission order (scans all experiments: for displays, not loops)."""
        return sorted((e for e in self.experiments.values() if e.get("agent") == agent), key=_submitted)

    def verify_reruns(self, eid: str) -> list[dict[str, Any]]:
        """The verification reruns of an experiment (latest record of each), in submission order."""
        return [self.experiments[r] for r in self._verify_reruns.get(eid, ())]

    # ---------------------------------------------------------------------------------------------------
    # Noise, bests, decisions

    def group(self, key: GroupKey) -> GroupStats | None:
        return self.groups.get(key)

    def content(self, key: GroupKey, train_sha256: str) -> ContentStats | None:
        group = self.groups.get(key)
        return group.content(train_sha256) if group else None

    def band(self, key: GroupKey, exclude_sha256: str | None = None) -> float:
        """The noise band of a group: max(sigmas x pooled sigma, the profile's floor); with
        `exclude_sha256`, the sigma leaves that content's own repeats out."""
        group = self.groups.get(key)
        if group is None:
            return self.noise.band(key[1], None)
        sigma = group.pooled_sigma_without(exclude_sha256) if exclude_sha256 else group.pooled_sigma
        return self.noise.band(key[1], sigma)

    def is_verified(self, key: GroupKey, train_sha256: str) -> bool:
        verification = self.verifications.get((key, train_sha256))
        return bool(verification and verification.get("held"))

    def best(self, key: GroupKey) -> Best | None:
        group = self.groups.get(key)
        content = group.best_content() if group else None
        return self._best_of(content) if content else None

    def bests(self) -> dict[GroupKey, Best]:
        """The global best of every group, in the order groups first appeared."""
        out = {}
        for key in self.groups:
            best = self.best(key)
            if best:
                out[key] = best
        return out

    def best_steps(self, key: GroupKey) -> list[Step]:
        """The group's best over time, in today's numbers: each confirmed content enters when its
        noise.best_runs-th run finished, with its mean now, and makes a step where it lowers the best; the
        last step is `best(key)`. (Means as they stood at the time would depend on how the board was folded:
        a checkpoint and a fresh fold must draw the same line.) Reads the records of confirmed contents:
        a few under the `confirm` rule."""
        group = self.groups.get(key)
        if group is None:
            return []
        entries = []
        for sha in group.confirmed_shas():
            content = group.contents[sha]
            times = sorted(finished_at(self.experiments[eid]) for eid in content.ids)
            entries.append((times[min(self.noise.best_runs, len(times)) - 1], content.mean, sha, content))
        steps: list[Step] = []
        for at, mean, _, content in sorted(entries, key=lambda e: e[:3]):
            if not steps or mean < steps[-1].value:
                index = bisect.bisect_right(self.finish_times, at) - 1
                steps.append(Step(max(index, 0), at, mean, content.first_id))
        return steps

    def top(self, key: GroupKey, n: int) -> list[Best]:
        """The n lowest-mean contents of a group, confirmed or not (each once, with its repeat statistics)."""
        group = self.groups.get(key)
        return [self._best_of(c) for c in group.top(n)] if group else []

    def confirmed_top(self, key: GroupKey, n: int) -> list[Best]:
        """The n lowest-mean confirmed contents of a group (noise.best_runs runs or more): the ranking whose
        first is `best(key)`, the one best every display shows."""
        group = self.groups.get(key)
        return [self._best_of(c) for c in group.confirmed_top(n)] if group else []

    def _best_of(self, content: ContentStats) -> Best:
        return Best(
            group=content.group,
            experiment=self.experiments[content.first_id],
            train_sha256=content.train_sha256,
            mean=content.mean,
            sigma=content.sigma,
            n=content.n,
            verified=self.is_verified(content.group, content.train_sha256),
            band=self.band(content.group),
            confirmed=content.n >= self.noise.best_runs,
        )

    def agent_reference(
        self, agent: str, key: GroupKey, exclude_sha256: str | None = None
    ) -> ContentStats | None:
        """The agent's current best in a group: the lowest-mean content among its `keep` results and the
        contents it adopted, other than `exclude_sha256` (a result is never compared with itself)."""
        candidates = set(self._kept.get(agent, {}).get(key, ()))
        candidates |= self.adopted.get(agent, {}).get(key, set())
        candidates.discard(exclude_sha256)
        group = self.groups.get(key)
        contents = [group.contents[s] for s in candidates if group and s in group.contents]
        return min(contents, key=lambda c: c.mean, default=None)

    def calibrated(self, key: GroupKey) -> bool:
        """The group's repeats give its pooled sigma at least calibration_runs - 1 degrees of freedom."""
        group = self.groups.get(key)
        return bool(group) and group.repeats >= self.noise.calibration_runs - 1

    def decide(self, record: dict[str, Any], final: bool | None = None) -> tuple[str, str, str | None, float]:
        """The status of a measured record about to be written (swarm.board.noise.decide).

        The record's content mean (its repeats on this group, including this run) is compared with the
        agent's current best content. A rerun, an answer from the board, or `final=True` (a confirmation's
        verdict) is judged as final evidence; a first run is screened. Returns (status, reason, reference
        id, band)."""
        key = group_of(record)
        sha = record["train_sha256"]
        content = self.content(key, sha)
        stats = RunningStats()
        for eid, value in content.stats.values.items() if content else ():
            stats.add(eid, value)
        if not record.get("reused_from"):  # an answer from the board is those runs' mean, not a new run
            stats.add(record["id"], float(record["val_bpb"]))
        group = self.groups.get(key)
        reference = self.agent_reference(record["agent"], key, exclude_sha256=sha)
        final_verdict = bool(final)
        if final is None:
            final = bool(record.get("verify_of") or record.get("reused_from"))
        evidence = Evidence(
            mean=stats.mean,
            n=stats.n,
            reference_mean=reference.mean if reference else None,
            reference_n=reference.n if reference else 0,
            pooled_sigma=group.pooled_sigma if group else None,
            calibrated=self.calibrated(key),
            final=final,
        )
        status, reason, band = decide(self.noise, key[1], evidence)
        origin = self.experiments.get(record.get("verify_of") or "")
        if is_control(record):  # a measurement of the reference, decided like any rerun of it
            reason = f"control run for the confirmation of {record.get('verify_of')}; {reason}"
        elif origin is not None and origin.get("status") == PROMISING and not final_verdict:
            status = PROMISING  # a confirmation rerun: the verdict comes with the last run
            reason = f"confirmation rerun of {origin['id']}; so far: {reason}"
        return status, reason, (reference.first_id if reference else None), band

    def decide_paired(self, original: dict[str, Any], outcome: dict[str, Any]) -> tuple[str, str, float]:
        """The verdict on a promising result from its confirmation's verification outcome: the mean of its
        reruns against the mean of the control runs beside them (swarm.board.noise.decide_paired)."""
        key = group_of(original)
        values = [
            [self.experiments[eid]["val_bpb"] for eid in outcome[side] if is_measured(self.experiments[eid])]
            for side in ("reruns", "controls")
        ]
        group = self.groups.get(key)
        return decide_paired(
            self.noise, key[1], *values, group.pooled_sigma if group else None, self.calibrated(key)
        )

    # ---------------------------------------------------------------------------------------------------
    # Agents

    def agent_summary(self, agent: str) -> AgentSummary | None:
        summary = self.agents.get(agent)
        if summary is not None and agent in self._stale_best:
            summary.best = self._agent_best_id(agent, summary.last_group)
            self._stale_best.discard(agent)
        return summary

    def agent_summaries(self) -> list[AgentSummary]:
        return [self.agent_summary(name) for name in sorted(self.agents, key=str)]

    def _agent_best_id(self, agent: str, key: GroupKey | None) -> str | None:
        """The agent's first result with its lowest-mean content in a group, among contents measured at
        least noise.best_runs times (a confirmed mean, not one lucky run)."""
        group = self.groups.get(key) if key else None
        if group is None:
            return None
        contents = self._agent_results.get(agent, {}).get(key, {})
        least = self.noise.best_runs
        measured = [sha for sha in contents if sha in group.contents and group.contents[sha].n >= least]
        best_sha = min(measured, key=lambda sha: group.contents[sha].mean, default=None)
        self._agent_best_sha[agent] = (key, best_sha)
        return next(iter(contents[best_sha])) if best_sha else None


def _submitted(record: dict[str, Any]) -> float:
    return record.get("submitted_at") or record.get("ts") or 0.0


def open_board(cwd: Path | None = None, noise: NoiseSettings | None = None) -> tuple[Path, Board, BoardState]:
    """The repository, board and freshly read state for a command run anywhere in the repository (restored
    from the board's checkpoint when it has a valid one: swarm.board.checkpoint)."""
    paths = run_paths(cwd)
    from swarm.board.checkpoint import open_state  # it builds on this module

    board = Board(paths.board).require()
    state = open_state(board, noise or load_section(paths.repo, "noise", NoiseSettings))
    return paths.repo, board, state
