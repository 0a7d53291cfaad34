"""The board folded into queryable state, updated incrementally: experiments, repeats, noise, bests, agents.

    state = BoardState(board, noise)    # nothing read yet (noise: NoiseSettings, default floors)
    state.refresh()                     # folds what was appended since the last call; cheap when idle
    state.observers.append(fn)          # fn(record) for every record read, e.g. to build a plot series

  experiments and jobs
    state.experiments[id]               -> latest record of each experiment (dict, the board's field names)
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
    state.run                           -> the latest run record as a SwarmRecord (None before spawn)
    state.notes / state.usage / state.other / state.verifications / state.adopted

Folding rules:
- experiments by id, the latest record wins (an id's earlier contribution to statistics is taken back);
- `note`, `usage` and record types this module does not know are kept in arrival order;
- the latest `run` record is the run's definition (`state.run`, a SwarmRecord);
- `verification` records mark a content verified (or not) in its group; `adopt` records make an adopted
  content part of the adopting agent's reference.

Results are compared only within a group: (device class, profile). Within a group, measured runs of the
same `train_sha256` are repeats; they give each content's mean and sigma and the group's pooled sigma,
from which the noise band comes (see swarm.board.noise). Every update costs O(1) per record (plus a lazily
recomputed best when the best content itself changes), so a TUI or coordinator can follow a board of
100,000 experiments by calling `refresh()` on a timer. The statistics types are swarm.board.stats's; this
module imports nothing that saves or restores a state (swarm.board.checkpoint does, through
swarm.board.packing; swarm.board.opening gives a command both).
"""

from __future__ import annotations

import bisect
import sys
from collections import Counter
from collections.abc import Callable
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
    submitted,
)
from swarm.board.noise import Evidence, NoiseSettings, RunningStats, decide, decide_paired
from swarm.board.progress import ProgressTracker, Step, finished_at
from swarm.board.run_record import SwarmRecord, choose_tag
from swarm.board.stats import AgentSummary, Best, ContentStats, GroupStats
from swarm.board.store import ADOPT, EXPERIMENT, NOTE, RUN, USAGE, VERIFICATION, Board, BoardReader
from swarm.errors import BoardError, SwarmError

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


class BoardState:
    """Incrementally folded view of a board. Not thread-safe: one owner calls refresh() and reads."""

    # Every field set in __init__ is plain, picklable data or one of the process's own objects: a checkpoint
    # (swarm.board.packing) saves all but the latter, so a field added here is checkpointed without more work.

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
        self._run_parsed: tuple[dict[str, Any], SwarmRecord] | None = None  # (record, its SwarmRecord)
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
    def run(self) -> SwarmRecord | None:
        """The latest run record, or None before `swarm spawn` wrote one (parsed once per record: displays
        ask for it per agent on every refresh)."""
        if self.run_record is None:
            return None
        if self._run_parsed is None or self._run_parsed[0] is not self.run_record:
            self._run_parsed = (self.run_record, SwarmRecord.from_record(self.run_record))
        return self._run_parsed[1]

    def find_run(self, tag: str | None = None) -> SwarmRecord:
        """The run a command is about, by the one rule of swarm.board.run_record.choose_tag."""
        latest = self.run_record.get("tag") if self.run_record else None
        chosen = choose_tag(tag, latest, self.board.directory)
        record = self.run_records.get(chosen)
        if record is None:
            raise SwarmError(f"no swarm {chosen!r} on the board {self.board.directory}")
        return SwarmRecord.from_record(record)

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
        return sorted((e for e in self.experiments.values() if e.get("agent") == agent), key=submitted)

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
