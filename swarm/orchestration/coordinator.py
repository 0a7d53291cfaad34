"""The coordinator: every few seconds, make the run's tmux windows match what the board says the run is.

Desired state: the latest run record of the tag (agents, slots, worktrees), less the agents it marks
stopped (`swarm stop AGENT`). Reality: the panes of the run's tmux session. A missing window is created, a dead
pane (its process exited or was killed) is respawned; a process that keeps dying young is restarted with
exponential backoff, so a broken agent CLI cannot flood the board; an agent that dies young the same way
(the same last line) CRASH_LOOP times in a row is left down, and the board says `crash loop: <reason>`
(a `swarm resume` restarts it). It also has each device class's new best
rerun once on another slot, so that a morning's best is verified (swarm.orchestration.best_verifier). The coordinator keeps no state that
matters: killed with -9 and started again, it finds the same windows and goes on, and it only ever starts
processes, never deletes work. One coordinator per run: a second one exits at once.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from dataclasses import dataclass

from filelock import FileLock, Timeout

from swarm.board.checkpoint import CheckpointKeeper
from swarm.board.noise import NoiseSettings
from swarm.board.run_record import SwarmFollower
from swarm.board.store import PROCESS, Board
from swarm.config import load_section
from swarm.orchestration.best_verifier import BestVerifier
from swarm.orchestration.crashes import CRASH_LOOP_EVENT, last_output
from swarm.orchestration.launch import WindowPlan, launcher_argv, pane_log, window_plans
from swarm.orchestration.tmux import Pane, RunTmux, TmuxError
from swarm.orchestration.validate import ClassValidator
from swarm.repo.paths import RunPaths, run_paths
from swarm.results.answers import AnswerKeeper, context_key
from swarm.results.queries import common_answers

CRASH_LOOP = 3  # young crashes in a row with the same last line: the process is not restarted again


@dataclass(frozen=True)
class CoordinatorSettings:
    """`[coordinator]` in swarm.toml."""

    tick_s: float = 2.0  #: [advanced] seconds between reconcile passes
    #: [advanced] a process that lived this long was not crash-looping: restart it at once
    healthy_s: float = 60.0
    #: [advanced] longest wait before restarting a process that keeps dying young
    max_backoff_s: float = 300.0
    #: [advanced] under the noise rule "single": rerun each new best of a device class once on another slot
    verify_best: bool = True
    verify_repeats: int = 1  #: [advanced] reruns per verification


@dataclass
class Supervision:
    """What the coordinator remembers about one window between ticks."""

    pid: int = 0  # the live process last seen in the pane
    seen_alive_at: float = 0.0
    failures: int = 0  # consecutive deaths soon after starting
    restart_at: float = 0.0
    reported_dead_pid: int = 0
    reason: str | None = None  # the last line its latest crash printed
    same_crashes: int = 0  # young crashes in a row with that same reason
    given_up: str | None = None  # the reason of a crash loop: no more restarts until a new process runs


class Coordinator:
    def __init__(
        self,
        paths: RunPaths,
        tag: str,
        settings: CoordinatorSettings | None = None,
        tmux: RunTmux | None = None,
        clock=time.monotonic,
    ):
        self.paths = paths
        self.settings = settings or CoordinatorSettings()
        self.tag = tag
        self.board = Board(paths.board)
        self.tmux = tmux or RunTmux(paths.repo, tag)
        self.follower = SwarmFollower(self.board, tag)
        self.clock = clock
        self.windows: dict[str, Supervision] = {}
        # the board's folded state, checkpointed as the board grows so that every `swarm best` an agent runs
        # (and the human's watch) folds only the last few records (swarm.board.checkpoint)
        context = context_key(paths.repo)  # of the swarm.toml the noise settings are read from
        self.keeper = CheckpointKeeper.restore(self.board, load_section(paths.repo, "noise", NoiseSettings))
        # and the answers agents ask for all night, saved after every change (swarm.results.answers)
        self.answers = AnswerKeeper(self.keeper.state, context, common_answers)
        self.verifier = (
            BestVerifier(self.board, self.settings.verify_repeats, self.keeper.state)
            if self.settings.verify_best
            else None
        )
        self.validator: ClassValidator | None = None

    def reconcile(self) -> list[str]:
        """One pass; returns what it did ("start gpu3", "restart runner-gpu3"), for logs and tests."""
        run = self.follower.refresh()
        if run is None:
            return []
        panes = self.tmux.panes()
        actions = []
        for plan in window_plans(run, self.paths):
            try:
                action = self._ensure(plan, panes.get(plan.name))
            except TmuxError as e:  # e.g. the pane was respawned by someone else meanwhile: next tick
                action = f"failed {plan.name}: {e}"
            if action:
                actions.append(action)
        return actions

    def _ensure(self, plan: WindowPlan, pane: Pane | None) -> str | None:
        now = self.clock()
        state = self.windows.setdefault(plan.name, Supervision())
        argv, log = launcher_argv(self.tag, plan.name), pane_log(self.paths, plan.name)
        if pane is None:
            self.tmux.new_window(plan.name, argv, plan.cwd, log)
            state.seen_alive_at = now
            return f"start {plan.name}"
        if not pane.dead:
            if pane.pid != state.pid:
                state.pid, state.seen_alive_at = pane.pid, now
                if state.given_up is not None:  # `swarm resume` started it again: watched anew
                    state.given_up, state.same_crashes = None, 0
            return None
        if state.reported_dead_pid != pane.pid:
            self._note_exit(plan.name, pane, state, now)
        if state.given_up is not None or now < state.restart_at:
            return None
        self.tmux.respawn(plan.name, argv, plan.cwd, log)
        state.pid, state.seen_alive_at = 0, now
        return f"restart {plan.name}"

    def _note_exit(self, window: str, pane: Pane, state: Supervision, now: float) -> None:
        lived = now - state.seen_alive_at if state.seen_alive_at else 0.0
        state.failures = state.failures + 1 if lived < self.settings.healthy_s else 0
        backoff = min(self.settings.max_backoff_s, 2.0**state.failures) if state.failures else 0.0
        state.restart_at = now + backoff
        state.reported_dead_pid = pane.pid
        # agents only: a runner that keeps failing (a device fault) is retried with backoff, never left down
        agent = not window.startswith("runner-")
        reason = (
            last_output(self.tmux, window, pane_log(self.paths, window))
            if pane.exit_status and agent
            else None
        )
        young_again = state.failures > 0 and reason is not None and reason == state.reason
        state.same_crashes = state.same_crashes + 1 if young_again else (1 if reason else 0)
        state.reason = reason
        record = {
            "type": PROCESS,
            "tag": self.tag,
            "window": window,
            "event": "exited",
            "pid": pane.pid,
            "exit_status": pane.exit_status,
            "restart_in_s": round(state.restart_at - now, 1),
            "reason": reason,
        }
        if state.same_crashes >= CRASH_LOOP:
            state.given_up = reason
            record.update(event=CRASH_LOOP_EVENT, restart_in_s=None)
            print(f"{time.strftime('%H:%M:%S')} {window}: crash loop: {reason}", flush=True)
        self.board.append(record)

    def _validate(self) -> list[str]:
        """A cluster run spawned with --validate-on: confirm each screening class's new best there."""
        run = self.follower.run
        if run is None or not run.validate_on:
            return []
        if self.validator is None or self.validator.validator != run.validate_on:
            self.validator = ClassValidator(
                self.board, run.validate_on, self.settings.verify_repeats, self.keeper.state.noise
            )
        return self.validator.tick()

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = self.clock()
            actions = self.reconcile() + (self.verifier.tick() if self.verifier else []) + self._validate()
            self.keeper.state.refresh()  # nothing left to fold when the verifier just did
            self.keeper.tick()
            self.answers.tick()
            for action in actions:
                print(f"{time.strftime('%H:%M:%S')} {action}", flush=True)
            stop.wait(max(0.0, self.settings.tick_s - (self.clock() - started)))


def cmd_coordinator(args) -> int:
    paths = run_paths()
    board = Board(paths.board).require()
    # One coordinator per run: the kernel drops the lock when its holder dies, even by kill -9.
    lock = FileLock(str(board.directory / f"coordinator-{args.tag}.lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        print(f"another coordinator supervises run {args.tag}; exiting", file=sys.stderr)
        return 0
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    settings = load_section(paths.repo, "coordinator", CoordinatorSettings)
    print(f"coordinator of swarm {args.tag}: reconciling every {settings.tick_s:g} s", flush=True)
    try:
        Coordinator(paths, args.tag, settings).run_forever(stop)
    finally:
        lock.release()
    return 0
