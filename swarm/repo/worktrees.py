"""Agent worktrees: one git worktree per agent on its own branch, created, re-attached and removed safely.

Every git operation goes through `GitRepo.git`, which turns a failed git command into a GitError carrying
git's own reason. Removal is conservative: a worktree goes only when it has no uncommitted changes and
every commit on its branch is reachable from some other ref, so `swarm clean` can never lose a commit.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import git

from swarm.errors import GitError
from swarm.repo.stores import branch_reader_env


@dataclass(frozen=True)
class Removal:
    path: Path
    branch: str
    removed: bool
    reason: str  # why it was kept, or what was removed


class GitRepo:
    def __init__(self, path: Path):
        try:
            self.repo = git.Repo(path)
        except (git.exc.InvalidGitRepositoryError, git.exc.NoSuchPathError):
            raise GitError(f"not a git repository: {path}") from None
        self.path = Path(self.repo.working_tree_dir or path).resolve()

    def git(self, *args: str, cwd: Path | None = None, stdin: str = "") -> str:
        runner = git.Git(str(cwd)) if cwd else self.repo.git
        # an agent's branch may point at a commit it never submitted, kept in its own object directory
        env = branch_reader_env(Path(self.repo.common_dir))
        try:
            with tempfile.TemporaryFile() as feed:
                feed.write(stdin.encode())
                feed.seek(0)
                return runner.execute(["git", *args], istream=feed, env=env)
        except git.exc.GitCommandError as e:
            detail = e.stderr.strip().removeprefix("stderr:").strip().strip("'").strip()
            reason = (detail.splitlines() or ["git failed"])[-1].strip()
            raise GitError(f"git {' '.join(args[:3])}: {reason}") from None

    def resolve(self, ref: str) -> str:
        """The full commit sha a ref names."""
        try:
            return self.repo.commit(ref).hexsha
        except (git.exc.BadName, ValueError):
            raise GitError(f"unknown revision {ref!r}") from None

    def has_commits(self) -> bool:
        try:
            self.repo.head.commit  # noqa: B018 (raises on a repository without commits)
        except ValueError:
            return False
        return True

    def dirty_tracked_files(self) -> list[str]:
        """Tracked files with uncommitted changes in the main worktree (untracked files do not count)."""
        out = self.git("status", "--porcelain", "--untracked-files=no")
        return [line[3:] for line in out.splitlines() if line.strip()]

    def branch_exists(self, branch: str) -> bool:
        return f"refs/heads/{branch}" in {ref.path for ref in self.repo.branches}

    def worktree_branches(self) -> dict[Path, str | None]:
        """Registered worktrees and the branch each has checked out (None when detached)."""
        result: dict[Path, str | None] = {}
        path = None
        for line in self.git("worktree", "list", "--porcelain").splitlines():
            if line.startswith("worktree "):
                path = Path(line[len("worktree ") :]).resolve()
                result[path] = None
            elif line.startswith("branch ") and path is not None:
                result[path] = line[len("branch ") :].removeprefix("refs/heads/")
        return result

    def ensure_worktree(self, path: Path, branch: str, base: str) -> str:
        """Make `path` a worktree on `branch` (created from `base` if the branch is new).

        Returns "reused" (already there), "re-attached" (the branch existed, its worktree did not: its
        commits are kept) or "created"."""
        path = Path(path).resolve()
        self.git("worktree", "prune")  # forget worktrees whose directory was deleted by hand
        registered = self.worktree_branches()
        if path in registered:
            if registered[path] != branch:
                raise GitError(
                    f"{path} is a worktree on {registered[path] or 'a detached HEAD'}, not {branch}"
                )
            return "reused"
        if path.exists() and any(path.iterdir()):
            raise GitError(f"{path} exists and is not a worktree of this repository: move it away")
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.branch_exists(branch):
            self.git("worktree", "add", str(path), branch)
            return "re-attached"
        self.git("worktree", "add", "-b", branch, str(path), base)
        return "created"

    def unique_commits(self, branch: str) -> list[str]:
        """Commits on `branch` that no other ref reaches (HEADs of worktrees do not count as refs)."""
        own = f"refs/heads/{branch}"
        others = [r for r in self.git("for-each-ref", "--format=%(refname)").splitlines() if r and r != own]
        stdin = "".join(f"^{ref}\n" for ref in others)
        # Refs go through stdin so that hundreds of branches never hit the command-line length limit.
        out = self.git("rev-list", "--stdin", own, stdin=stdin)
        return out.split()

    def remove_worktree_if_safe(self, path: Path, branch: str) -> Removal:
        """Remove the worktree and its branch only when that loses nothing; else say why it stays."""
        path = Path(path).resolve()
        registered = self.worktree_branches()
        if path in registered and registered[path] != branch:
            return Removal(path, branch, False, f"on {registered[path] or 'a detached HEAD'}, not {branch}")
        if path in registered:
            changes = self.git("status", "--porcelain", cwd=path)
            if changes.strip():
                return Removal(path, branch, False, "uncommitted changes")
        if self.branch_exists(branch):
            unique = self.unique_commits(branch)
            if unique:
                return Removal(path, branch, False, f"{len(unique)} commit(s) only on {branch}")
        if path in registered:
            self.git("worktree", "remove", str(path))
        if self.branch_exists(branch):
            # Safe: every commit of the branch is reachable from another ref (checked just above).
            self.git("branch", "-D", branch)
        return Removal(path, branch, True, "removed worktree and branch")
