"""The TUI's seam to the run's processes: liveness, live panes, attach, stop and restart of an agent.

Everything here goes through the run's own pieces (swarm.orchestration.tmux on the run's private socket, swarm.orchestration.stop,
swarm.board.run_record), so the TUI does exactly what `swarm attach` / `swarm stop AGENT` do. A restart never starts
a process itself: it ends the agent's process (or lifts its stop flag) and the coordinator, which owns
process lifecycles, starts it again with a resume prompt. Calls that wait (stop, restart) run on a worker.
"""

from __future__ import annotations

import os
from typing import Protocol

from swarm.board.run_record import open_run, require_agent, set_stopped
from swarm.board.store import Board
from swarm.errors import SwarmError
from swarm.orchestration.agent_state import Liveness
from swarm.orchestration.stop import stop, terminate
from swarm.orchestration.tmux import RunTmux
from swarm.repo.paths import RunPaths


class RunControl(Protocol):
    def liveness(self) -> Liveness: ...

    def capture(self, window: str, lines: int = 200) -> str: ...

    def attach_argv(self, window: str) -> tuple[list[str], dict[str, str]]: ...

    def stop(self, agent: str) -> str: ...

    def restart(self, agent: str) -> str: ...


class TmuxRunControl:
    """RunControl of run `tag` in `paths.repo`: its tmux server and its board's run record."""

    def __init__(self, paths: RunPaths, tag: str, grace_s: float = 10.0):
        self.paths = paths
        self.tag = tag
        self.grace_s = grace_s
        self.tmux = RunTmux(paths.repo, tag)
        self.board = Board(paths.board)

    def liveness(self) -> Liveness:
        panes = self.tmux.panes()
        return Liveness(server_up=bool(panes), panes=panes)

    def capture(self, window: str, lines: int = 200) -> str:
        if window not in self.tmux.panes():
            raise SwarmError(f"no tmux window {window!r} in swarm {self.tag} (stopped or not started)")
        return self.tmux.capture(window, lines)

    def attach_argv(self, window: str) -> tuple[list[str], dict[str, str]]:
        """The command line and environment that show `window` in this terminal (as `swarm attach`)."""
        if window not in self.tmux.panes():
            raise SwarmError(f"no tmux window {window!r} in swarm {self.tag} (stopped or not started)")
        env = {k: v for k, v in os.environ.items() if k != "TMUX"}  # attaching from inside tmux nests it
        return self.tmux.attach_argv(window), env

    def stop(self, agent: str) -> str:
        said: list[str] = []
        stop(self.paths, self.tag, agent, out=said.append, grace_s=self.grace_s)
        return " ".join(said)

    def restart(self, agent: str) -> str:
        run = open_run(self.board, self.tag)
        slot = require_agent(run, agent)
        if not self.liveness().coordinator_alive:
            raise SwarmError(
                f"the coordinator of swarm {self.tag} is not running: `swarm resume` starts the swarm"
            )
        if slot.stopped:
            set_stopped(self.board, self.tag, {agent}, stopped=False)
            return f"{agent}: stop lifted; the coordinator starts it with a resume prompt"
        terminate(self.tmux, [agent], self.grace_s)
        return f"{agent}: process ended; the coordinator starts it again with a resume prompt"
