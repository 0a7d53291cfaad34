"""Jobs from an agent's side: who is calling, submitting HEAD as an experiment, waiting for its result.

An agent command runs inside the agent's worktree. `agent_context()` finds the run (the latest run record
on the board), checks the caller is one of its agents working in its own worktree, and knows its slot and
device class. `submit()` pins the commit (refs/swarm/experiments/<id>, so a later `git reset` never lets
git collect a commit the board points at) and either queues it for the agent's runner or, when identical
train.py content was already measured enough times on this device class and profile, answers it from the
board at once without using a GPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarm.board.experiments import DECIDED_STATUSES, FINAL_STATUSES, METRIC_FIELDS, new_experiment
from swarm.board.noise import NoiseSettings
from swarm.board.run_record import AgentSlot, RunRecord
from swarm.board.state import BoardState
from swarm.board.store import Board, now
from swarm.config import load_section
from swarm.errors import BoardError, SwarmError
from swarm.repo.git import file_at, first_parent, is_dirty, rev_parse, update_ref
from swarm.repo.paths import Identity, caller_identity, current_branch, run_paths
from swarm.runner.settings import RunnerSettings
from swarm.runner.trust import disallowed_changes, sha256_bytes

EXPERIMENT_REF = "refs/swarm/experiments/"
WAIT_POLL_S = 0.05


@dataclass
class AgentContext:
    """An agent command's view of the world."""

    identity: Identity
    repo: Path  # the main worktree
    board: Board
    state: BoardState
    run: RunRecord
    agent: AgentSlot
    slot: str
    device: str


def agent_context(cwd: Path | None = None) -> AgentContext:
    """The calling agent, its run and its slot; one clear error when the caller is not in a run's worktree."""
    identity = caller_identity(cwd)
    paths = run_paths(identity.worktree)
    board = Board(paths.board)
    if not board.exists():
        raise SwarmError(f"not in a worktree of a run: no board at {paths.board}")
    board.require()
    state = BoardState(board, load_section(paths.repo, "noise", NoiseSettings))
    state.refresh()
    if state.run is None:
        raise SwarmError(f"not in a worktree of a run: no run record on the board at {paths.board}")
    try:
        run = state.find_run(identity.tag)
    except SwarmError:
        raise SwarmError(
            f"not in a worktree of this run: branch of run {identity.tag!r}, board of run {state.run.tag!r}"
        ) from None
    agent = run.agent(identity.agent)
    if agent is None:
        raise SwarmError(
            f"not in a worktree of a run: agent {identity.agent!r} is not part of run {run.tag!r}"
        )
    if agent.worktree and Path(agent.worktree).resolve() != identity.worktree:
        raise SwarmError(
            f"not in {agent.name}'s worktree (expected {agent.worktree}, in {identity.worktree})"
        )
    slot = identity.gpu or agent.gpu
    return AgentContext(identity, paths.repo, board, state, run, agent, slot, run.device_for_slot(slot))


def head_commit(worktree: Path) -> str:
    """HEAD of a worktree, refusing uncommitted changes to tracked files (the runner runs commits)."""
    if is_dirty(worktree):
        raise SwarmError(
            "dirty tree: commit your changes first (the runner trains HEAD, not the working tree)"
        )
    return rev_parse(worktree, "HEAD")


def submit(ctx: AgentContext, description: str, rerun: bool = False) -> dict[str, Any]:
    """Submit HEAD of the caller's worktree; returns the queued record, or the final one when answered
    from the board (`rerun=True` always queues a run)."""
    commit = head_commit(ctx.identity.worktree)
    train = file_at(ctx.repo, commit, "train.py")
    job = new_experiment(
        agent=ctx.agent.name,
        gpu=ctx.slot,
        device=ctx.device,
        profile=ctx.run.profile,
        tag=ctx.run.tag,
        branch=current_branch(ctx.identity.worktree),
        commit=commit,
        parent=first_parent(ctx.repo, commit),
        base=ctx.run.base,
        description=description,
        train_sha256=sha256_bytes(train) if train is not None else None,
    )
    update_ref(ctx.repo, EXPERIMENT_REF + job["id"], commit)
    # only a commit the runner would accept may be answered from the board; the rest goes to the runner,
    # which records why it is invalid
    allowed = load_section(ctx.repo, "runner", RunnerSettings).allowed_paths
    reusable = not rerun and not disallowed_changes(ctx.repo, ctx.run.base, commit, allowed)
    with ctx.board.locked() as writer:
        ctx.state.refresh()
        answered = answer_from_board(ctx.state, job) if reusable else None
        written = writer.append(answered or job)
    ctx.state.apply(written)
    return written


def answer_from_board(state: BoardState, job: dict[str, Any]) -> dict[str, Any] | None:
    """The final record for a job whose train.py content was measured at least `reuse_runs` times in the
    job's group, or None. Its val_bpb is the mean of those runs; its other metrics are the latest run's."""
    sha = job.get("train_sha256")
    content = state.content((job["device"], job["profile"]), sha) if sha else None
    if content is None or content.n < state.noise.reuse_runs:
        return None
    runs = [state.experiments[eid] for eid in content.ids]
    latest = max(runs, key=lambda r: r.get("finished_at") or 0.0)
    metrics = {k: latest.get(k) for k in (*METRIC_FIELDS, "prepare_sha256", "log")}
    answered = {**job, **metrics, "val_bpb": content.mean, "reused_from": content.ids}
    answered.update(started_at=now(), finished_at=now())
    status, reason, reference, band = state.decide(answered)
    answered.update(
        status=status,
        reason=f"answered from the board: mean of {content.n} runs of this train.py; {reason}",
        reference=reference,
        band=band,
    )
    return answered


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
