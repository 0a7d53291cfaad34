"""Real git repositories for pick / watch tests: train.py with knobs, agent commits, the repo's whole state."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.standins import git
from tests.support.standins import make_repo as make_swarm_repo

# Knobs several lines apart, so that changes to different knobs merge without conflict.
TRAIN = "\n".join(
    [
        "# train.py",
        "DEPTH = 8",
        "",
        "# optimizer",
        "MATRIX_LR = 0.04",
        "",
        "# regularisation",
        "WEIGHT_DECAY = 0.2",
    ]
    + ["", "print('train')", ""]
)


def make_repo(path: Path) -> Path:
    """A repository on branch main with train.py and prepare.py committed; board/ and worktrees/ ignored."""
    return make_swarm_repo(
        path,
        {
            "train.py": TRAIN,
            "prepare.py": "PROFILES = {'h100': {'time_budget': 300}, 'tiny': {'time_budget': 20}}\n",
        },
    )


def commit_on(repo: Path, branch: str, start: str, edits: dict[str, str], message: str) -> tuple[str, str]:
    """Commit `edits` (line replacements in train.py, old -> new) on `branch` from `start`, without
    touching the main worktree; returns (commit, parent)."""
    parent = git(repo, "rev-parse", start)
    text = git(repo, "show", f"{parent}:train.py") + "\n"
    for old, new in edits.items():
        assert old in text, old
        text = text.replace(old, new)
    blob = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"],
        cwd=repo,
        input=text,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    index = repo / ".git" / f"index-{branch.replace('/', '-')}"
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}
    subprocess.run(["git", "read-tree", parent], cwd=repo, env=env, check=True)
    subprocess.run(
        ["git", "update-index", "--cacheinfo", f"100644,{blob},train.py"], cwd=repo, env=env, check=True
    )
    tree = subprocess.run(
        ["git", "write-tree"], cwd=repo, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    index.unlink()
    commit = git(repo, "commit-tree", tree, "-p", parent, "-m", message)
    git(repo, "update-ref", f"refs/heads/{branch}", commit)
    return commit, parent


def repo_state(repo: Path) -> dict[str, str]:
    """Everything `pick` must leave alone on failure: refs, HEAD, index, working tree, worktree list."""
    return {
        "refs": git(repo, "for-each-ref", "--format=%(refname) %(objectname)"),
        "head": git(repo, "symbolic-ref", "-q", "HEAD"),
        "status": git(repo, "status", "--porcelain", "--untracked-files=all", "--ignored"),
        "index": git(repo, "ls-files", "--stage"),
        "train": (repo / "train.py").read_text(),
        "worktrees": git(repo, "worktree", "list", "--porcelain"),
    }
