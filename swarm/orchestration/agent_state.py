"""What an agent is doing, in one vocabulary for `swarm status` and `swarm watch`.

The process state comes from tmux (is the agent's window alive, did it exit with an error, is it held down
by `swarm stop AGENT`); while the process is alive, the board decides between training, queued and
thinking. Both commands call `agent_state`, so they can never disagree about an agent. A runner's or the
coordinator's window has a window state, named here too (docs/glossary.md: an experiment has a status, an
agent a state, a window a window state).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from swarm.board.run_record import AgentEntry
from swarm.orchestration.launch import COORDINATOR_WINDOW
from swarm.orchestration.tmux import Pane

# Agent states.
TRAINING = "training"  # a slot runs its job
WAITING = "waiting"  # its jobs wait in a queue, none runs yet (an experiment's status is then `queued`)
THINKING = "thinking"  # alive, nothing submitted: the agent is working on its next change
CRASHED = "crashed"  # its process exited with an error (the coordinator restarts it)
DEAD = "dead"  # no process: its window is gone, or the run's tmux server is down
STOPPED = "stopped"  # held down by `swarm stop AGENT`
DOWN_STATES = frozenset({CRASHED, DEAD, STOPPED})

# Window states: a runner's or the coordinator's tmux window.
WINDOW_RUNNING = "running"
WINDOW_RESTARTING = "restarting"  # its process exited and the coordinator will start it again
WINDOW_DEAD = "dead"  # its process exited and nothing restarts it
WINDOW_DOWN = "down"  # no such window, or no tmux server


@dataclass(frozen=True)
class Liveness:
    """What tmux says about the run's windows at one moment."""

    server_up: bool
    panes: dict[str, Pane] = field(default_factory=dict)  # window name -> its pane

    @property
    def coordinator_alive(self) -> bool:
        pane = self.panes.get(COORDINATOR_WINDOW)
        return pane is not None and not pane.dead


def process_state(agent: AgentEntry, liveness: Liveness | None) -> tuple[str | None, int | None]:
    """The state tmux decides (stopped / dead / crashed) and the exit status, or None when the process is
    alive or there is no tmux to ask (then the board decides)."""
    if liveness is None:
        return (STOPPED, None) if agent.stopped else (None, None)
    pane = liveness.panes.get(agent.name) if liveness.server_up else None
    if pane is None:
        return (STOPPED if agent.stopped else DEAD), None
    if pane.dead:
        return (CRASHED, pane.exit_status) if pane.exit_status else (DEAD, pane.exit_status)
    return None, None


def agent_state(
    agent: AgentEntry, liveness: Liveness | None, running: bool, queued: int
) -> tuple[str, int | None]:
    """An agent's state and its process's exit status (when it exited): tmux first, then the board
    (`running`: a slot trains its job now; `queued`: its jobs waiting in a queue)."""
    state, exit_status = process_state(agent, liveness)
    if state is None:
        state = TRAINING if running else WAITING if queued else THINKING
    return state, exit_status


def window_state(pane: Pane | None, server_up: bool, supervised: bool) -> str:
    """A runner's or the coordinator's window state (`supervised`: a live coordinator restarts it)."""
    if pane is None or not server_up:
        return WINDOW_DOWN
    if not pane.dead:
        return WINDOW_RUNNING
    return WINDOW_RESTARTING if supervised else WINDOW_DEAD
