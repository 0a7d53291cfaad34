"""The local executor: train one materialised snapshot on this machine, in a subprocess pinned to one slot.

This is the one place where a trainer process is started and waited for. `swarm runner --gpu K` calls it
for its slot; a Ray node calls it for the GPU Ray gave its task (swarm.runner.ray). So whatever a trainer
needs around it (a sandbox, the sealed evaluator after it, the runner's clock) belongs here and reaches
both executors at once.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from swarm.runner.executor import TrainerOutcome, TrainingPlan
from swarm.runner.process import run_with_timeout, start_in_group
from swarm.runner.snapshot import PREPARE
from swarm.runner.trust import sha256_file


def trainer_argv(plan: TrainingPlan) -> list[str]:
    return [plan.python or sys.executable, "train.py"]


def trainer_environment(profile: str, cuda_visible_devices: str) -> dict[str, str]:
    """This process's environment without the swarm's own variables, pinned to one device and profile."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWARM_")}
    env["AUTORESEARCH_PROFILE"] = profile
    env["CUDA_VISIBLE_DEVICES"] = cuda_visible_devices  # "" for a CPU worker
    env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class LocalExecutor:
    """Trains on this machine, on the devices named by `cuda_visible_devices` ("3", or "" for a CPU)."""

    def __init__(self, cuda_visible_devices: str):
        self.cuda_visible_devices = cuda_visible_devices

    def train(self, plan: TrainingPlan, run_dir: Path, log: Path) -> TrainerOutcome:
        env = trainer_environment(plan.profile, self.cuda_visible_devices)
        started_at, started = time.time(), time.monotonic()
        proc = start_in_group(trainer_argv(plan), run_dir, env, log)
        try:
            code, timed_out = run_with_timeout(proc, plan.timeout_s, plan.kill_grace_s)
        except BaseException:
            run_with_timeout(proc, 0.0, plan.kill_grace_s)  # never leave a trainer behind
            raise
        return TrainerOutcome(
            exit_code=code,
            timed_out=timed_out,
            wall_seconds=round(time.monotonic() - started, 3),
            prepare_untouched=sha256_file(Path(run_dir) / PREPARE) == plan.prepare_sha256,
            started_at=started_at,
            ended_at=time.time(),
        )
