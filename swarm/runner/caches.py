"""Compile caches (Inductor, Triton) that persist between runs and that no train.py can poison or use to carry
anything from one run to another.

    caches = CompileCaches(board.directory / "compile-cache")
    caches.trusted()              # board/compile-cache/base/: written by runs of the base's own train.py
    caches.private_copy(dest)     # a copy of it for one run of any other train.py, removed with the run
    caches.evaluator()            # board/compile-cache/evaluator/

Kept between runs, a compile of minutes takes seconds; but later runs execute what a cache holds, so
anything a train.py writes there and a later run reads is a channel (a slow, poisoned kernel; weights
trained before the clock's window opens). Hence only the base commit's own train.py writes the persistent
cache, every other run compiles into a private copy removed with it, and the evaluator's cache is bound
into evaluator sandboxes only. Long story: docs/trust.md.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

CACHE_DIR = "compile-cache"  # under the board's directory (the runner's; no sandbox binds the board)
PRIVATE_CACHE = ".compile-cache"  # a run's private copy, inside its run directory
# Where torch, Inductor, Triton and CUDA put (or find) compiled code: replaced by the mounted cache or dropped.
CACHE_LOCATION_VARS = (
    "TORCHINDUCTOR_CACHE_DIR",
    "TRITON_CACHE_DIR",
    "TRITON_HOME",
    "TRITON_DUMP_DIR",
    "TRITON_OVERRIDE_DIR",
    "TORCH_HOME",
    "TORCH_EXTENSIONS_DIR",
    "PYTORCH_KERNEL_CACHE_PATH",
    "CUDA_CACHE_PATH",
    "XDG_CACHE_HOME",
)


def cache_environment(cache: Path | None) -> dict[str, str]:
    """The variables that point Inductor and Triton at `cache` (None: their defaults, in the sandbox's /tmp)."""
    if cache is None:
        return {}
    return {"TORCHINDUCTOR_CACHE_DIR": str(cache / "inductor"), "TRITON_CACHE_DIR": str(cache / "triton")}


def without_cache_locations(env: dict[str, str]) -> dict[str, str]:
    """`env` without the operator's cache-location variables (CACHE_LOCATION_VARS)."""
    return {k: v for k, v in env.items() if k not in CACHE_LOCATION_VARS}


class CompileCaches:
    """The persistent compile caches of one board: the trusted trainer cache and the evaluator's."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def trusted(self) -> Path | None:
        """The cache written by runs of the base's own train.py (made here; None on a read-only board)."""
        return self._made(self.root / "base")

    def private_copy(self, dest: Path) -> Path | None:
        """A copy of the trusted cache at `dest` (which must not exist), for one run of any other train.py;
        None when there is nothing to copy from or it cannot be made (the run compiles cold)."""
        source = self.root / "base"
        try:
            if source.is_dir():
                shutil.copytree(source, dest, symlinks=True)  # copies, never links: nothing written goes back
            else:
                Path(dest).mkdir(parents=True)
        except OSError:
            shutil.rmtree(dest, ignore_errors=True)
            return None
        return Path(dest)

    def for_run(self, trusted_code: bool, run_dir: Path) -> Path | None:
        """The cache a run binds writable: the trusted one for the base's own train.py, else a private copy
        inside its run directory."""
        return self.trusted() if trusted_code else self.private_copy(Path(run_dir) / PRIVATE_CACHE)

    def evaluator(self) -> Path | None:
        return self._made(self.root / "evaluator")

    @staticmethod
    def _made(path: Path) -> Path | None:
        with contextlib.suppress(OSError):  # a read-only board: compile cold
            path.mkdir(parents=True, exist_ok=True)
            return path
        return None
