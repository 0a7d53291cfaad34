"""The coordinator's reconcile pass against a recording tmux stand-in and a hand-moved clock: what it
starts, restarts, leaves alone, and how it backs off a process that keeps dying young."""

from __future__ import annotations

from dataclasses import replace

from swarm.board import Board
from swarm.coordinator import Coordinator, CoordinatorSettings
from swarm.paths import RunPaths
from swarm.run_record import AgentSlot, RunRecord, write_run_record
from swarm.runs import set_stopped
from swarm.tmux import Pane


class RecordingTmux:
    """Windows as the coordinator would see them; records each start and restart."""

    def __init__(self):
        self._panes: dict[str, Pane] = {}
        self.calls: list[tuple[str, str]] = []
        self.next_pid = 100

    def _pane(self, window: str) -> Pane:
        self.next_pid += 1
        return Pane(f"@{window}", window, f"%{window}", self.next_pid, False, None)

    def panes(self) -> dict[str, Pane]:
        return dict(self._panes)

    def new_window(self, window, argv, cwd, log):
        self.calls.append(("new", window))
        self._panes[window] = self._pane(window)

    def respawn(self, window, argv, cwd, log):
        assert self._panes[window].dead, "respawned a live pane"
        self.calls.append(("respawn", window))
        self._panes[window] = self._pane(window)

    def die(self, window: str, status: int = 1) -> None:
        self._panes[window] = replace(self._panes[window], dead=True, exit_status=status)


def make(tmp_path, agents=("gpu0", "gpu1")):
    paths = RunPaths(repo=tmp_path, board=tmp_path / "board", worktrees=tmp_path / "worktrees")
    board = Board(paths.board).create()
    slots = tuple(
        AgentSlot(a, "claude", a[3:], "H100", str(tmp_path / "worktrees" / a), f"swarm/t/{a}") for a in agents
    )
    write_run_record(board, RunRecord("t", "0" * 40, "h100", slots))
    tmux = RecordingTmux()
    clock = [1000.0]
    settings = CoordinatorSettings(tick_s=1.0, healthy_s=60.0, max_backoff_s=8.0)
    coordinator = Coordinator(paths, "t", settings, tmux=tmux, clock=lambda: clock[0])
    return coordinator, tmux, clock, board


def test_missing_windows_are_created_agents_first_and_live_ones_left_alone(tmp_path):
    coordinator, tmux, _, _ = make(tmp_path)
    assert coordinator.reconcile() == ["start gpu0", "start gpu1", "start runner-gpu0", "start runner-gpu1"]
    assert coordinator.reconcile() == []


def test_a_process_dying_young_is_restarted_with_growing_backoff(tmp_path):
    coordinator, tmux, clock, board = make(tmp_path, agents=("gpu0",))
    coordinator.reconcile()
    delays = []
    for _ in range(5):
        tmux.die("gpu0")
        died_at = clock[0]
        while "restart gpu0" not in coordinator.reconcile():
            clock[0] += 0.5
        delays.append(clock[0] - died_at)
        clock[0] += 1.0  # it dies again soon after starting
    assert delays == [2.0, 4.0, 8.0, 8.0, 8.0]
    exits = [r for r in board.records() if r["type"] == "process" and r["event"] == "exited"]
    assert len(exits) == 5 and all(r["window"] == "gpu0" and r["exit_status"] == 1 for r in exits)

    clock[0] += 120.0  # this time it ran for two minutes: a normal end, restarted at once
    tmux.die("gpu0", status=0)
    assert coordinator.reconcile() == ["restart gpu0"]


def test_a_stopped_agent_stays_down_while_its_runner_is_kept(tmp_path):
    coordinator, tmux, clock, board = make(tmp_path)
    coordinator.reconcile()
    set_stopped(board, "t", {"gpu1"}, stopped=True)
    tmux.die("gpu1")
    tmux.die("runner-gpu1")
    clock[0] += 100.0
    assert coordinator.reconcile() == ["restart runner-gpu1"]
    set_stopped(board, "t", {"gpu1"}, stopped=False)
    assert coordinator.reconcile() == ["restart gpu1"]
