"""Materialise an experiment's commit into a clean run directory, with prepare.py from the run's base commit.

Runs never execute in an agent's worktree: the agent keeps editing while its experiment trains, and the
runner needs an immutable snapshot. The commit's files are written from the raw blobs its tree lists
(`git ls-tree` + `git cat-file --batch` through `raw_git`: no replace refs, no attributes or filters, so
what runs is what the sha on the board names; a symbolic link is refused, submodules left out); then prepare.py is
the base commit's copy, so an agent's prepare.py is never executed, whatever the allow-list says.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from swarm.errors import SwarmError
from swarm.repo.git import read_blobs, tree_blobs
from swarm.runner.trust import sha256_bytes, sha256_file

PREPARE = "prepare.py"
TRAIN = "train.py"


@dataclass(frozen=True)
class RunDirectory:
    path: Path
    train_sha256: str | None
    prepare_sha256: str

    def prepare_untouched(self) -> bool:
        """Whether prepare.py still has the base commit's content (a run may try to rewrite it)."""
        return sha256_file(self.path / PREPARE) == self.prepare_sha256


def materialise(repo: Path, commit: str, prepare: bytes, dest: Path) -> RunDirectory:
    """Write `commit`'s files into `dest` (which must not exist) with `prepare`, the base commit's prepare.py."""
    dest = Path(dest)
    dest.mkdir(parents=True)
    try:
        entries = tree_blobs(repo, commit)
        blobs = read_blobs(repo, sorted({sha for _, sha, _ in entries}))
        for mode, sha, name in entries:
            if mode == "120000":  # a link could point anywhere on the runner's machine
                raise OSError(f"{name} is a symbolic link")
            _write_file(dest, name, blobs[sha], executable=mode == "100755")
        _write_file(dest, PREPARE, prepare, executable=False)
    except OSError as e:  # a full disk, an odd path: the job fails, not the runner
        shutil.rmtree(dest, ignore_errors=True)
        raise SwarmError(f"cannot materialise {commit[:12]}: {e}") from None
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return RunDirectory(
        path=dest, train_sha256=sha256_file(dest / TRAIN), prepare_sha256=sha256_bytes(prepare)
    )


def _write_file(root: Path, name: str, data: bytes, executable: bool) -> None:
    parts = name.split("/")
    if name.startswith("/") or any(part in ("", ".", "..", ".git") for part in parts):
        raise OSError(f"refusing the path {name[:80]!r}")
    path = root.joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755 if executable else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
