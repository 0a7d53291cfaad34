"""`[runner]` settings in swarm.toml: the allow-list, timeouts, budget tolerance, polling, retries, sandbox."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunnerSettings:
    """`[runner]` in swarm.toml."""

    allowed_paths: tuple[str, ...] = ("train.py",)  # fnmatch patterns a commit may change relative to base
    timeout_s: float | None = None  # hard limit per run; default 2 x budget + timeout_grace_s
    timeout_grace_s: float = 120.0
    kill_grace_s: float = 5.0  # between SIGTERM and SIGKILL of a trainer's process group
    budget_tolerance: float = 0.02  # training_seconds may exceed the budget by this fraction ...
    budget_tolerance_s: float = 2.0  # ... plus this many seconds
    poll_interval_s: float = 0.05  # how often an idle runner reads the board from its remembered offset
    max_attempts: int = 2  # a job whose runner died this many times is recorded as crash
    keep_run_dirs: bool = False  # keep board/runs/<id>/ after a run (debugging)
    python: str = ""  # interpreter for train.py; "" means the runner's own
    # The trainer's sandbox (swarm.runner.sandbox) passes only an allow-list of environment variables and
    # lets it write only its run directory: more variables (names) and directories ($VARS expanded) here.
    trainer_env: tuple[str, ...] = ()
    trainer_writable: tuple[str, ...] = ()
