"""Trust checks the runner enforces from outside train.py: the allow-list diff, the budget, untouched eval code.

A result counts only if it was measured on pristine evaluation code: the commit may differ from the run's
base only in allow-listed paths (train.py by default), prepare.py comes from the base commit, and the
reported training time stays within the profile's budget plus a small tolerance.
"""

from __future__ import annotations

import fnmatch
import hashlib
from pathlib import Path

from swarm.repo.git import changed_paths


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str | None:
    try:
        return sha256_bytes(Path(path).read_bytes())
    except FileNotFoundError:
        return None


def disallowed_changes(repo: Path, base: str, commit: str, allowed: tuple[str, ...]) -> list[str]:
    """Paths the commit changes relative to base that no allow-list pattern (fnmatch, full path) covers."""
    return [
        p for p in changed_paths(repo, base, commit) if not any(fnmatch.fnmatchcase(p, a) for a in allowed)
    ]


def budget_limit(budget: float, tolerance: float, tolerance_s: float) -> float:
    """The most training_seconds a run may report: budget x (1 + tolerance) + tolerance_s.

    Upstream's loop stops at the first step past the budget, so honest runs overshoot by one step."""
    return budget * (1.0 + tolerance) + tolerance_s


def timeout_for(budget: float, timeout_s: float | None, grace_s: float) -> float:
    """The hard wall-clock limit of a run: an explicit timeout, else 2 x budget + grace (startup, eval)."""
    return timeout_s if timeout_s is not None else 2.0 * budget + grace_s
