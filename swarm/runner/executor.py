"""The executor seam: how a claimed, planned job becomes one trainer process on one slot, and what comes back.

The runner decides everything that must not depend on where a job trains: the allow-list, prepare.py from
the base commit, the budget and the timeout (a `TrainingPlan`), and afterwards the status and the record.
Between the two an executor trains the materialised snapshot and reports a `TrainerOutcome`. Two
executors exist, one family:

    swarm.runner.local   this machine: a subprocess pinned to one GPU (or CPU worker) -- `swarm runner --gpu K`
    swarm.runner.ray     a GPU of some node of a Ray cluster: the snapshot's bytes travel with a Ray task and
                         the node runs the local executor on them; the outcome and the capped log come back
                         to the head, which alone writes the board

Both call `LocalExecutor.train` on the machine that owns the GPU, so a change to how a trainer runs (the
sandbox, the sealed evaluator, the clock) is made once, there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class TrainingPlan:
    """What an executor needs to train one job: everything here was decided by the runner, not the job."""

    job_id: str
    attempt: int
    profile: str  # AUTORESEARCH_PROFILE for the trainer
    budget_s: float  # the profile's training budget (prepare.py of the base commit)
    timeout_s: float  # hard wall-clock limit of the trainer
    kill_grace_s: float  # between SIGTERM and SIGKILL of the trainer's process group
    prepare_sha256: str  # the base commit's prepare.py: the run directory's copy must still match it
    python: str = ""  # interpreter for train.py; "" means the executing process's own


@dataclass(frozen=True)
class TrainerOutcome:
    """What one trainer did, as measured from outside it (its log is a file beside this)."""

    exit_code: int
    timed_out: bool
    wall_seconds: float
    prepare_untouched: bool  # prepare.py in the run directory still had the base commit's content
    started_at: float  # epoch seconds the trainer was started / ended (dispatch overhead figures)
    ended_at: float


class Executor(Protocol):
    def train(self, plan: TrainingPlan, run_dir: Path, log: Path) -> TrainerOutcome:
        """Train the snapshot in `run_dir`, appending its output to `log`; returns once the trainer (and
        everything it started) has ended."""
        ...
