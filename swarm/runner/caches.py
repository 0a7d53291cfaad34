"""Compile caches (Inductor, Triton) that persist between runs and that no agent can poison for another.

    caches = CompileCaches(board.directory / "compile-cache")
    caches.trainer(job)     # board/compile-cache/agents/<agent>/, or None: a cold, private one
    caches.evaluator()      # board/compile-cache/evaluator/

A cold compile of the h100 model takes minutes; kept between runs, it takes seconds. But a cache holds
compiled kernels that later runs load and execute, so whoever can write one can slow (or change) every run
that reads it. Hence:
- a trainer's cache is its agent's own: only runs of that agent's commits bind it writable, so what an
  agent's train.py writes there can only ever slow that agent's own later runs;
- a verification rerun (swarm.board.verification: a confirmation rerun, its control, a calibration rerun of a
  baseline, a rerun anyone asked for) gets none. A control reruns the agent's reference, which may be the
  agent's own earlier commit, and the runs a result is judged against must not read anything the agent's
  code could have written; calibration and confirmation reruns measure the class's noise, which every
  agent's keep depends on. Each compiles cold in its sandbox's private /tmp, which the clock's allowance
  fits (the compile is outside the training window), and a cold compile makes the same kernels;
- the evaluator's cache is bound only into evaluator sandboxes, which compile the checked program, never a
  trainer's code; no trainer sandbox binds it.
Cache-location variables the operator has set (TORCHINDUCTOR_CACHE_DIR, ...) never reach a sandbox: their
paths are not mounted there, and a compile into a read-only root fails (CACHE_LOCATION_VARS).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

from swarm.board.experiments import is_control

CACHE_DIR = "compile-cache"  # under the board's directory (the runner's; no sandbox binds the board)
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
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def cache_environment(cache: Path | None) -> dict[str, str]:
    """The variables that point Inductor and Triton at `cache` (None: their defaults, in the sandbox's /tmp)."""
    if cache is None:
        return {}
    return {"TORCHINDUCTOR_CACHE_DIR": str(cache / "inductor"), "TRITON_CACHE_DIR": str(cache / "triton")}


def without_cache_locations(env: dict[str, str]) -> dict[str, str]:
    """`env` without the operator's cache-location variables (CACHE_LOCATION_VARS)."""
    return {k: v for k, v in env.items() if k not in CACHE_LOCATION_VARS}


class CompileCaches:
    """The persistent compile caches of one board: per agent for trainers, one for the evaluator."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def trainer(self, job: dict[str, Any]) -> Path | None:
        """The job's trainer cache (made here), or None for a verification rerun (a control included) or a
        job no agent can be named for."""
        agent = job.get("agent")
        rerun = is_control(job) or job.get("verify_of") or job.get("validate_of")
        if rerun or not isinstance(agent, str) or not _SAFE_NAME.fullmatch(agent):
            return None
        return self._made(self.root / "agents" / agent)

    def evaluator(self) -> Path | None:
        return self._made(self.root / "evaluator")

    @staticmethod
    def _made(path: Path) -> Path | None:
        with contextlib.suppress(OSError):  # a read-only board: compile cold
            path.mkdir(parents=True, exist_ok=True)
            return path
        return None
