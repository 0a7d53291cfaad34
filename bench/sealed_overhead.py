"""Sealed evaluation's overhead on the tiny profile, side by side with the unsealed path it replaced.

    .venv/bin/python bench/sealed_overhead.py [--runs 3] [--threads 2] [--before REV]

Each run trains the tiny profile (15 s budget) on this machine's CPU:
  unsealed: train.py and prepare.py as they were at REV (default: the commit before sealed evaluation), which
      evaluate in the trainer: overhead = the trainer's wall time - training_seconds (interpreter start,
      imports, startup, evaluation), and train.py's own total_seconds - training_seconds (the 3.7 s figure);
  sealed: today's train.py, which exports its model (model.pt2), and the evaluator, run as the runner runs
      them (sealed.run_snapshot: the evaluator starts with the trainer, gets ready, and measures once the
      trainer has ended): overhead = trainer wall - training_seconds + the evaluator's time after the trainer
      (load, metric, causality check).
Each path gets its own data cache in a temporary directory (prepared first, not timed). Figures are medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from swarm.runner.sealed import RunPlan, data_manifest, run_snapshot  # noqa: E402
from swarm.runner.settings import RunnerSettings  # noqa: E402
from swarm.runner.snapshot import RunDirectory  # noqa: E402
from swarm.target.data import sha256_bytes  # noqa: E402
from swarm.target.profiles import profile_constants  # noqa: E402
from swarm.target.summary import parse_summary  # noqa: E402

BEFORE = "c585053"  # the layout commit: the last train.py / prepare.py that evaluate in the trainer


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return wall, proc.stdout


def checkout(rev: str | None, dest: Path) -> Path:
    dest.mkdir()
    for name in ("train.py", "prepare.py"):
        text = (REPO / name).read_bytes() if rev is None else _git_show(rev, name)
        (dest / name).write_bytes(text)
    return dest


def _git_show(rev: str, name: str) -> bytes:
    return subprocess.run(["git", "show", f"{rev}:{name}"], cwd=REPO, capture_output=True, check=True).stdout


def unsealed_once(work: Path, env: dict[str, str]) -> tuple[float, float]:
    wall, out = timed([sys.executable, "train.py"], work, env)
    s = parse_summary(out)
    return wall - s["training_seconds"], s["total_seconds"] - s["training_seconds"]


def sealed_once(work: Path, env: dict[str, str], cache: Path, log: Path) -> tuple[float, float, float]:
    """One sealed run as the runner does it (sealed.run_snapshot: the evaluator starts with the trainer and
    measures once it has ended); returns (trainer wall - training, train.py's total - training, evaluator
    seconds after the trainer)."""
    prepare = (work / "prepare.py").read_bytes()
    snapshot = RunDirectory(path=work, train_sha256=None, prepare_sha256=sha256_bytes(prepare))
    plan = RunPlan(
        profile="tiny",
        constants=profile_constants(prepare, "tiny"),
        slot="cpu0",
        settings=RunnerSettings(),
        allowance_s=120.0,
        data=data_manifest("tiny", None, env),
        environ=env,
    )
    fields = run_snapshot(snapshot, plan, log)
    if fields["status"] is not None:
        raise SystemExit(f"the sealed run ended {fields['status']}: {fields.get('reason')} (log {log})")
    s = parse_summary(log.read_text())
    return (
        fields["wall_seconds"] - fields["training_seconds"],
        s["total_seconds"] - s["training_seconds"],
        fields["eval_seconds"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--before", default=BEFORE, help="the unsealed train.py / prepare.py revision")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = {
            "unsealed": checkout(args.before, tmp / "unsealed"),
            "sealed": checkout(None, tmp / "sealed"),
        }
        envs = {}
        for name, work in paths.items():
            cache = tmp / f"cache-{name}"
            envs[name] = {
                **os.environ,
                "AUTORESEARCH_PROFILE": "tiny",
                "AUTORESEARCH_CACHE_DIR": str(cache),
                "OMP_NUM_THREADS": str(args.threads),
            }
            timed([sys.executable, "prepare.py", "--source", "local"], work, envs[name])
        unsealed, sealed = [], []
        for k in range(args.runs):
            unsealed.append(unsealed_once(paths["unsealed"], envs["unsealed"]))
            sealed.append(
                sealed_once(paths["sealed"], envs["sealed"], tmp / "cache-sealed", tmp / f"sealed-{k}.log")
            )
            print(f"run {k + 1}: unsealed {unsealed[-1]}, sealed {sealed[-1]}", flush=True)
    med = [statistics.median(column) for column in zip(*unsealed, strict=True)]
    sed = [statistics.median(column) for column in zip(*sealed, strict=True)]
    print(f"unsealed: wall - training {med[0]:.1f} s (in train.py: total - training {med[1]:.1f} s)")
    print(
        f"sealed:   wall - training {sed[0]:.1f} s (in train.py: total - training {sed[1]:.1f} s, export included)"
        f" + evaluator after the trainer {sed[2]:.1f} s = {sed[0] + sed[2]:.1f} s"
    )
    print(f"ratio sealed / unsealed (wall): {(sed[0] + sed[2]) / med[0]:.2f}x  (goal: at most 1.5x)")


if __name__ == "__main__":
    main()
