"""Materialise an experiment's commit into a clean run directory, with prepare.py from the run's base commit.

Runs never execute in an agent's worktree: the agent keeps editing while its experiment trains, and the
runner needs an immutable snapshot. The commit's tree is unpacked with `git archive` (no worktree
bookkeeping in the repository to clean up after a crash), then prepare.py is overwritten with the base
commit's copy so an agent's prepare.py is never executed, whatever the allow-list says.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from swarm.errors import SwarmError
from swarm.repo.git import archive
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
    """Unpack `commit` into `dest` (which must not exist) with `prepare`, the base commit's prepare.py."""
    dest = Path(dest)
    dest.mkdir(parents=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(archive(repo, commit))) as tar:
            tar.extractall(dest, filter="data")  # "data": no absolute paths, no links out of dest
        target = dest / PREPARE
        if target.is_symlink() or target.exists():
            target.unlink()
        target.write_bytes(prepare)
    except (
        tarfile.TarError,
        OSError,
    ) as e:  # a link out of the tree, a full disk: the job fails, not the runner
        shutil.rmtree(dest, ignore_errors=True)
        raise SwarmError(f"cannot materialise {commit[:12]}: {e}") from None
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return RunDirectory(
        path=dest, train_sha256=sha256_file(dest / TRAIN), prepare_sha256=sha256_bytes(prepare)
    )


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
