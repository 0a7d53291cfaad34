"""`[runner]` settings in swarm.toml: the allow-list, evaluation, timeouts, the clock, limits, polling,
retries, sandbox."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunnerSettings:
    """`[runner]` in swarm.toml."""

    allowed_paths: tuple[str, ...] = ("train.py",)  #: fnmatch patterns a commit may change relative to base
    # "sealed": val_bpb from the runner's evaluator on the handed-over model. "reported": from the trainer's
    # own summary (stand-in trainers in tests, train.py from before sealing); such results say so.
    #: [advanced] "sealed" (the runner's evaluator) or "reported" (the trainer's own summary)
    evaluation: str = "sealed"
    #: [advanced] hard limit per run; default: the budget limit + the overhead allowance
    timeout_s: float | None = None
    # The trainer's overhead (wall time outside its training window: startup, compile, export) cannot train
    # (swarm.runner.clock) and only holds the slot: the timeout allows the largest overhead of the device
    # class's baseline runs (overran ones included) x (1 + overhead_slack) + overhead_slack_s; before the class
    # has a baseline run, overhead_default_s (a cold compile of the h100 profile takes an estimated 70-150 s).
    #: [advanced] the timeout allows the largest baseline overhead x (1 + this) ...
    overhead_slack: float = 0.5
    overhead_slack_s: float = 10.0  #: [advanced] ... + this many seconds
    #: [advanced] the overhead allowed before a device class has a baseline run
    overhead_default_s: float = 300.0
    eval_timeout_s: float = 900.0  #: [advanced] the evaluator's hard limit
    # Once the device class has baseline runs, the evaluator's limit is their largest eval_seconds x
    # eval_timeout_multiple, at least eval_timeout_floor_s (and never above eval_timeout_s): a model made
    # slow on purpose holds a slot minutes, not a quarter of an hour.
    #: [advanced] with baseline runs: their largest eval_seconds x this ...
    eval_timeout_multiple: float = 5.0
    eval_timeout_floor_s: float = 120.0  #: [advanced] ... but at least this many seconds
    max_model_mb: float = 4096.0  #: [advanced] largest model.pt2 the evaluator opens
    #: [advanced] a run printing more is stopped as invalid; its log keeps this much
    log_limit_mb: float = 16.0
    kill_grace_s: float = 5.0  #: [advanced] seconds between SIGTERM and SIGKILL of a trainer's process group
    # The training window may exceed the budget by this fraction or this many seconds, whichever is more: the
    # fraction bounds what a run that stretches its loop gains (2% at h100's 300 s), the seconds let an
    # honest run's last step be slow on a loaded machine.
    #: [advanced] the training window may exceed the budget by this fraction ...
    budget_tolerance: float = 0.02
    budget_tolerance_s: float = 3.0  #: [advanced] ... or this many seconds, whichever is more
    #: [advanced] how often an idle runner reads the board from its remembered offset
    poll_interval_s: float = 0.05
    max_attempts: int = 2  #: [advanced] a job whose runner died this many times is recorded as crash
    keep_run_dirs: bool = False  #: [advanced] keep `board/runs/<id>/` after a run (debugging)
    python: str = ""  #: [advanced] interpreter for train.py and the evaluator; "" means the runner's own
    # The trainer's sandbox (swarm.runner.sandbox) passes only an allow-list of environment variables and
    # lets it write only its run directory: more variables (names) and directories ($VARS expanded) here.
    #: more environment variables (names) a trainer may see, e.g. ["HF_HOME"]
    trainer_env: tuple[str, ...] = ()
    trainer_writable: tuple[str, ...] = ()  #: more directories a trainer may write ($VARS expanded)
    # On a CPU slot, run as on CUDA: compiled under bf16 autocast (the evaluator's --mirror; train.py's
    # AUTORESEARCH_CUDA_MIRROR=1), so the GPU path is exercised without a GPU.
    #: [advanced] on a CPU slot, train and evaluate compiled under bf16 autocast, as on CUDA
    cuda_mirror: bool = False


def eval_timeout(settings: RunnerSettings, baseline_evals: list[float]) -> float:
    """The evaluator's limit for a run of a class whose baselines took `baseline_evals` seconds to evaluate
    (none yet: the hard limit)."""
    if not baseline_evals:
        return settings.eval_timeout_s
    scaled = max(baseline_evals) * settings.eval_timeout_multiple
    return min(settings.eval_timeout_s, max(settings.eval_timeout_floor_s, scaled))
