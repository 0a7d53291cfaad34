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

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarm.board.experiments import group_of, has_result
from swarm.errors import GitError, SwarmError
from swarm.repo.git import first_parent, git, git_text, is_dirty, rev_parse
from swarm.repo.paths import current_branch, main_repo
from swarm.results.display import escape_text, mean_text

TRAIN_FILE = "train.py"
MODES = ("train", "cherry-pick")


@dataclass(frozen=True)
class PickResult:
    branch: str
    commit: str  # the new commit on the branch
    previous: str  # where the branch was before
    worktree: Path | None  # the worktree that was fast-forwarded, if the branch is checked out


def checked_out_in(repo: Path, branch: str) -> Path | None:
    """The worktree that has `branch` checked out, or None."""
    current: Path | None = None
    for line in git_text(repo, "worktree", "list", "--porcelain").splitlines():
        if line.startswith("worktree "):
            current = Path(line[len("worktree ") :])
        elif line == f"branch refs/heads/{branch}":
            return current
    return None


def measured_text(record: dict[str, Any], content: Any = None) -> str:
    """What a pick says of the experiment's val_bpb: the mean, sigma and n of its train.py's runs (the
    board's one definition of a best), or its single run labelled as one."""
    if content is not None and content.mean is not None:
        return mean_text(content.mean, content.sigma, content.n)
    value = record.get("val_bpb")
    return mean_text(float(value), None, 1) if isinstance(value, float | int) else "none"


def commit_message(record: dict[str, Any], mode: str, content: Any = None) -> str:
    """One commit that says where it came from: experiment id, val_bpb (the mean, sigma and n of its
    train.py's runs: `content`, swarm.board.stats.ContentStats), agent and source commit."""
    description = escape_text(record.get("description"), 60) or "(no description)"
    lines = [
        f"pick {record['id']} ({escape_text(record.get('agent'))}): {description}",
        "",
        f"experiment: {record['id']}",
        f"val_bpb: {measured_text(record, content)}",
        f"status: {record.get('status')}",
        f"device: {escape_text(record.get('device'))} / {record.get('profile')}",
        f"agent: {escape_text(record.get('agent'))}",
        f"source commit: {record.get('commit')}",
        f"mode: {mode}",
    ]
    return "\n".join(lines) + "\n"


def _commit(repo: Path, rev: str, what: str) -> str:
    try:
        return rev_parse(repo, rev)
    except GitError:
        raise GitError(f"{what} commit {rev} is not in this repository") from None


def _parent_of(repo: Path, record: dict[str, Any], source: str) -> str:
    """What the experiment's change is measured against: its recorded parent, else its commit's parent."""
    if record.get("parent"):
        return _commit(repo, record["parent"], "parent")
    parent = first_parent(repo, source)
    if parent is None:
        raise GitError(f"commit {source[:12]} has no parent to take the experiment's change from")
    return parent


def build_commit(repo: Path, record: dict[str, Any], target: str, mode: str, content: Any = None) -> str:
    """Make the picked commit on top of `target` without touching any worktree, index or ref."""
    source = _commit(repo, record["commit"], "source")
    with tempfile.TemporaryDirectory(prefix="swarm-pick-") as scratch:
        scratch_index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        git(repo, "read-tree", target, env=scratch_index)
        if mode == "train":
            try:
                blob = git_text(repo, "rev-parse", f"{source}:{TRAIN_FILE}")
            except GitError:
                raise GitError(f"commit {source[:12]} has no {TRAIN_FILE}") from None
            git(
                repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{TRAIN_FILE}", env=scratch_index
            )
        else:
            patch = git(repo, "diff", "--binary", _parent_of(repo, record, source), source)
            if not patch.strip():
                raise SwarmError(f"experiment {record['id']} changes nothing against its parent")
            try:
                # --cached --3way: a three-way merge inside the scratch index; conflicts stay there
                git(repo, "apply", "--cached", "--3way", input=patch, env=scratch_index)
            except GitError:
                conflicted = git(
                    repo, "diff", "--cached", "--name-only", "--diff-filter=U", env=scratch_index
                ).decode()
                where = ", ".join(conflicted.split()) or TRAIN_FILE
                raise GitError(
                    f"experiment {record['id']} does not apply to {target[:12]}: conflict in {where} "
                    f"(nothing was changed; try --mode train to take its whole {TRAIN_FILE})"
                ) from None
        tree = git(repo, "write-tree", env=scratch_index).decode().strip()
    if tree == git_text(repo, "rev-parse", f"{target}^{{tree}}"):
        raise SwarmError(f"the target already has the train.py of experiment {record['id']}: nothing to pick")
    return (
        git(repo, "commit-tree", tree, "-p", target, input=commit_message(record, mode, content).encode())
        .decode()
        .strip()
    )


def default_target(repo: Path) -> str:
    branch = current_branch(repo)
    if not branch:
        raise GitError(f"the main worktree {repo} has a detached HEAD: name a branch with --onto")
    return branch


def pick(
    repo: Path, record: dict[str, Any], onto: str | None = None, mode: str = "train", content: Any = None
) -> PickResult:
    """Commit experiment `record` onto branch `onto` (default: the main worktree's branch); `content`: the
    repeat statistics of its train.py (swarm.board.stats.ContentStats), for the commit message."""
    if mode not in MODES:
        raise SwarmError(f"unknown pick mode {mode!r} (known: {', '.join(MODES)})")
    if not has_result(record) or not record.get("commit"):
        raise SwarmError(
            f"experiment {record.get('id')} has no measured result to pick (status {record.get('status')})"
        )
    repo = main_repo(repo)
    branch = onto or default_target(repo)
    try:
        previous = rev_parse(repo, f"refs/heads/{branch}")
    except GitError:
        raise GitError(f"no branch {branch!r} in {repo}") from None
    worktree = checked_out_in(repo, branch)
    if worktree is not None and is_dirty(worktree):
        changed = git_text(worktree, "diff", "--name-only", "HEAD").split()
        shown = ", ".join(changed[:5]) + (" ..." if len(changed) > 5 else "")
        raise GitError(
            f"{branch} is checked out in {worktree} with uncommitted changes ({shown}): "
            "commit or stash them first; nothing was changed"
        )
    new = build_commit(repo, record, previous, mode, content)
    if worktree is not None:
        # --ff-only: git refuses (and changes nothing) if the branch moved or local changes would be lost
        git(worktree, "merge", "--ff-only", "--quiet", new)
    else:
        git(repo, "update-ref", "-m", f"swarm pick {record['id']}", f"refs/heads/{branch}", new, previous)
    return PickResult(branch=branch, commit=new, previous=previous, worktree=worktree)


def cmd_pick(args) -> int:
    from swarm.board.opening import open_board

    repo, _, state = open_board()
    record = state.experiment(args.id)
    content = state.content(group_of(record), record.get("train_sha256") or "")
    result = pick(repo, record, onto=args.onto, mode=args.mode, content=content)
    print(
        f"picked {record['id']} (val_bpb {measured_text(record, content)}, {escape_text(record.get('agent'))}) "
        f"onto {result.branch}: "
        f"{result.previous[:10]} -> {result.commit[:10]}"
    )
    return 0
