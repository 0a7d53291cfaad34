"""The coordinator's reconcile pass against a recording tmux stand-in and a hand-moved clock: what it
starts, restarts, leaves alone, and how it backs off a process that keeps dying young."""

from __future__ import annotations

from dataclasses import replace

from swarm.board.run_record import AgentEntry, SwarmRecord, set_stopped, write_run_record
from swarm.board.store import Board
from swarm.orchestration.coordinator import Coordinator, CoordinatorSettings
from swarm.orchestration.tmux import Pane
from swarm.repo.paths import RunPaths


class RecordingTmux:
    """Windows as the coordinator would see them; records each start and restart."""

    def __init__(self):
        self._panes: dict[str, Pane] = {}
        self.calls: list[tuple[str, str]] = []
        self.next_pid = 100
        self.output: dict[str, str] = {}  # window -> what its process printed

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

    def die(self, window: str, status: int = 1, output: str = "") -> None:
        self._panes[window] = replace(self._panes[window], dead=True, exit_status=status)
        self.output[window] = output + "\nPane is dead (status 1, Sun Dec  6 20:00:00 2026)\n"

    def capture(self, window: str, lines: int = 200) -> str:
        return self.output.get(window, "")


def make(tmp_path, agents=("gpu0", "gpu1")):
    paths = RunPaths(repo=tmp_path, board=tmp_path / "board", worktrees=tmp_path / "worktrees")
    board = Board(paths.board).create()
    slots = tuple(
        AgentEntry(a, "claude", a[3:], "H100", str(tmp_path / "worktrees" / a), f"swarm/t/{a}")
        for a in agents
    )
    write_run_record(board, SwarmRecord("t", "0" * 40, "h100", slots))
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


def test_an_agent_crashing_the_same_way_is_left_down_with_its_reason(tmp_path):
    """Three young crashes with the same last line: a crash loop, said on the board, no more restarts;
    a crash with another reason, or a process someone else started (`swarm resume`), starts afresh."""
    coordinator, tmux, clock, board = make(tmp_path, agents=("gpu0",))
    coordinator.reconcile()
    error = "ValueError: CategoricalDistribution does not support dynamic value space."

    def crash(output: str) -> bool:
        """It dies soon after starting: restarted within the longest backoff?"""
        clock[0] += 1.0
        tmux.die("gpu0", output=output)
        for _ in range(40):
            if "restart gpu0" in coordinator.reconcile():
                return True
            clock[0] += 0.5
        return False

    traceback = "Traceback (most recent call last):\n  ...\n" + error
    # a different reason in between: the count starts again
    assert [crash(o) for o in (traceback, traceback, "\x1b[31mswarm: other\x1b[0m", error, error)] == [
        True
    ] * 5
    assert not crash(error)  # the 3rd in a row with the same reason: a crash loop, left down
    exits = [r for r in board.records() if r["type"] == "process" and r["window"] == "gpu0"]
    assert [r["event"] for r in exits] == ["exited"] * 5 + ["crash_loop"]
    assert exits[-1]["reason"] == error and exits[2]["reason"] == "swarm: other"  # escapes removed

    tmux._panes["gpu0"] = tmux._pane("gpu0")  # `swarm resume` started it again: watched anew
    assert coordinator.reconcile() == []
    assert crash(error)

    # a runner failing the same way (a device fault, say) is retried with backoff, never left down
    for _ in range(4):
        clock[0] += 1.0
        tmux.die("runner-gpu0", output="swarm: CUDA error: no device")
        restarted = False
        for _ in range(40):
            if "restart runner-gpu0" in coordinator.reconcile():
                restarted = True
                break
            clock[0] += 0.5
        assert restarted


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


def test_a_restarted_llm_agent_gets_its_last_results_and_the_global_best(tmp_path, monkeypatch):
    from swarm.board.experiments import new_experiment
    from swarm.board.store import PROCESS
    from swarm.orchestration.launch import plan_process
    from tests.support.standins import make_repo

    repo = make_repo(tmp_path / "repo")
    (repo / "swarm.toml").write_text('[noise]\nrule = "single"\n')  # single runs are bests here
    paths = RunPaths.for_repo(repo)
    board = Board(paths.board).create()
    slots = tuple(
        AgentEntry(a, "claude", a[3:], "H100", str(repo), f"swarm/t/{a}", stopped=False)
        for a in ("gpu0", "gpu1")
    )
    run = SwarmRecord("t", "0" * 40, "h100", slots, unsealed=True)  # the command line itself, not its sandbox
    write_run_record(board, run)
    for agent, value, text in (
        ("gpu0", 1.0, "baseline"),
        ("gpu0", 1.01, "wider\nmodel"),
        ("gpu1", 0.98, "lr 0.03"),
    ):
        board.append(
            new_experiment(
                agent=agent, gpu=agent[3:], device="H100", profile="h100", status="keep" if value < 1.01 else "discard",
                val_bpb=value, train_sha256=f"sha-{value}", description=text, commit="c" * 40,
            )
        )  # fmt: skip
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")  # as if Claude Code were installed
    first, _, env, resumed = plan_process(run, "gpu0", paths, board, board.records())
    assert not resumed and first[:2] == ["claude", "-p"] and "You are being resumed" not in first[2]
    assert env["CUDA_VISIBLE_DEVICES"] == "0" and env["SWARM_AGENT"] == "gpu0"
    board.append({"type": PROCESS, "tag": "t", "window": "gpu0", "event": "started", "pid": 1})
    argv, cwd, _, resumed = plan_process(run, "gpu0", paths, board, board.records())
    prompt = argv[2]
    assert resumed and cwd == repo and "You are being resumed" in prompt
    assert 'discard val_bpb 1.010000 "wider\\nmodel"' in prompt  # agent text quoted, never raw lines
    assert "Global best:" in prompt and "0.980000" in prompt and "by gpu1" in prompt
