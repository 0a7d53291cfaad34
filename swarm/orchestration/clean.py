"""`swarm clean`: remove a stopped run's worktrees, but only where that loses no commit.

A worktree (and its branch) goes only when it has no uncommitted changes and every commit on its branch
is reachable from another ref. Worktrees are decided one at a time against the refs that still exist,
so two branches that only hold each other's commits are never both deleted.
"""

from __future__ import annotations

from pathlib import Path

from swarm.board.run_record import open_run
from swarm.board.store import Board
from swarm.errors import SwarmError
from swarm.orchestration.tmux import RunTmux
from swarm.repo.paths import RunPaths, run_paths
from swarm.repo.worktrees import GitRepo, Removal


def clean(paths: RunPaths, tag: str | None = None, out=print) -> list[Removal]:
    run = open_run(Board(paths.board), tag)
    if RunTmux(paths.repo, run.tag).is_running():
        raise SwarmError(f"swarm {run.tag} is running: `swarm stop` it first")
    repo = GitRepo(paths.repo)
    removals = []
    for slot in run.agents:
        removal = repo.remove_worktree_if_safe(Path(slot.worktree), slot.branch)
        removals.append(removal)
        verb = "removed" if removal.removed else "kept   "
        out(f"{verb} {slot.name:<6} {slot.branch}: {removal.reason}")
    repo.git("worktree", "prune")
    kept = [r for r in removals if not r.removed]
    if kept:
        out(
            f"{len(kept)} worktree(s) kept: pick their commits (`swarm pick`) or delete the branches yourself"
        )
    return removals


def cmd_clean(args) -> int:
    clean(run_paths(), args.tag)
    return 0
