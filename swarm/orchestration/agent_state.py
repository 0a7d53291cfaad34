"""What an agent is doing, in one vocabulary for `swarm status` and `swarm watch`.

The process state comes from tmux (is the agent's window alive, did it exit with an error, is it held down
by `swarm stop AGENT`); while the process is alive, the board decides between training, queued and
thinking. Both commands call `agent_state`, so they can never disagree about an agent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from swarm.board.run_record import AgentSlot
from swarm.orchestration.launch import COORDINATOR_WINDOW
from swarm.orchestration.tmux import Pane

TRAINING = "training"  # its GPU runs a job
QUEUED = "queued"  # jobs wait for its GPU, none runs yet
THINKING = "thinking"  # alive, nothing submitted: the agent is working on its next change
CRASHED = "crashed"  # its process exited with an error (the coordinator restarts it)
DEAD = "dead"  # no process: its window is gone, or the run's tmux server is down
STOPPED = "stopped"  # held down by `swarm stop AGENT`
DOWN_STATES = frozenset({CRASHED, DEAD, STOPPED})


@dataclass(frozen=True)
class Liveness:
    """What tmux says about the run's windows at one moment."""

    server_up: bool
    panes: dict[str, Pane] = field(default_factory=dict)  # window name -> its pane

    @property
    def coordinator_alive(self) -> bool:
        pane = self.panes.get(COORDINATOR_WINDOW)
        return pane is not None and not pane.dead


def process_state(slot: AgentSlot, liveness: Liveness | None) -> tuple[str | None, int | None]:
    """The state tmux decides (stopped / dead / crashed) and the exit status, or None when the process is
    alive or there is no tmux to ask (then the board decides)."""
    if liveness is None:
        return (STOPPED, None) if slot.stopped else (None, None)
    pane = liveness.panes.get(slot.name) if liveness.server_up else None
    if pane is None:
        return (STOPPED if slot.stopped else DEAD), None
    if pane.dead:
        return (CRASHED, pane.exit_status) if pane.exit_status else (DEAD, pane.exit_status)
    return None, None


def agent_state(
    slot: AgentSlot, liveness: Liveness | None, running: bool, queued: int
) -> tuple[str, int | None]:
    """An agent's state and its process's exit status (when it exited): tmux first, then the board
    (`running`: its slot trains a job now; `queued`: jobs waiting for its slot)."""
    state, exit_status = process_state(slot, liveness)
    if state is None:
        state = TRAINING if running else QUEUED if queued else THINKING
    return state, exit_status
