"""`swarm doctor --smoke`: a real sealed run of a few steps on one slot of this machine, stage by stage.

    stages = smoke_slot(repo, "0", "h100")     # or "cpu0": compiled as on CUDA (the CPU mirror)

The first command on a new machine. It runs exactly what the runner runs for a job, through the same
functions (sealed.start_trainer, sealed.Evaluator): the repository's HEAD materialised in a run directory
with its prepare.py, `python train.py` in the trainer's sandbox on the slot's GPU (compiled; on a CPU slot
under the CPU mirror of the CUDA path), the handed-over model, then the evaluator in its sandbox. Only the
length differs: train.py stops after SMOKE_STEPS steps (AUTORESEARCH_SMOKE_STEPS) of the profile's real model
shape. Each stage is reported with its time; the first that fails ends the smoke with its cause, so that a
machine fault (no CUDA, no compiler, bwrap refused, data not prepared) is found before a swarm records it.
The compile caches are fresh: what is timed is a cold compile, what every first run of a swarm pays.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from swarm.board.slots import is_cpu_slot
from swarm.errors import DataError, SwarmError
from swarm.repo.git import file_at, rev_parse
from swarm.runner.caches import CompileCaches
from swarm.runner.process import run_with_timeout
from swarm.runner.sandbox import sandbox_problem
from swarm.runner.sealed import Evaluator, RunPlan, data_manifest, start_trainer
from swarm.runner.settings import RunnerSettings
from swarm.runner.snapshot import PREPARE, RunDirectory, materialise
from swarm.target.profiles import profile_constants
from swarm.target.summary import last_line, read_summary

SMOKE_STEPS = 3  # optimizer steps: the first compiles, the next show that the compiled steps run
SMOKE_TIMEOUT_S = 900.0  # a cold compile of the h100 model takes minutes on a slow CPU, not more


@dataclass(frozen=True)
class Stage:
    """One stage of a smoke run: its name, how long it took, and what it found (a failure's cause)."""

    name: str
    seconds: float
    ok: bool
    detail: str = ""

    def line(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return f"{self.name:<10} {self.seconds:7.1f} s  {verdict}{'  ' + self.detail if self.detail else ''}"


def smoke_slot(
    repo: Path,
    slot: str,
    profile: str,
    settings: RunnerSettings | None = None,
    environ: dict[str, str] | None = None,
    say: Callable[[Stage], None] = lambda stage: None,
) -> list[Stage]:
    """Smoke-test one slot; every stage is passed to `say` as it ends. The last stage is the first failure,
    if any."""
    settings = replace(settings or RunnerSettings(), cuda_mirror=True)  # a CPU slot runs compiled, as CUDA
    environ = dict(os.environ if environ is None else environ)
    stages: list[Stage] = []

    def stage(name: str, seconds: float, ok: bool, detail: str = "") -> bool:
        stages.append(Stage(name, seconds, ok, detail))
        say(stages[-1])
        return ok

    started = time.monotonic()
    problem = sandbox_problem()
    if not stage("sandbox", time.monotonic() - started, problem is None, problem or "bubblewrap works"):
        return stages
    started = time.monotonic()
    try:
        head = rev_parse(repo, "HEAD")
        prepare = file_at(repo, head, PREPARE)
        if prepare is None:
            raise SwarmError(f"HEAD {head[:12]} has no {PREPARE}")
        constants = profile_constants(prepare, profile, where=f"{PREPARE} of {head[:12]}")
        data = data_manifest(profile, None, environ)
    except (DataError, SwarmError) as e:
        stage("data", time.monotonic() - started, False, str(e))
        return stages
    stage("data", time.monotonic() - started, True, f"{profile} cache at {data.root}")
    with tempfile.TemporaryDirectory(prefix="swarm-smoke-") as scratch:
        caches = CompileCaches(Path(scratch) / "compile-cache")
        plan = RunPlan(
            profile=profile,
            constants=constants,
            slot=slot,
            settings=settings,
            allowance_s=settings.overhead_default_s,
            data=data,
            environ=environ,
            compile_cache=caches.trusted(),  # the repository's own train.py
            eval_cache=caches.evaluator(),
            smoke_steps=SMOKE_STEPS,
        )
        snapshot = materialise(repo, head, prepare, Path(scratch) / "run")
        _run(snapshot, plan, Path(scratch) / "smoke.log", stage)
    return stages


def _run(snapshot: RunDirectory, plan: RunPlan, log: Path, stage: Callable[..., bool]) -> None:
    """The trainer (its stages as train.py times them), then the evaluator."""
    started = time.monotonic()
    evaluator = Evaluator(snapshot, plan, log)
    try:
        proc = start_trainer(plan, snapshot.path, log)
        code, timed_out = run_with_timeout(proc, SMOKE_TIMEOUT_S, plan.settings.kill_grace_s)
        if timed_out or code != 0 or not read_summary(log):
            cause = f"killed after {SMOKE_TIMEOUT_S:.0f} s" if timed_out else f"exit code {code}"
            stage("train.py", time.monotonic() - started, False, f"{cause}: {last_line(log)}")
            return
        for name, seconds, detail in trainer_stages(log):
            stage(name, seconds, True, detail)
        started = time.monotonic()
        fields = evaluator.evaluate()
        if fields.get("status"):
            stage(
                "evaluate", time.monotonic() - started, False, f"{fields['status']}: {fields.get('reason')}"
            )
        else:
            stage("evaluate", time.monotonic() - started, True, f"val_bpb {fields['val_bpb']:.4f}")
    except SwarmError as e:  # a data error, or the machine's fault as the evaluator reports it
        stage("evaluate", time.monotonic() - started, False, str(e))
    finally:
        evaluator.close()


_STEP = re.compile(r"^step 0*(\d+) .* dt (\d+)ms", re.MULTILINE)
_TIMES = re.compile(r"\b(startup|compile|export) ([\d.]+)s")


def trainer_stages(log: Path) -> list[tuple[str, float, str]]:
    """(name, seconds, detail) of train.py's stages, from its own lines: start-up, compile (its warm-up
    when it prints one, else the first step), the other steps, export."""
    text = log.read_text(errors="replace")
    times = {name: float(value) for name, value in _TIMES.findall(text)}
    steps = [int(ms) / 1000 for _, ms in _STEP.findall(text)]
    summary = read_summary(log)
    stages = [("start-up", times.get("startup", 0.0), "imports, model, data loader")]
    if "compile" in times:
        stages.append(("compile", times["compile"], "forward, backward and optimizer graphs"))
    elif steps:
        stages.append(("compile", steps.pop(0), "the first step: forward, backward and optimizer graphs"))
    vram = summary.get("peak_vram_mb", 0.0)
    detail = f"{summary.get('num_steps', '?')} steps in all, peak VRAM {vram} MB"
    stages.append(("steps", sum(steps), detail))
    stages.append(("export", times.get("export", 0.0), "the trained model handed over (model.pt2)"))
    return stages


def smoke_slots(gpu_indices: list[int]) -> list[str]:
    """Every GPU of the machine, or one CPU worker."""
    return [str(i) for i in gpu_indices] or ["cpu0"]


def describe(slot: str, profile: str) -> str:
    how = "compiled, bf16 autocast (the CPU mirror of the CUDA path)" if is_cpu_slot(slot) else "on CUDA"
    return f"smoke {slot}: {SMOKE_STEPS} steps of the {profile} profile's model, {how}, sealed"
