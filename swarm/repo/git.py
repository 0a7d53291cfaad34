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


def read_objects(cwd: Path, names: list[str]) -> dict[str, tuple[str, bytes]]:
    """(type, content) of many objects in one raw `git cat-file --batch`, each checked against its name.

    git does not re-hash an object it reads, and agents may write the shared object store (committing needs
    it): an object rewritten in place would otherwise be read under the old name. Hashing what came back
    makes a name mean its content: a mismatch raises GitError."""
    if not names:
        return {}
    # imported here: `swarm best` finds its run with this module, and hashlib (OpenSSL) is slow to load
    from hashlib import sha1, sha256

    out = raw_git(cwd, "cat-file", "--batch", input="".join(f"{n}\n" for n in names).encode())
    objects, at = {}, 0
    for name in names:
        header_end = out.index(b"\n", at)
        header = out[at:header_end].decode(errors="replace").split()
        if len(header) != 3:
            raise GitError(f"object {name} is missing ({' '.join(header)[:80]})")
        kind, size = header[1], int(header[2])
        start = header_end + 1
        content = out[start : start + size]
        digest = (sha1 if len(name) == 40 else sha256)(f"{kind} {size}\0".encode() + content).hexdigest()
        if digest != name:
            raise GitError(f"object {name} does not match its content (rewritten in the object store)")
        objects[name] = (kind, content)
        at = start + size + 1  # the content is followed by a newline
    return objects


def _tree_entries(tree: bytes, oid_bytes: int):
    """(mode, name, oid) of a raw tree object: `mode SP name NUL oid` repeated."""
    at = 0
    while at < len(tree):
        space, nul = tree.index(b" ", at), tree.index(b"\0", at)
        yield tree[at:space].decode(), tree[space + 1 : nul], tree[nul + 1 : nul + 1 + oid_bytes].hex()
        at = nul + 1 + oid_bytes


def tree_blobs(cwd: Path, commit: str) -> list[tuple[str, str, str]]:
    """(mode, blob sha, path) of every file and symbolic link of a commit, read raw and verified (every tree
    hashed against its name; submodules, which are commits of other repositories, left out)."""
    kind, body = read_objects(cwd, [commit])[commit]
    if kind != "commit" or not body.startswith(b"tree "):
        raise GitError(f"{commit} is a {kind}, not a commit")
    oid_bytes = len(commit) // 2
    entries: list[tuple[str, str, str]] = []
    pending = [(body[5 : body.index(b"\n")].decode(), "")]
    while pending:
        trees = read_objects(cwd, [sha for sha, _ in pending])
        prefixes = pending
        pending = []
        for sha, prefix in prefixes:
            kind, tree = trees[sha]
            if kind != "tree":
                raise GitError(f"object {sha} is a {kind}, not a tree")
            for mode, raw_name, oid in _tree_entries(tree, oid_bytes):
                path = prefix + raw_name.decode(errors="surrogateescape")
                if mode == "40000":
                    pending.append((oid, path + "/"))
                elif mode != "160000":
                    entries.append((mode, oid, path))
    return sorted(entries, key=lambda entry: entry[2])


def read_blobs(cwd: Path, shas: list[str]) -> dict[str, bytes]:
    """The verified contents of many blobs (read_objects)."""
    blobs = {}
    for sha, (kind, content) in read_objects(cwd, shas).items():
        if kind != "blob":
            raise GitError(f"object {sha} is a {kind}, not a blob")
        blobs[sha] = content
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
    """The bytes of `path` in `commit` (read raw, every object on the way verified), or None when the commit
    has no such file (or there is no such commit)."""
    try:
        found = [sha for mode, sha, name in tree_blobs(cwd, rev_parse(cwd, commit)) if name == path]
        return read_blobs(cwd, found)[found[0]] if found else None
    except GitError:
        return None


def changed_paths(cwd: Path, base: str, commit: str) -> list[str]:
    """Paths that differ between two commits, from their verified trees; a rename lists both names (so
    neither side escapes a check)."""
    before = {path: (mode, sha) for mode, sha, path in tree_blobs(cwd, rev_parse(cwd, base))}
    after = {path: (mode, sha) for mode, sha, path in tree_blobs(cwd, rev_parse(cwd, commit))}
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


def is_dirty(worktree: Path) -> bool:
    """Whether tracked files differ from HEAD (untracked files do not count: they are never run)."""
    return bool(git(worktree, "status", "--porcelain", "--untracked-files=no").strip())


def is_ancestor(cwd: Path, ancestor: str, descendant: str) -> bool:
    return git_or_none(cwd, "merge-base", "--is-ancestor", ancestor, descendant) is not None


def update_ref(cwd: Path, ref: str, sha: str) -> None:
    git(cwd, "update-ref", ref, sha)
