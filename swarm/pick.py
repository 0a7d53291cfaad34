"""`swarm pick ID [--onto BRANCH] [--mode train|cherry-pick]`: bring a winning experiment into a branch.

The new commit is built with plumbing on a temporary index (no worktree, index or ref is touched while it
is made), so a conflict leaves the repository exactly as it was. Only then does the target move: a branch
checked out in a worktree fast-forwards there (`merge --ff-only`, refused by git itself if local changes
would be overwritten), any other branch moves with a compare-and-swap `update-ref`.

Modes:
- `train` (default): the target gets the experiment's whole train.py, whatever happened on the way to it
  (the result was measured on exactly that file, so this is what reproduces it);
- `cherry-pick`: only the experiment's own change (its diff against its parent) is merged three-way into
  the target's train.py, for targets that have moved on since.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarm.errors import GitError, SwarmError
from swarm.paths import current_branch, git_output, main_repo, run_paths
from swarm.records import has_result
from swarm.text import one_line

TRAIN_FILE = "train.py"
MODES = ("train", "cherry-pick")


@dataclass(frozen=True)
class PickResult:
    branch: str
    commit: str  # the new commit on the branch
    previous: str  # where the branch was before
    worktree: Path | None  # the worktree that was fast-forwarded, if the branch is checked out


def _git(repo: Path, *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, input=stdin, env={**os.environ, **(env or {})}
    )
    if proc.returncode != 0:
        reason = (proc.stderr.decode(errors="replace").strip().splitlines() or ["git failed"])[-1]
        raise GitError(f"git {args[0]}: {reason}")
    return proc.stdout.decode(errors="replace").strip()


def checked_out_in(repo: Path, branch: str) -> Path | None:
    """The worktree that has `branch` checked out, or None."""
    current: Path | None = None
    for line in git_output(repo, "worktree", "list", "--porcelain").splitlines():
        if line.startswith("worktree "):
            current = Path(line[len("worktree ") :])
        elif line == f"branch refs/heads/{branch}":
            return current
    return None


def tracked_changes(worktree: Path) -> list[str]:
    """Paths with staged or unstaged changes to tracked files (untracked files do not count)."""
    return git_output(worktree, "diff", "--name-only", "HEAD").splitlines()


def commit_message(record: dict[str, Any], mode: str) -> str:
    """One commit that says where it came from: experiment id, val_bpb, agent and source commit."""
    description = one_line(record.get("description"), 60) or "(no description)"
    value = record.get("val_bpb")
    lines = [
        f"pick {record['id']} ({record.get('agent')}): {description}",
        "",
        f"experiment: {record['id']}",
        f"val_bpb: {value:.6f}" if isinstance(value, float | int) else "val_bpb: none",
        f"status: {record.get('status')}",
        f"device: {record.get('device')} / {record.get('profile')}",
        f"agent: {record.get('agent')}",
        f"source commit: {record.get('commit')}",
        f"mode: {mode}",
    ]
    return "\n".join(lines) + "\n"


def _parent_of(repo: Path, record: dict[str, Any]) -> str:
    """The commit the experiment's change is measured against: its recorded parent, else the commit's own."""
    parent = record.get("parent")
    if parent:
        return _resolve(repo, parent, "parent")
    return _resolve(repo, f"{record['commit']}^", "parent")


def _resolve(repo: Path, rev: str, what: str) -> str:
    try:
        return git_output(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except GitError:
        raise GitError(f"{what} commit {rev} is not in this repository") from None


def build_commit(repo: Path, record: dict[str, Any], target: str, mode: str) -> str:
    """Make the picked commit on top of `target` without touching any worktree, index or ref."""
    source = _resolve(repo, record["commit"], "source")
    with tempfile.TemporaryDirectory(prefix="swarm-pick-") as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        _git(repo, "read-tree", target, env=env)
        if mode == "train":
            try:
                blob = git_output(repo, "rev-parse", "--verify", f"{source}:{TRAIN_FILE}")
            except GitError:
                raise GitError(f"commit {source[:12]} has no {TRAIN_FILE}") from None
            _git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{TRAIN_FILE}", env=env)
        else:
            patch = subprocess.run(
                ["git", "diff", "--binary", _parent_of(repo, record), source],
                cwd=repo,
                capture_output=True,
                check=True,
            ).stdout
            if not patch.strip():
                raise SwarmError(f"experiment {record['id']} changes nothing against its parent")
            applied = subprocess.run(
                ["git", "apply", "--cached", "--3way"],
                cwd=repo,
                input=patch,
                capture_output=True,
                env={**os.environ, **env},
            )
            if applied.returncode != 0:
                conflicted = _git(repo, "diff", "--cached", "--name-only", "--diff-filter=U", env=env)
                where = ", ".join(conflicted.split()) or TRAIN_FILE
                raise GitError(
                    f"experiment {record['id']} does not apply to {target}: conflict in {where} "
                    f"(nothing was changed; try --mode train to take its whole {TRAIN_FILE})"
                )
        tree = _git(repo, "write-tree", env=env)
    if tree == _git(repo, "rev-parse", f"{target}^{{tree}}"):
        raise SwarmError(f"{target} already has the train.py of experiment {record['id']}: nothing to pick")
    return _git(repo, "commit-tree", tree, "-p", target, stdin=commit_message(record, mode).encode())


def default_target(repo: Path) -> str:
    branch = current_branch(repo)
    if not branch:
        raise GitError(f"the main worktree {repo} has a detached HEAD: name a branch with --onto")
    return branch


def pick(repo: Path, record: dict[str, Any], onto: str | None = None, mode: str = "train") -> PickResult:
    """Commit experiment `record` onto branch `onto` (default: the main worktree's branch)."""
    if mode not in MODES:
        raise SwarmError(f"unknown pick mode {mode!r} (known: {', '.join(MODES)})")
    if not has_result(record) or not record.get("commit"):
        raise SwarmError(
            f"experiment {record.get('id')} has no measured result to pick (status {record.get('status')})"
        )
    repo = main_repo(repo)
    branch = onto or default_target(repo)
    try:
        previous = git_output(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
    except GitError:
        raise GitError(f"no branch {branch!r} in {repo}") from None
    worktree = checked_out_in(repo, branch)
    if worktree is not None:
        dirty = tracked_changes(worktree)
        if dirty:
            shown = ", ".join(dirty[:5]) + (" ..." if len(dirty) > 5 else "")
            raise GitError(
                f"{branch} is checked out in {worktree} with uncommitted changes ({shown}): "
                "commit or stash them first; nothing was changed"
            )
    new = build_commit(repo, record, previous, mode)
    if worktree is not None:
        # --ff-only: git refuses (and changes nothing) if the branch moved or local changes would be lost
        _git(worktree, "merge", "--ff-only", "--quiet", new)
    else:
        _git(repo, "update-ref", "-m", f"swarm pick {record['id']}", f"refs/heads/{branch}", new, previous)
    return PickResult(branch=branch, commit=new, previous=previous, worktree=worktree)


def main(args) -> int:
    from swarm.state import BoardState

    paths = run_paths()
    state = BoardState(paths.board)
    state.board.require()
    state.refresh()
    record = state.experiment(args.id)
    result = pick(paths.repo, record, onto=args.onto, mode=args.mode)
    value = record.get("val_bpb")
    print(
        f"picked {record['id']} (val_bpb {value:.6f}, {record.get('agent')}) onto {result.branch}: "
        f"{result.previous[:10]} -> {result.commit[:10]}"
    )
    return 0
