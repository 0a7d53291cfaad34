"""Thin wrappers over the git command line that raise GitError with git's own reason.

What a run executes is read with `raw_git`: the objects stored under a commit's sha and nothing else. The
object store and `.git/config` are shared by every agent's worktree, so an agent could add a replace ref
(another blob behind the base's prepare.py), a filter in `.git/config` with an attributes file (rewriting
train.py as it is unpacked), or an fsmonitor hook (a program git runs). Raw reads ignore replace refs,
read no attributes and no system config, and switch the program-running settings off for the call.
"""

from __future__ import annotations

import os
import re
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


RAW_ENV = {"GIT_NO_REPLACE_OBJECTS": "1", "GIT_CONFIG_NOSYSTEM": "1", "GIT_ATTR_NOSYSTEM": "1"}
RAW_CONFIG = (
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.attributesFile=/dev/null",
)
FULL_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


def raw_git(cwd: Path, *args: str, input: bytes | None = None) -> bytes:
    """git with replace refs, attributes, system config and config-run programs left out (see above)."""
    return git(cwd, *RAW_CONFIG, *args, input=input, env=RAW_ENV)


def require_sha(value: object, what: str) -> str:
    """A full object name as recorded in a job; a ref or abbreviation (which an agent could move) is refused."""
    if not isinstance(value, str) or not FULL_SHA.fullmatch(value):
        raise GitError(f"the {what} of this job is not a full commit sha: {str(value)[:60]!r}")
    return value


def tree_blobs(cwd: Path, commit: str) -> list[tuple[str, str, str]]:
    """(mode, blob sha, path) of every file and symbolic link in a commit's tree, read raw (submodules,
    which are commits of other repositories, left out)."""
    out = raw_git(cwd, "ls-tree", "-r", "-z", "--full-tree", f"{commit}^{{tree}}")
    entries = []
    for line in out.decode(errors="surrogateescape").split("\0"):
        if not line:
            continue
        meta, path = line.split("\t", 1)
        mode, kind, sha = meta.split()
        if kind == "blob":
            entries.append((mode, sha, path))
    return entries


def read_blobs(cwd: Path, shas: list[str]) -> dict[str, bytes]:
    """The contents of many blobs in one `git cat-file --batch` (raw)."""
    if not shas:
        return {}
    out = raw_git(cwd, "cat-file", "--batch", input="".join(f"{s}\n" for s in shas).encode())
    blobs, at = {}, 0
    for sha in shas:
        header_end = out.index(b"\n", at)
        name, kind, size = out[at:header_end].decode().split()
        if kind != "blob":
            raise GitError(f"object {name} is a {kind}, not a blob")
        start = header_end + 1
        blobs[sha] = out[start : start + int(size)]
        at = start + int(size) + 1  # the content is followed by a newline
    return blobs


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
    """The bytes of `path` in `commit` (read raw), or None when the commit has no such file."""
    try:
        return raw_git(cwd, "cat-file", "blob", f"{commit}:{path}")
    except GitError:
        return None


def changed_paths(cwd: Path, base: str, commit: str) -> list[str]:
    """Paths that differ between two commits; a rename lists both names (so neither side escapes a check)."""
    out = raw_git(
        cwd, "diff", "--name-only", "--no-renames", "--no-ext-diff", "--no-textconv", "-z", base, commit
    )
    return [p for p in out.decode(errors="surrogateescape").split("\0") if p]


def is_dirty(worktree: Path) -> bool:
    """Whether tracked files differ from HEAD (untracked files do not count: they are never run)."""
    return bool(git(worktree, "status", "--porcelain", "--untracked-files=no").strip())


def is_ancestor(cwd: Path, ancestor: str, descendant: str) -> bool:
    return git_or_none(cwd, "merge-base", "--is-ancestor", ancestor, descendant) is not None


def update_ref(cwd: Path, ref: str, sha: str) -> None:
    git(cwd, "update-ref", ref, sha)
