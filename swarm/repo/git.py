"""Thin wrappers over the git command line that raise GitError with git's own reason."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from swarm.errors import GitError


def git(cwd: Path, *args: str, input: bytes | None = None, env: dict[str, str] | None = None) -> bytes:
    """Run git in `cwd` and return its raw stdout; a non-zero exit raises GitError with git's last line.
    `env` adds variables to the environment (e.g. GIT_INDEX_FILE for a scratch index)."""
    proc = subprocess.run(
        ["git", *args], cwd=cwd, input=input, capture_output=True, env={**os.environ, **env} if env else None
    )
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        raise GitError(f"git {' '.join(args)}: {lines[-1] if lines else f'exit code {proc.returncode}'}")
    return proc.stdout


def git_or_none(cwd: Path, *args: str) -> bytes | None:
    """git's raw stdout, or None when it exits non-zero: for questions git answers with its exit code
    (does this revision exist, is this path in that commit, is one commit an ancestor of another)."""
    try:
        return git(cwd, *args)
    except GitError:
        return None


def git_text(cwd: Path, *args: str) -> str:
    return git(cwd, *args).decode().strip()


def rev_parse(cwd: Path, rev: str) -> str:
    """The full sha of a commit-ish, or GitError("unknown revision ...")."""
    out = git_or_none(cwd, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if out is None:
        raise GitError(f"unknown revision {rev!r} in {cwd}")
    return out.decode().strip()


def first_parent(cwd: Path, commit: str) -> str | None:
    try:
        return rev_parse(cwd, f"{commit}^")
    except GitError:
        return None  # a root commit


def file_at(cwd: Path, commit: str, path: str) -> bytes | None:
    """The bytes of `path` in `commit`, or None when the commit has no such file."""
    return git_or_none(cwd, "cat-file", "blob", f"{commit}:{path}")


def changed_paths(cwd: Path, base: str, commit: str) -> list[str]:
    """Paths that differ between two commits; a rename lists both names (so neither side escapes a check)."""
    out = git(cwd, "diff", "--name-only", "--no-renames", "-z", base, commit)
    return [p for p in out.decode(errors="surrogateescape").split("\0") if p]


def is_dirty(worktree: Path) -> bool:
    """Whether tracked files differ from HEAD (untracked files do not count: they are never run)."""
    return bool(git(worktree, "status", "--porcelain", "--untracked-files=no").strip())


def is_ancestor(cwd: Path, ancestor: str, descendant: str) -> bool:
    return git_or_none(cwd, "merge-base", "--is-ancestor", ancestor, descendant) is not None


def update_ref(cwd: Path, ref: str, sha: str) -> None:
    git(cwd, "update-ref", ref, sha)


def archive(cwd: Path, commit: str) -> bytes:
    """The tree of a commit as a tar archive."""
    return git(cwd, "archive", "--format=tar", commit)
