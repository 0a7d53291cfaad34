"""Jobs from an agent's side: who is calling, submitting HEAD as an experiment, waiting for its result.

An agent command runs inside the agent's worktree. `agent_context()` finds the run (the latest run record
on the board), checks the caller is one of its agents working in its own worktree, and knows its slot and
device class. `submit()` asks for HEAD to be queued for the agent's runner (or, when identical train.py
content was already measured enough times on this device class and profile, answered from the board at
once without using a GPU); `deliver()` is how any request of an agent reaches the board: a sandboxed
agent cannot write it, so its runner does (swarm.runner.inbox).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarm.board.checkpoint import open_state
from swarm.board.experiments import (
    DECIDED_STATUSES,
    FINAL_STATUSES,
    MAX_DESCRIPTION_CHARS,
)
from swarm.board.fold import BoardState
from swarm.board.noise import NoiseSettings
from swarm.board.run_record import AgentEntry, SwarmRecord
from swarm.board.store import Board
from swarm.config import load_section
from swarm.errors import BoardError, SwarmError
from swarm.repo.git import is_dirty, rev_parse
from swarm.repo.paths import Identity, caller_identity, run_paths
from swarm.runner.inbox import Handler, post, wait_answer

WAIT_POLL_S = 0.05


@dataclass
class AgentContext:
    """An agent command's view of the world."""

    identity: Identity
    repo: Path  # the main worktree
    board: Board
    state: BoardState
    run: SwarmRecord
    agent: AgentEntry
    queue: str  # where its jobs go: its slot, or its class's queue
    device: str


def agent_context(cwd: Path | None = None) -> AgentContext:
    """The calling agent, its swarm and its queue; one clear error when the caller is not in a run's worktree."""
    identity = caller_identity(cwd)
    paths = run_paths(identity.worktree)
    board = Board(paths.board)
    if not board.exists():
        raise SwarmError(f"not in a worktree of a swarm: no board at {paths.board}")
    board.require()
    state = open_state(board, load_section(paths.repo, "noise", NoiseSettings))
    if state.run is None:
        raise SwarmError(f"not in a worktree of a swarm: no swarm record on the board at {paths.board}")
    try:
        run = state.find_run(identity.tag)
    except SwarmError:
        raise SwarmError(
            f"not in a worktree of this swarm: branch of swarm {identity.tag!r}, board of swarm {state.run.tag!r}"
        ) from None
    agent = run.agent(identity.agent)
    if agent is None:
        raise SwarmError(
            f"not in a worktree of a swarm: agent {identity.agent!r} is not part of swarm {run.tag!r}"
        )
    if agent.worktree and Path(agent.worktree).resolve() != identity.worktree:
        raise SwarmError(
            f"not in {agent.name}'s worktree (expected {agent.worktree}, in {identity.worktree})"
        )
    queue = identity.queue or agent.queue
    return AgentContext(identity, paths.repo, board, state, run, agent, queue, run.device_for_slot(queue))


def head_commit(worktree: Path) -> str:
    """HEAD of a worktree, refusing uncommitted changes to tracked files (the runner runs commits)."""
    if is_dirty(worktree):
        raise SwarmError(
            "dirty tree: commit your changes first (the runner trains HEAD, not the working tree)"
        )
    return rev_parse(worktree, "HEAD")


def deliver(ctx: AgentContext, request: dict[str, Any]) -> Any:
    """Have the calling agent's request written on the board: in-process when this process may write the
    board (the user, an agent of an --unsealed run), else through the agent's inbox, by its runner (from a
    sandbox, where the board is read-only: swarm.runner.inbox). The same handler writes it either way."""
    if os.access(ctx.board.path, os.W_OK):
        return Handler(ctx.repo, ctx.board, ctx.state).handle(ctx.agent, request)
    return wait_answer(post(ctx.board.directory, ctx.agent.name, request))


def submit(ctx: AgentContext, description: str, rerun: bool = False) -> dict[str, Any]:
    """Submit HEAD of the caller's worktree; returns the queued record, or the final one when answered
    from the board (`rerun=True` always queues a run)."""
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise SwarmError(
            f"the description has {len(description)} characters; at most {MAX_DESCRIPTION_CHARS} are kept on the board"
        )
    commit = head_commit(ctx.identity.worktree)
    return deliver(ctx, {"op": "submit", "commit": commit, "description": description, "rerun": rerun})


def wait_for(
    state: BoardState, eid: str, timeout_s: float | None = None, verdict: bool = False
) -> dict[str, Any]:
    """Block until experiment `eid` (a full id) has a final status; returns its final record. A
    `promising` result is final for its run; with `verdict`, wait on until its confirmation decided it.

    Follows the board with the command's state, which has read it already: each poll folds only what
    was appended since."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        state.refresh()
        latest = state.experiments.get(eid)
        if latest is not None and latest.get("status") in (DECIDED_STATUSES if verdict else FINAL_STATUSES):
            return latest
        if deadline is not None and time.monotonic() > deadline:
            status = latest.get("status") if latest else "unknown"
            raise BoardError(f"timed out waiting for {eid} (still {status})")
        time.sleep(WAIT_POLL_S)
