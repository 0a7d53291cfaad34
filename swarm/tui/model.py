"""What the TUI shows, computed off the UI loop: the board folded incrementally, turned into frozen snapshots.

`WatchModel.refresh()` runs on a worker thread: it folds what was appended to the board since the last call
(swarm.board.fold.BoardState; never a re-read of the whole board), asks the run's processes for liveness, and
returns a `Snapshot` of plain frozen values that the UI thread applies to its widgets. Expensive parts (the
leaderboard, the progress series) are rebuilt only when a result arrived. The model is the only owner of
its BoardState; anything else that needs the state (verify) goes through `with model.lock`.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text

from swarm.board.checkpoint import CheckpointKeeper
from swarm.board.experiments import (
    DISCARD,
    FAILED_STATUSES,
    FINAL_STATUSES,
    KEEP,
    MARGINAL,
    PROMISING,
    PRUNED,
    GroupKey,
    group_of,
    is_measured,
)
from swarm.board.fold import BoardState
from swarm.board.ledger import Totals
from swarm.board.noise import NoiseSettings
from swarm.board.run_record import AgentEntry
from swarm.board.slots import is_class_queue
from swarm.board.stats import ContentStats
from swarm.board.store import EXPERIMENT, USAGE, VERIFICATION
from swarm.config import load_section
from swarm.errors import SwarmError
from swarm.orchestration.agent_state import CRASHED, DOWN_STATES, Liveness, agent_state
from swarm.orchestration.crashes import crash_reason, last_line
from swarm.repo.git import file_at
from swarm.results.holdout import LineageHoldout, lineage_holdout
from swarm.results.lineage import CommitIndex, LineageStep, lineage
from swarm.results.queues import render_queues
from swarm.runner.trust import sha256_bytes
from swarm.target.profiles import time_budget
from swarm.tui.control import RunControl
from swarm.tui.plot_text import PlotData, plot_text

LEADERS_PER_GROUP = 10
PLOTTED_AGENTS = 8  # the progress plot draws the running best of this many agents: those leading now
HOUR = 3600.0


@dataclass(frozen=True)
class GroupBest:
    group: GroupKey
    id: str
    agent: str | None
    mean: float
    sigma: float | None
    n: int
    verified: bool
    baseline: float | None  # mean of the run's baseline content in this group, when measured


@dataclass(frozen=True)
class Header:
    tag: str | None
    started_at: float | None
    now: float
    agents: int
    alive: int | None  # None: liveness unknown (no tmux to ask)
    experiments: int
    last_hour: int  # experiments finished in the last hour
    busy_slots: int
    slots: int
    bests: tuple[GroupBest, ...]
    unsealed: bool = False  # the run was spawned --unsealed: no result of it was measured in a sandbox
    forged: int = 0  # board lines without a valid signature, ignored (swarm.board.signing)
    pruned: int = 0  # runs stopped early (swarm.runner.pruning)
    saved_seconds: float = 0.0  # the training time they did not spend
    queues: tuple[str, ...] = ()  # the class queues: slots, idle, depth, whose jobs (swarm.results.queues)


@dataclass(frozen=True)
class AgentRow:
    name: str
    kind: str
    queue: str  # where its jobs go: its slot, or its class's queue
    device: str
    state: str
    exit_status: int | None  # of a crashed process
    elapsed: float | None  # seconds the running job has trained
    budget: float | None  # the profile's time budget
    queued: int
    keep: int
    discard: int  # discard + marginal
    crash: int  # crash + timeout + invalid
    best: float | None  # mean val_bpb of its best content
    best_record: dict[str, Any] | None
    latest_record: dict[str, Any] | None  # running, else last finished
    tokens: int = 0  # model tokens its usage records report (swarm.board.ledger); 0: none on the board
    cost: float | None = None  # dollars, when its usage records know them
    promising: int = 0  # results waiting for their confirmation reruns
    pruned: int = 0  # runs stopped early
    reason: str | None = None  # crashed: its last line, or "crash loop: <line>" (swarm.orchestration.crashes)

    @property
    def description(self) -> str | None:
        return self.latest_record.get("description") if self.latest_record else None


@dataclass(frozen=True)
class LeaderRow:
    rank: int  # 0: not confirmed yet (fewer runs than a best needs), shown unranked
    group: GroupKey
    mean: float
    sigma: float | None
    n: int
    verified: bool
    record: dict[str, Any]  # the experiment that first measured this content


@dataclass(frozen=True)
class Snapshot:
    header: Header
    agents: tuple[AgentRow, ...]
    leaders: tuple[LeaderRow, ...]
    plot_text: Text | None  # the plot drawn at the size the widget last reported (None: not yet)
    records_read: int
    refresh_seconds: float  # how long this refresh took on the worker


class WatchModel:
    def __init__(
        self,
        board_dir: Path,
        repo: Path | None = None,
        control_for: Callable[[str], RunControl | None] | None = None,
        clock: Callable[[], float] = time.time,
        noise: NoiseSettings | None = None,
    ):
        # the noise rule decides what a best is (a confirmed mean under `confirm`): swarm.toml's, by default
        if noise is None and repo is not None:
            noise = load_section(repo, "noise", NoiseSettings)
        self.state = BoardState(board_dir, noise)
        self.repo = repo
        self.clock = clock
        # the run's processes are reached through its tag, known once the run record has been read
        self._control_for = control_for
        self.control: RunControl | None = None
        self._control_tag: str | None = None
        self.lock = threading.Lock()
        self._baseline_sha: dict[GroupKey, str] = {}  # first measured content per group, by arrival
        self._base_train_sha: dict[str, str | None] = {}  # run base commit -> sha256 of its train.py
        self._budgets: dict[tuple[str, str], float | None] = {}
        self._agent_queue: dict[
            str, str
        ] = {}  # agent -> queue or slot of its latest own (not rerun) experiment
        self._results = 0
        self._leaders_built_at = -1
        self._leaders: tuple[LeaderRow, ...] = ()
        self._bests: tuple[GroupBest, ...] = ()
        self._plot: PlotData | None = None
        self.plot_size: tuple[int, int] | None = None  # set from the UI thread when the plot widget resizes
        self._plot_drawn: tuple[PlotData | None, tuple[int, int] | None] = (None, None)
        self._plot_text: Text | None = None
        self._usage: dict[str, Totals] = {}  # agent -> its model usage so far (the cost ledger)
        self._saved: dict[str, float] = {}  # pruned experiment id -> training seconds it saved
        self.state.observers.append(self._observe)
        self.keeper: CheckpointKeeper | None = None  # set by the first refresh, which restores the state
        self._commits: CommitIndex | None = None  # commit -> experiment, for lineages (built when asked)

    # ---------------------------------------------------------------------------------------------------
    # Folding (worker thread)

    def _observe(self, record: dict[str, Any]) -> None:
        if record.get("type") == USAGE and record.get("agent"):
            self._usage.setdefault(str(record["agent"]), Totals()).add_usage(record)
            return
        if record.get("type") == VERIFICATION:
            self._results += 1  # a verified mark on the leaderboard changed
        if record.get("type") != EXPERIMENT:
            return
        agent = record.get("agent")
        if agent and not record.get("verify_of") and record.get("gpu") is not None:
            self._agent_queue[str(agent)] = str(record["gpu"])
        if record.get("status") == PRUNED:
            self._saved[str(record.get("id"))] = float(record.get("saved_seconds") or 0.0)
        if record.get("status") in FINAL_STATUSES:
            self._results += 1
            if is_measured(record):
                self._baseline_sha.setdefault(group_of(record), record["train_sha256"])

    def _restore(self) -> None:
        """Start from the board's checkpoint when it has a valid one (swarm.board.checkpoint). The restored
        state carries the progress series; what the observer derives besides is taken from it here: the usage
        totals from its usage records, each group's first measured content from the first step of the group's
        running best. No experiment record is read for this (at 100,000 that is most of a first screen)."""
        keeper = CheckpointKeeper.restore(self.state.board, self.state.noise)
        self.keeper = keeper
        if not keeper.restored:
            keeper.state = self.state  # nothing restored: go on with the state the observer is on
            return
        self.state = keeper.state
        self.state.observers.append(self._observe)
        for record in self.state.usage:
            self._observe(record)
        for key, group in self.state.progress.groups.items():
            if group.best:
                first = self.state.experiments.get(group.best[0].id)
                if first is not None:
                    self._baseline_sha.setdefault(key, first["train_sha256"])
        if self.state.run is None:  # agents as the board knows them: their slots come from their experiments
            for record in self.state.experiments.values():
                self._observe(record)
        self._results += 1  # the leaderboard and plot are built from the restored state

    def refresh(self) -> Snapshot:
        """Fold what is new on the board and build the snapshot to show (call on a worker thread)."""
        started = time.perf_counter()
        with self.lock:
            if self.keeper is None:
                self._restore()
            else:
                self.keeper.tick()  # between refreshes, never before the first screen
            self.state.follow()
            now = self.clock()
            liveness = self._liveness()
            if self._leaders_built_at != self._results:
                self._leaders, self._bests = self._build_leaders()
                self._plot = self._build_plot(now)
                self._leaders_built_at = self._results
            size = self.plot_size
            if self._plot is not None and size and (self._plot, size) != self._plot_drawn:
                self._plot_text = plot_text(self._plot, *size)
                self._plot_drawn = (self._plot, size)
            agents = tuple(self._agent_rows(now, liveness))
            header = self._header(now, agents, liveness)
            return Snapshot(
                header=header,
                agents=agents,
                leaders=self._leaders,
                plot_text=self._plot_text,
                records_read=self.state.records_read,
                refresh_seconds=time.perf_counter() - started,
            )

    def _liveness(self) -> Liveness | None:
        run = self.state.run
        if self._control_for and run and run.tag != self._control_tag:
            self._control_tag = run.tag
            try:
                self.control = self._control_for(run.tag)
            except SwarmError:
                self.control = None  # e.g. tmux is not installed here: the board alone is shown
        if self.control is None:
            return None
        try:
            return self.control.liveness()
        except SwarmError:
            return None  # tmux missing or failing: show what the board says

    # ---------------------------------------------------------------------------------------------------
    # Parts of the snapshot

    def _agent_entries(self) -> list[AgentEntry]:
        run = self.state.run
        if run and run.agents:
            return list(run.agents)
        # no run record (a board written by hand or by runners alone): agents as the board knows them
        return [
            AgentEntry(
                name=a, kind="?", queue=self._agent_queue.get(a, "?"), device="", worktree="", branch=""
            )
            for a in sorted(self.state.agents, key=str)
        ]

    def _budget(self, profile: str | None) -> float | None:
        run = self.state.run
        key = (run.base if run else "", profile or (run.profile if run else ""))
        if key not in self._budgets:
            self._budgets[key] = None
            source = file_at(self.repo, run.base, "prepare.py") if (self.repo and run) else None
            if source is None and self.repo and (self.repo / "prepare.py").exists():
                source = (self.repo / "prepare.py").read_bytes()
            if source is not None and key[1]:
                # no budget known (SwarmError): the table shows the elapsed time without a bar
                with contextlib.suppress(SwarmError):
                    self._budgets[key] = time_budget(source, key[1])
        return self._budgets[key]

    def _agent_rows(self, now: float, liveness: Liveness | None):
        state = self.state
        for entry in self._agent_entries():
            summary = state.agent_summary(entry.name)
            if is_class_queue(
                entry.queue
            ):  # its class's slots are shared: its own running job and queued ones
                current = state.experiments.get(summary.current) if summary and summary.current else None
                running = current if current and current.get("status") == "running" else None
                waiting = [r for r in state.queue(entry.queue) if r.get("agent") == entry.name]
            else:
                running = state.running(entry.queue)
                waiting = state.queue(entry.queue)
            queued = len(waiting)
            state_name, exit_status = agent_state(entry, liveness, running is not None, queued)
            counts = summary.counts if summary else {}
            best_record = state.experiments.get(summary.best) if summary and summary.best else None
            best = None
            if best_record is not None:
                content = state.content(group_of(best_record), best_record["train_sha256"])
                best = content.mean if content else best_record.get("val_bpb")
            # what it is doing: its running job, else its next queued one, else its last result
            latest = state.experiments.get(summary.current) if summary and summary.current else None
            latest = latest or next((r for r in waiting if r.get("agent") == entry.name), None)
            latest = latest or (state.experiments.get(summary.last) if summary and summary.last else None)
            elapsed = None
            if running and running.get("started_at"):
                elapsed = max(0.0, now - running["started_at"])
            yield AgentRow(
                name=entry.name,
                kind=entry.kind,
                queue=entry.queue,
                device=entry.device or (best_record or {}).get("device") or "",
                state=state_name,
                exit_status=exit_status,
                elapsed=elapsed,
                budget=self._budget(running.get("profile")) if running else None,
                queued=queued,
                keep=counts.get(KEEP, 0),
                discard=sum(counts.get(s, 0) for s in (DISCARD, MARGINAL)),
                crash=sum(counts.get(s, 0) for s in FAILED_STATUSES),
                best=best,
                best_record=best_record,
                latest_record=latest,
                tokens=self._usage[entry.name].tokens if entry.name in self._usage else 0,
                cost=self._usage[entry.name].cost_usd if entry.name in self._usage else None,
                promising=counts.get(PROMISING, 0),
                pruned=counts.get(PRUNED, 0),
                reason=self._crash_reason(entry.name) if state_name == CRASHED else None,
            )

    def _crash_reason(self, window: str) -> str:
        last = None
        if self.control is not None:
            with contextlib.suppress(SwarmError):  # the window went meanwhile
                last = last_line(self.control.capture(window))
        run = self.state.run
        return crash_reason(last, self.state.other, window, run.tag if run else "")

    def _baseline(self, key: GroupKey) -> float | None:
        """Mean of the baseline content in a group: the run base's train.py when this repository has the
        base commit, else the group's first measured content (every agent starts with the baseline)."""
        run = self.state.run
        sha = None
        if run and self.repo:
            if run.base not in self._base_train_sha:
                source = file_at(self.repo, run.base, "train.py")
                self._base_train_sha[run.base] = sha256_bytes(source) if source else None
            sha = self._base_train_sha[run.base]
        content = self.state.content(key, sha) if sha else None
        if content is None and key in self._baseline_sha:
            content = self.state.content(key, self._baseline_sha[key])
        return content.mean if content else None

    def _build_leaders(self) -> tuple[tuple[LeaderRow, ...], tuple[GroupBest, ...]]:
        rows, bests = [], []
        for key, best in self.state.bests().items():
            e = best.experiment
            bests.append(
                GroupBest(
                    key,
                    e["id"],
                    e.get("agent"),
                    best.mean,
                    best.sigma,
                    best.n,
                    best.verified,
                    self._baseline(key),
                )
            )
            # ranked: the confirmed contents, whose #1 is the best the header shows; then, unranked (0), the
            # lowest means that have fewer runs (a single run is never a best)
            confirmed = self.state.confirmed_top(key, LEADERS_PER_GROUP)
            pending = [b for b in self.state.top(key, LEADERS_PER_GROUP) if not b.confirmed]
            for rank, top in [*enumerate(confirmed, 1), *((0, b) for b in pending)]:
                rows.append(LeaderRow(rank, key, top.mean, top.sigma, top.n, top.verified, top.experiment))
        return tuple(rows), tuple(bests)

    def _build_plot(self, now: float) -> PlotData | None:
        group = self.state.progress.main_group()
        best = self.state.best_steps(group.key) if group is not None else []
        if not best:
            return None  # no confirmed best yet: the board's best line starts with one
        run = self.state.run
        start = run.created_at if run else group.best[0].at
        # the agents whose running best is lowest now: 64 step lines in a terminal are one grey smear, and
        # drawing them would cost the first screen of a long run a third of a second
        leading = heapq.nsmallest(PLOTTED_AGENTS, group.agent_best.items(), key=lambda a: a[1][-1].value)
        agents = tuple(sorted((a, tuple(s)) for a, s in leading))
        return PlotData(group.key, start, now, tuple(best), agents, len(group.agent_best))

    def _header(self, now: float, agents: tuple[AgentRow, ...], liveness: Liveness | None) -> Header:
        run = self.state.run
        alive = None
        if liveness is not None:
            alive = sum(1 for a in agents if a.state not in DOWN_STATES)
        # the slots that train: a box's workers (shared by its agents), else each agent's own
        slots = set(run.slots()) if run and run.workers else {a.queue for a in agents}
        busy = sum(1 for s in self.state.running_slots() if s in slots)
        finish_times = self.state.finish_times
        hour_ago = bisect.bisect_left(finish_times, now - HOUR)
        started = run.created_at if run else (finish_times[0] if finish_times else None)
        return Header(
            tag=run.tag if run else None,
            started_at=started,
            now=now,
            agents=len(agents),
            alive=alive,
            experiments=len(self.state.experiments),
            last_hour=len(finish_times) - hour_ago,
            busy_slots=busy,
            slots=len(slots),
            bests=self._bests,
            unsealed=bool(run and run.unsealed),
            forged=self.state.forged,
            pruned=len(self._saved),
            saved_seconds=sum(self._saved.values()),
            queues=tuple(render_queues(self.state, run, busy=False)) if run and run.workers else (),
        )

    # ---------------------------------------------------------------------------------------------------
    # Actions that need the state (any thread; serialised with refresh by the lock)

    def lineage(self, record: dict[str, Any]) -> tuple[float | None, list[LineageStep]]:
        """The baseline mean of the experiment's group and its lineage (swarm.results.lineage), from the
        experiment's latest record (any thread: takes the lock)."""
        with self.lock:
            if self._commits is None or self._commits.state is not self.state:
                self._commits = CommitIndex(self.state)
            latest = self.state.experiments.get(record["id"], record)
            return self._baseline(group_of(latest)), lineage(self.state, latest, self.repo, self._commits)

    def content_of(self, record: dict[str, Any]) -> ContentStats | None:
        """The repeat statistics of an experiment's train.py (any thread: takes the lock)."""
        with self.lock:
            return self.state.content(group_of(record), record.get("train_sha256") or "")

    def holdout(self, steps: list[LineageStep]) -> LineageHoldout | None:
        """The private holdout values along a lineage (swarm.results.holdout), or None where they cannot
        be read (any thread: takes the lock)."""
        with self.lock:
            return lineage_holdout(self.state, steps, self.repo, self.state.board.directory)

    def verify(self, experiment_id: str, repeats: int = 1) -> list[dict[str, Any]]:
        from swarm.board.reruns import schedule_verify

        with self.lock:
            return schedule_verify(self.state.board, self.state, experiment_id, repeats, requested_by="watch")
