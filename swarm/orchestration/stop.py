"""`swarm stop [AGENT]` and `swarm attach AGENT`: end a run's processes (keeping all work), or look at one.

Stopping ends processes only: worktrees, branches and the board stay, and `swarm resume` brings the run
back. The coordinator goes first (so nothing is restarted behind our back), then agents, then runners
(so a runner can record the experiment it was running); each gets SIGTERM, then SIGKILL after a grace
period, and finally the run's tmux server is killed. Every agent is marked `stopped` in the run record
first (`swarm resume` clears the marks). Stopping one agent first writes the run record again
with that agent marked `stopped`, so the coordinator leaves it down; its runner keeps going so that jobs
it already queued still run.
"""

from __future__ import annotations

import os
import signal
import time

from swarm.board.run_record import open_run, require_agent, set_stopped
from swarm.board.store import Board
from swarm.errors import SwarmError
from swarm.orchestration.launch import COORDINATOR_WINDOW, runner_windows
from swarm.orchestration.tmux import RunTmux
from swarm.repo.paths import RunPaths, run_paths

GRACE_S = 10.0


def _signal_group(pid: int, sig: int) -> None:
    """Signal the process group a pane's process leads (tmux starts each pane in a session of its own)."""
    try:
        pgid = os.getpgid(pid)
        if pgid != os.getpgrp():
            os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def terminate(tmux: RunTmux, windows: list[str], grace_s: float = GRACE_S) -> None:
    """SIGTERM the processes of these windows, wait for their panes to die, SIGKILL what is left."""
    panes = tmux.panes()
    for window in windows:
        if window in panes and not panes[window].dead:
            _signal_group(panes[window].pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while True:
        panes = tmux.panes()
        alive = [w for w in windows if w in panes and not panes[w].dead]
        if not alive:
            return
        if time.monotonic() > deadline:
            for window in alive:
                _signal_group(panes[window].pid, signal.SIGKILL)
            return
        time.sleep(0.1)


def stop(
    paths: RunPaths, tag: str | None = None, agent: str | None = None, out=print, grace_s: float = GRACE_S
) -> None:
    board = Board(paths.board)
    run = open_run(board, tag)
    tmux = RunTmux(paths.repo, run.tag)
    if agent is not None:
        require_agent(run, agent)
        set_stopped(board, run.tag, {agent}, stopped=True)
        if tmux.is_running():
            terminate(tmux, [agent], grace_s)
            if agent in tmux.panes():
                tmux.kill_window(agent)
        out(f"stopped {agent} (its worktree, branch and runner stay; `swarm resume` starts it again)")
        return
    # Marked stopped first, so that the TUI and `swarm status` tell a run the user stopped from one that
    # died (kill -9, a reboot); `swarm resume` clears the marks.
    set_stopped(board, run.tag, None, stopped=True)
    if not tmux.is_running():
        tmux.kill_server()  # a stale socket, if any
        out(f"swarm {run.tag}: no processes running")
        return
    terminate(tmux, [COORDINATOR_WINDOW], grace_s)
    terminate(tmux, [a.name for a in run.agents], grace_s)
    terminate(tmux, runner_windows(run), grace_s)
    tmux.kill_server()
    out(f"stopped run {run.tag}: worktrees, branches and board kept (`swarm resume` to go on)")


def cmd_stop(args) -> int:
    stop(run_paths(), args.tag, args.agent)
    return 0


def cmd_attach(args) -> int:
    paths = run_paths()
    run = open_run(Board(paths.board), args.tag)
    window = args.agent
    if window != COORDINATOR_WINDOW and window not in runner_windows(run):
        require_agent(run, window)  # an agent's window, else one clear line naming the agents
    tmux = RunTmux(paths.repo, run.tag)
    if not tmux.is_running():
        raise SwarmError(f"swarm {run.tag} is not running (`swarm resume` starts it)")
    if window not in tmux.panes():
        raise SwarmError(f"swarm {run.tag} has no window {window!r} (stopped? see `swarm status`)")
    argv = tmux.attach_argv(window)
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}  # attaching from inside tmux nests it
    os.execvpe(argv[0], argv, env)
    return 0  # not reached
