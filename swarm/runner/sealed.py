"""A sealed run of one snapshot: the trainer, then the evaluator, judged by the runner's clock. No board.

    fields = run_snapshot(snapshot, plan, log)

The unit an executor runs: the local runner calls it for its slot, a Ray node on its copy of the snapshot,
since it touches neither the board nor the repository. It returns the run's record fields (`status` None
for a measured result, whose keep / marginal / discard is the board's decision; else crash, timeout or
invalid with a `reason`). A data cache that no longer matches its manifest raises DataError, a failing
device DeviceFault: nothing may be recorded from either. Only the runner's clock counts (swarm.runner.clock).
The evaluator, the swarm's code, gets ready while the trainer runs and is told "go" once the trainer's group
has ended, so its start-up is off the run's clock. `start_trainer` and `start_evaluator` are the one place
a sandbox wraps their command lines. Long story: docs/trust.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarm.board.experiments import (
    CLOCK,
    CRASH,
    INVALID,
    METRIC_FIELDS,
    OUTPUT_LIMIT,
    REPORTED,
    SEALED,
    TIMEOUT,
)
from swarm.board.holdout import HOLDOUT_FIELD
from swarm.board.slots import is_cpu_slot
from swarm.errors import DataError, DeviceFault
from swarm.repo.git import file_at
from swarm.runner.caches import cache_environment, without_cache_locations
from swarm.runner.clock import TrainingClock, training_shards
from swarm.runner.devices import gpu_mounts, library_path_targets, library_paths, slot_gpu, uvm_problem
from swarm.runner.process import output_overflowed, run_with_timeout, start_in_group
from swarm.runner.pruning import Monitor
from swarm.runner.sandbox import evaluator_sandbox, reduced_environment, trainer_sandbox
from swarm.runner.settings import RunnerSettings
from swarm.runner.snapshot import RunDirectory, remove
from swarm.runner.trust import (
    budget_limit,
    claim_problem,
    clock_problem,
    timeout_for,
    window_problem,
)
from swarm.target.data import Manifest, cache_dir, load_manifest, sha256_bytes
from swarm.target.summary import is_finite, last_line, read_summary

MODEL_FILE = "model.pt2"  # what train.py hands over (prepare.MODEL_FILE)
RESULT_FILE = "result.json"  # what the evaluator writes into its own directory
EVALUATOR_LOG_BYTES = 64 * 1024  # the evaluator prints a few lines; more is a fault
# Of the runner's environment, what the evaluator may see (it must not pick up anything an agent could set).
EVALUATOR_ENV_KEYS = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OMP_WAIT_POLICY",
)


@dataclass(frozen=True)
class RunPlan:
    """Everything a sealed run of one snapshot needs besides the snapshot itself."""

    profile: str
    constants: dict[str, int]  # the profile's max_seq_len, vocab_size, time_budget, eval_tokens
    slot: str  # runner slot: "3" (CUDA_VISIBLE_DEVICES=3) or "cpuK"
    settings: RunnerSettings
    allowance_s: float  # the device class's overhead allowance (trust.overhead_allowance)
    data: Manifest | None  # the pinned, checked data manifest; None with reported evaluation
    environ: dict[str, str]  # the runner's environment, the trainer's starting point
    sandboxed: bool = (
        True  # trainer and evaluator in bubblewrap sandboxes (not with `swarm spawn --unsealed`)
    )
    # Persistent compile caches (swarm.runner.caches): the trainer's (its agent's; None: cold, private) and
    # the evaluator's. One that is not a directory here (a Ray node) is not used.
    compile_cache: Path | None = None
    eval_cache: Path | None = None
    smoke_steps: int = 0  # `swarm doctor --smoke`: train.py stops after this many steps
    eval_timeout_s: float | None = None  # the evaluator's limit (settings.eval_timeout); None: the hard one

    @property
    def eval_limit(self) -> float:
        return self.eval_timeout_s if self.eval_timeout_s is not None else self.settings.eval_timeout_s

    # Where the evaluator's working directory goes: board/private/ (no agent sees it: its result holds the
    # holdout value), or beside the run directory when None (a Ray node's own disk)
    private_dir: Path | None = None
    # A transfer check's multiple of the profile's budget (swarm.board.transfer): the clock's limit is
    # constants["time_budget"] (already multiplied), and train.py learns it from prepare.py's TIME_BUDGET
    budget_x: float = 1.0

    @property
    def budget_cap(self) -> float:
        s = self.settings
        return budget_limit(self.constants["time_budget"], s.budget_tolerance, s.budget_tolerance_s)

    @property
    def timeout(self) -> float:
        return timeout_for(self.budget_cap, self.allowance_s, self.settings.timeout_s)

    @property
    def python(self) -> str:
        return self.settings.python or sys.executable


def spawn_pins(repo: Path, base: str, profile: str) -> tuple[str | None, str | None]:
    """What `swarm spawn` pins in the run record: the sha256 of the base's prepare.py and of the profile's
    data manifest (None for what does not exist yet, e.g. a cache prepared after spawning)."""
    prepare = file_at(repo, base, "prepare.py")
    try:
        data = load_manifest(cache_dir(profile)).sha256
    except DataError:
        data = None
    return (sha256_bytes(prepare) if prepare is not None else None), data


# ---------------------------------------------------------------------------------------------------------
# The two processes


def trainer_command(plan: RunPlan) -> list[str]:
    return [plan.python, "train.py"]


def trainer_environment(plan: RunPlan) -> dict[str, str]:
    """What training needs and nothing else: no API keys, no SWARM_* (swarm.runner.sandbox), the data cache
    named explicitly (a sandboxed trainer's HOME is its private /tmp)."""
    env = reduced_environment(plan.environ, plan.settings.trainer_env, sandboxed=plan.sandboxed)
    if plan.sandboxed:  # the operator's cache paths are not mounted in a sandbox (swarm.runner.caches)
        env = without_cache_locations(env)
    env.update(cache_environment(_usable(plan.compile_cache)))
    env.update(_device_environment(plan))
    env["AUTORESEARCH_CACHE_DIR"] = str(cache_dir(plan.profile, plan.environ))
    env["AUTORESEARCH_PROFILE"] = plan.profile
    env["PYTHONUNBUFFERED"] = "1"
    # train.py's switches are the runner's alone: the slot's device, the CPU mirror, the smoke's step limit
    env["AUTORESEARCH_DEVICE"] = "cpu" if is_cpu_slot(plan.slot) else "cuda"
    for name, on in (
        ("AUTORESEARCH_CUDA_MIRROR", "1" if plan.settings.cuda_mirror and is_cpu_slot(plan.slot) else ""),
        ("AUTORESEARCH_SMOKE_STEPS", str(plan.smoke_steps) if plan.smoke_steps else ""),
    ):
        env.pop(name, None)
        if on:
            env[name] = on
    if plan.budget_x != 1.0:  # set here only: the allow-list never lets the runner's own value through
        env["AUTORESEARCH_BUDGET_X"] = f"{plan.budget_x:g}"
    return env


def start_trainer(plan: RunPlan, run_dir: Path, log: Path, clock: TrainingClock | None = None):
    """The trainer's process; with a `clock`, its training shards hidden and handed out by the clock."""
    env = trainer_environment(plan)
    if clock is not None:
        env.update(clock.environment)
    sandbox = None
    if plan.sandboxed:
        writable = [os.path.expandvars(path) for path in plan.settings.trainer_writable]
        writable += [p for p in [_usable(plan.compile_cache)] if p is not None]
        cache = cache_dir(plan.profile, plan.environ)
        sandbox = trainer_sandbox(
            run_dir,
            cache,
            plan.settings.python or None,
            writable,
            devices=_slot_devices(plan, log),
            readable=library_path_targets(env),
            hide_data=clock is not None,
        )
    limit = int(plan.settings.log_limit_mb * 1e6)
    fds = (clock.child_fd,) if clock is not None else ()
    return start_in_group(trainer_command(plan), run_dir, env, log, limit, sandbox=sandbox, pass_fds=fds)


def evaluator_command(plan: RunPlan, model: Path, result: Path, seed: int) -> list[str]:
    """`-I`: neither the working directory nor PYTHON* variables reach the import path."""
    assert plan.data is not None
    c = plan.constants
    return [
        plan.python,
        "-I",
        "-m",
        "swarm.runner.evaluator",
        str(model),
        "--cache",
        str(plan.data.root),
        "--manifest-sha256",
        plan.data.sha256,
        "--seq-len",
        str(c["max_seq_len"]),
        "--vocab-size",
        str(c["vocab_size"]),
        "--eval-tokens",
        str(c["eval_tokens"]),
        "--result",
        str(result),
        "--device",
        "cpu" if is_cpu_slot(plan.slot) else "cuda",
        "--max-model-bytes",
        str(int(plan.settings.max_model_mb * 1e6)),
        "--seed",
        str(seed),
        "--holdout-tokens",
        str(c.get("holdout_tokens", 0)),
        "--wait",
        *(["--batch-size", str(c["eval_batch_size"])] if "eval_batch_size" in c else []),
        *(["--mirror"] if plan.settings.cuda_mirror and is_cpu_slot(plan.slot) else []),
    ]


def evaluator_environment(plan: RunPlan, work: Path) -> dict[str, str]:
    """A minimal environment; compile caches in the evaluator's own directory (a cache a trainer shares
    could hand the evaluator a poisoned kernel)."""
    env = {k: plan.environ[k] for k in EVALUATOR_ENV_KEYS if k in plan.environ}
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.update(_device_environment(plan))
    env.update(library_paths(plan.environ))  # where CUDA's and Triton's libraries are, as the trainer has
    env.update(PYTHONUNBUFFERED="1", TORCH_FORCE_WEIGHTS_ONLY_LOAD="1", TMPDIR=str(work))
    env.update(cache_environment(_usable(plan.eval_cache) or work))
    return env


def start_evaluator(plan: RunPlan, run_dir: Path, work: Path, argv: list[str], log: Path):
    """The evaluator reads the run directory (the model) and the cache (its eval/ files included) and
    writes only `work`; in a sandbox nothing else of the machine is there."""
    env = evaluator_environment(plan, work)
    sandbox = None
    if plan.sandboxed:
        assert plan.data is not None
        sandbox = evaluator_sandbox(
            run_dir,
            plan.data.root,
            work,
            plan.settings.python or None,
            devices=_slot_devices(plan, log),
            readable=library_path_targets(plan.environ),
            writable=[p for p in [_usable(plan.eval_cache)] if p is not None],
        )
    return start_in_group(argv, work, env, log, EVALUATOR_LOG_BYTES, stdin=subprocess.PIPE, sandbox=sandbox)


def _device_environment(plan: RunPlan) -> dict[str, str]:
    """The slot's GPU for CUDA: none on a CPU slot; in a sandbox that holds only its node, named by its UUID
    (swarm.runner.devices)."""
    slot = plan.slot
    visible = slot
    if is_cpu_slot(slot):
        visible = ""
    elif plan.sandboxed and slot.isdigit():
        visible = slot_gpu(slot).visible
    return {"CUDA_VISIBLE_DEVICES": visible, "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


def _slot_devices(plan: RunPlan, log: Path):
    """The device nodes of the slot's sandboxes (no GPU's on a CPU slot; every GPU's for a slot that is not
    a GPU index). Before the first GPU sandbox, /dev/nvidia-uvm is made if missing; when it cannot be, the
    run's log says why (CUDA will not start in the sandbox)."""
    if is_cpu_slot(plan.slot):
        return []
    if not plan.slot.isdigit():
        return None
    problem = uvm_problem()
    if problem:
        with open(log, "ab") as f:
            f.write(f"# runner: {problem}\n".encode())
    return gpu_mounts(plan.slot)


def _usable(path: Path | None) -> Path | None:
    return path if path is not None and Path(path).is_dir() else None


def _wait(proc, timeout: float, grace: float) -> tuple[int, bool]:
    try:
        return run_with_timeout(proc, timeout, grace)
    except BaseException:
        run_with_timeout(proc, 0.0, grace)  # never leave a process behind
        raise


# ---------------------------------------------------------------------------------------------------------
# One run


def run_snapshot(
    snapshot: RunDirectory, plan: RunPlan, log: Path, monitor: Monitor | None = None
) -> dict[str, Any]:
    """Train the snapshot, judge the trainer by the runner's clock, then (sealed) evaluate its model. With
    a `monitor` (swarm.runner.pruning) a hopeless run is stopped early and ends `pruned`, never evaluated."""
    evaluator = Evaluator(snapshot, plan, log) if plan.data is not None else None
    try:
        clock = TrainingClock(training_shards(cache_dir(plan.profile, plan.environ)))
        fields = _train(snapshot, plan, log, clock, sealed=evaluator is not None, monitor=monitor)
        if fields.get("status", None) is None and evaluator is not None:
            fields.update(evaluator.evaluate())
            weights = fields.pop("weights_sha256", None)
            if fields.get("status") is None and weights != clock.digest:
                reason = f"{CLOCK}: the handed-over weights are not the ones committed when training ended"
                fields.update(status=INVALID, reason=reason)
        elif evaluator is not None:
            evaluator.check_machine()  # a trainer that failed where the device fails: the machine's fault
        return {"status": None, **fields}
    finally:
        if evaluator is not None:
            evaluator.close()


def _train(
    snapshot: RunDirectory,
    plan: RunPlan,
    log: Path,
    clock: TrainingClock,
    sealed: bool,
    monitor: Monitor | None = None,
) -> dict[str, Any]:
    fields: dict[str, Any] = {"evaluation": SEALED if sealed else REPORTED}
    started = time.monotonic()
    try:
        proc = start_trainer(plan, snapshot.path, log, clock)
        clock.listen()
        if monitor is None:
            code, timed_out = _wait(proc, plan.timeout, plan.settings.kill_grace_s)
        else:
            try:
                code, timed_out = monitor.wait(proc, plan.timeout, plan.settings.kill_grace_s)
            except BaseException:
                run_with_timeout(proc, 0.0, plan.settings.kill_grace_s)  # never leave a trainer behind
                raise
    finally:
        clock.close()
    fields["wall_seconds"] = round(time.monotonic() - started, 3)
    if clock.window_s is not None:
        fields["window_seconds"] = round(clock.window_s, 3)
    fields["exit_code"] = code
    summary = read_summary(log)
    # Only the contract's numbers reach the board (no NaN in JSON); a sealed run's val_bpb is the evaluator's.
    fields.update({k: summary[k] for k in METRIC_FIELDS if is_finite(summary.get(k))})
    if sealed:
        fields.pop("val_bpb", None)
    overflowed = output_overflowed(proc)
    problem = _trainer_problem(log, code, timed_out, overflowed, summary, plan, snapshot.prepare_untouched())
    if problem is None:
        late = _clock_problem(fields, clock, plan, sealed, (snapshot.path / MODEL_FILE).exists())
        problem = (INVALID, f"{CLOCK}: {late}") if late else None
    if problem is None and not sealed and fields.get("val_bpb") is None:
        problem = (CRASH, "no finite val_bpb in the summary")
    if problem is not None:
        fields.update(status=problem[0], reason=problem[1])
    if monitor is not None and monitor.stopped_at is not None:
        fields.update(monitor.outcome(plan.constants["time_budget"]))  # pruned: what the runner stopped
    return fields


def _clock_problem(
    fields: dict[str, Any], clock: TrainingClock, plan: RunPlan, sealed: bool, handed_over: bool
) -> str | None:
    """What is wrong with a finished trainer's time, or None. A trainer that committed its weights is judged
    by its training window; a sealed one that handed a model over without committing cannot be judged (its
    model could have trained at any time); one that never talked to the clock (a stand-in with reported
    evaluation) by its claim against the wall time and the allowance."""
    claimed, wall = fields.get("training_seconds", 0.0), fields["wall_seconds"]
    if clock.window_s is None and not sealed:
        return clock_problem(claimed, wall, plan.budget_cap, plan.allowance_s)
    lie = claim_problem(claimed, wall)
    if lie or clock.window_s is not None:
        return lie or window_problem(clock.window_s, plan.budget_cap)
    if handed_over:  # without a model the evaluator says so
        return f"{MODEL_FILE} was handed over without committing its weights (prepare.export_model)"
    return None


def _trainer_problem(
    log: Path, code: int, timed_out: bool, overflowed: bool, summary: dict, plan: RunPlan, prepare_ok: bool
) -> tuple[str, str] | None:
    """(status, reason) of a trainer whose run ends here, or None."""
    if overflowed:
        return INVALID, f"{OUTPUT_LIMIT}: printed more than {plan.settings.log_limit_mb:g} MB"
    if timed_out:
        return TIMEOUT, f"killed after the {plan.timeout:.0f} s timeout"
    if not prepare_ok:
        return INVALID, "prepare.py was modified during the run"
    if code != 0:
        return CRASH, f"exit code {code}: {last_line(log)}"
    if not summary:
        return CRASH, "no summary block in the output"
    if summary.get("profile") not in (None, plan.profile):
        return INVALID, f"ran profile {summary['profile']!r}, not {plan.profile!r}"
    if not is_finite(summary.get("training_seconds")):
        return INVALID, "no training_seconds in the summary"
    return None


class Evaluator:
    """The evaluator process of one run: started with the trainer, told to go once the trainer has ended."""

    def __init__(self, snapshot: RunDirectory, plan: RunPlan, log: Path):
        self.plan, self.log = plan, log
        name = snapshot.path.name + ".eval"
        self.work = plan.private_dir / name if plan.private_dir else snapshot.path.with_name(name)
        remove(self.work)
        self.work.mkdir(parents=True)
        self.result = self.work / RESULT_FILE
        seed = secrets.randbits(31)  # which rows and cuts the causality check uses: unknowable in advance
        argv = evaluator_command(plan, snapshot.path / MODEL_FILE, self.result, seed)
        with open(log, "ab") as f:
            f.write(f"# evaluator: {' '.join(argv[1:5])} ... (causality seed {seed})\n".encode())
        self.proc = start_evaluator(plan, snapshot.path, self.work, argv, log)

    def evaluate(self) -> dict[str, Any]:
        """Let the evaluator measure the handed-over model: val_bpb, or the status and reason it ends with."""
        started = time.monotonic()
        with contextlib.suppress(OSError):  # it may have stopped already (a data error found at its start)
            self.proc.stdin.write(b"go\n")
            self.proc.stdin.close()
        settings = self.plan.settings
        code, timed_out = _wait(self.proc, self.plan.eval_limit, settings.kill_grace_s)
        fields: dict[str, Any] = {"eval_seconds": round(time.monotonic() - started, 3)}
        if timed_out:
            return {**fields, "status": TIMEOUT, "reason": f"evaluation past {self.plan.eval_limit:.0f} s"}
        if output_overflowed(self.proc):
            return {**fields, "status": CRASH, "reason": "the evaluator printed more than expected"}
        outcome = _read_result(self.result)
        if outcome is None or code != 0:
            reason = f"the evaluator failed (exit code {code}): {last_line(self.log)}"
            return {**fields, "status": CRASH, "reason": reason}
        kind = outcome.get("outcome")
        if kind == "data_error":
            raise DataError(str(outcome.get("reason")))
        if kind == "device_error":  # the machine failed, not the model: requeued, the runner stops
            raise DeviceFault(str(outcome.get("reason")))
        if kind == "invalid":
            return {**fields, "status": INVALID, "reason": str(outcome.get("reason"))}
        value = outcome.get("val_bpb")
        if kind != "measured" or not is_finite(value):
            return {**fields, "status": CRASH, "reason": f"the evaluator returned {str(outcome)[:200]}"}
        fields["val_bpb"] = float(value)
        weights = outcome.get("weights_sha256")
        fields["weights_sha256"] = weights if isinstance(weights, str) else None
        holdout = outcome.get(HOLDOUT_FIELD)
        if is_finite(holdout):  # the runner records it privately (swarm.board.holdout), never on the board
            fields[HOLDOUT_FIELD] = float(holdout)
        return fields

    def check_machine(self) -> None:
        """After a trainer that failed: end the evaluator (end of input, no "go") once its own checks are
        done, and raise what it found wrong with the machine (DeviceFault: no CUDA, a failing compiler) or
        the cache (DataError), which the trainer's failure is then blamed on, not the commit. Its checks,
        not anything the trainer printed, decide."""
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        settings = self.plan.settings
        _wait(self.proc, settings.eval_timeout_s, settings.kill_grace_s)
        outcome = _read_result(self.result) or {}
        if outcome.get("outcome") == "device_error":
            raise DeviceFault(str(outcome.get("reason")))
        if outcome.get("outcome") == "data_error":
            raise DataError(str(outcome.get("reason")))

    def close(self) -> None:
        """End the evaluator if it is still waiting (the trainer failed, or the runner stops)."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()  # EOF without "go" (it would exit on its own once ready) ...
            run_with_timeout(self.proc, 0.0, 0.5)  # ... but it has nothing to finish: end it now
        remove(self.work)


def _read_result(path: Path) -> dict[str, Any] | None:
    try:
        outcome = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return outcome if isinstance(outcome, dict) else None


def data_manifest(profile: str, pinned: str | None, environ: dict[str, str] | None = None) -> Manifest:
    """The profile's data manifest, checked: it is the pinned one and every file matches its hash (DataError
    otherwise: the runner stops rather than record numbers from a changed cache)."""
    manifest = load_manifest(cache_dir(profile, environ), pinned)
    manifest.check_all()
    return manifest
