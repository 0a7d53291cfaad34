"""Where a run lives (main repository, board, worktrees) and who is calling (agent identity)."""

from __future__ import annotations

import os
import re
from collections import namedtuple
from pathlib import Path

from swarm.errors import GitError
from swarm.repo.git import git_or_none, git_text

# Agent branches are `swarm/<tag>/<agent>/work`: each agent's branch alone in a directory of its own, the
# one directory of refs its sandbox may write (git updates a ref by renaming a lock file in its directory,
# so an agent that could write a directory shared with other branches could move them;
# swarm.orchestration.sealing). Runs from before have `swarm/<tag>/<agent>`, still understood. The agent
# name is also a directory and a tmux window name, so it is validated before it becomes either.
AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
BRANCH_PREFIX = "swarm/"
BRANCH_LEAF = "work"


# Named tuples here, not dataclasses: `swarm best` finds its run with this module, and loading dataclasses
# (or typing) costs an agent's query a tenth of its time.
class RunPaths(namedtuple("RunPaths", ("repo", "board", "worktrees"))):
    """repo: the main worktree, where board/ and worktrees/ live; board; worktrees."""

    __slots__ = ()

    @classmethod
    def for_repo(cls, repo: Path) -> RunPaths:
        repo = Path(repo).resolve()
        board = Path(os.environ["SWARM_BOARD"]).resolve() if os.environ.get("SWARM_BOARD") else repo / "board"
        return cls(repo=repo, board=board, worktrees=repo / "worktrees")


def worktree_root(cwd: Path | None = None) -> Path:
    """The top of the git worktree containing cwd (an agent's worktree or the main one)."""
    cwd = Path(cwd or Path.cwd())
    try:
        return Path(git_text(cwd, "rev-parse", "--show-toplevel")).resolve()
    except GitError:
        raise GitError(f"not a git repository: {cwd}") from None


def main_repo(cwd: Path | None = None) -> Path:
    """The main worktree of the repository containing cwd, also when cwd is inside an agent's worktree."""
    cwd = Path(cwd or Path.cwd())
    try:
        common = Path(git_text(cwd, "rev-parse", "--path-format=absolute", "--git-common-dir"))
    except GitError:
        raise GitError(f"not a git repository: {cwd}") from None
    return common.parent.resolve()


def run_paths(cwd: Path | None = None) -> RunPaths:
    return RunPaths.for_repo(main_repo(cwd))


def current_branch(cwd: Path) -> str | None:
    branch = git_or_none(cwd, "symbolic-ref", "--quiet", "--short", "HEAD")
    return branch.decode().strip() if branch else None  # None: a detached HEAD


def agent_branch(tag: str, agent: str) -> str:
    return f"{BRANCH_PREFIX}{tag}/{agent}/{BRANCH_LEAF}"


def parse_agent_branch(branch: str | None) -> tuple[str, str] | None:
    """(tag, agent) for a branch named `swarm/<tag>/<agent>/work` (or `swarm/<tag>/<agent>`), else None."""
    if not branch or not branch.startswith(BRANCH_PREFIX):
        return None
    parts = branch[len(BRANCH_PREFIX) :].split("/")
    if len(parts) == 3 and parts[2] == BRANCH_LEAF:
        parts = parts[:2]
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


def validate_agent_name(name: str) -> str:
    from swarm.errors import SwarmError

    if not AGENT_NAME.match(name):
        raise SwarmError(f"invalid agent name {name!r}: use letters, digits, '.', '_' or '-' (max 64)")
    return name


class Identity(namedtuple("Identity", ("agent", "worktree", "tag", "queue"))):
    """Who is calling an agent command: its name, its worktree, its swarm's tag, and the queue its jobs go to
    (SWARM_GPU: a slot "3" or "cpu0", or a class's queue "box:cpu"; None when unknown)."""

    __slots__ = ()


def caller_identity(cwd: Path | None = None) -> Identity:
    """The agent behind the current worktree: SWARM_AGENT / SWARM_GPU from the environment win,
    else the agent name comes from the worktree's branch `swarm/<tag>/<agent>/work`."""
    from swarm.errors import SwarmError

    root = worktree_root(cwd)
    parsed = parse_agent_branch(current_branch(root))
    agent = os.environ.get("SWARM_AGENT") or (parsed[1] if parsed else None)
    if not agent:
        raise SwarmError(f"not in an agent's worktree: {root} (expected a branch swarm/<tag>/<agent>/work)")
    validate_agent_name(agent)
    return Identity(
        agent=agent,
        worktree=root,
        tag=os.environ.get("SWARM_TAG") or (parsed[0] if parsed else None),
        queue=os.environ.get("SWARM_GPU"),
    )
