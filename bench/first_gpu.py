"""The first thing to run on a GPU machine: `swarm doctor --smoke`, then one full h100-profile run through the
runner's sealed path, with its figures next to upstream autoresearch's.

    .venv/bin/python bench/first_gpu.py [--gpu 0] [--skip-smoke]

Needs a CUDA GPU and the h100 data cache (`AUTORESEARCH_PROFILE=h100 python prepare.py`). The run is what a
runner does for a job (sealed.run_snapshot): this checkout's HEAD materialised in a run directory, train.py in
the trainer's sandbox on the GPU, the evaluator in its sandbox, judged by the runner's clock; its compile
caches are fresh (a cold compile, what a swarm's first run pays). It prints MFU, tokens/s, peak VRAM, the
overhead (start-up, compile, export, evaluation) and val_bpb beside upstream's figures (H100: MFU 39.8%,
25.8 s of overhead = total_seconds 325.9 - training_seconds 300.1, val_bpb 0.9979). As upstream does, the
CUDA allocator gets expandable segments (PYTORCH_ALLOC_CONF). Without a GPU it says so in one line and exits 1.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from swarm.orchestration.gpus import detect_gpus  # noqa: E402
from swarm.repo.git import file_at, rev_parse  # noqa: E402
from swarm.runner.caches import CompileCaches  # noqa: E402
from swarm.runner.sealed import RunPlan, data_manifest, run_snapshot  # noqa: E402
from swarm.runner.settings import RunnerSettings  # noqa: E402
from swarm.runner.smoke import trainer_stages  # noqa: E402
from swarm.runner.snapshot import materialise  # noqa: E402
from swarm.target.profiles import profile_constants  # noqa: E402

PROFILE = "h100"
UPSTREAM = {"mfu_percent": 39.8, "overhead_s": 25.8, "val_bpb": 0.9979}


def full_run(gpu: str) -> tuple[dict, Path]:
    """One sealed h100 run on `gpu` as a runner makes it; (its record fields, its log)."""
    head = rev_parse(REPO, "HEAD")
    prepare = file_at(REPO, head, "prepare.py")
    settings = RunnerSettings()
    scratch = Path(tempfile.mkdtemp(prefix="first-gpu-"))
    caches = CompileCaches(scratch / "compile-cache")
    plan = RunPlan(
        profile=PROFILE,
        constants=profile_constants(prepare, PROFILE),
        slot=gpu,
        settings=settings,
        allowance_s=settings.overhead_default_s,
        data=data_manifest(PROFILE, None),
        environ=dict(os.environ),
        compile_cache=caches.trusted(),  # the repository's own train.py
        eval_cache=caches.evaluator(),
    )
    snapshot = materialise(REPO, head, prepare, scratch / "run")
    log = scratch / "run.log"
    return run_snapshot(snapshot, plan, log), log


def report(fields: dict, log: Path) -> None:
    stages = {name: seconds for name, seconds, _ in trainer_stages(log)}
    training = fields.get("training_seconds") or 0.0
    wall = fields.get("wall_seconds") or 0.0
    tokens = (fields.get("total_tokens_M") or 0.0) * 1e6
    overhead = wall - training + (fields.get("eval_seconds") or 0.0)
    rows = [
        ("status", fields.get("status") or "measured", fields.get("reason") or ""),
        ("val_bpb", fields.get("val_bpb"), f"upstream {UPSTREAM['val_bpb']}"),
        ("mfu_percent", fields.get("mfu_percent"), f"upstream {UPSTREAM['mfu_percent']}"),
        ("tokens/s", round(tokens / training) if training else None, ""),
        ("peak_vram_mb", fields.get("peak_vram_mb"), ""),
        ("num_steps", fields.get("num_steps"), ""),
        ("start-up s", stages.get("start-up"), ""),
        ("compile s", stages.get("compile"), "cold caches"),
        ("export s", stages.get("export"), ""),
        ("evaluation s", fields.get("eval_seconds"), "after the trainer ended"),
        (
            "overhead s",
            round(overhead, 1),
            f"wall - training + evaluation; upstream {UPSTREAM['overhead_s']}",
        ),
    ]
    for name, value, note in rows:
        print(f"{name + ':':<14} {value!s:<12} {note}")
    print(f"log: {log}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", default="0", help="the GPU index to run on (default 0)")
    parser.add_argument("--skip-smoke", action="store_true", help="go straight to the full run")
    args = parser.parse_args()
    if not detect_gpus():
        print("first_gpu: no CUDA GPU on this machine (nvidia-smi and torch find none)", file=sys.stderr)
        return 1
    os.environ["PYTORCH_ALLOC_CONF"] = "expandable_segments:True"
    if not args.skip_smoke:
        smoke = [sys.executable, "-m", "swarm", "doctor", "--smoke", "--profile", PROFILE]
        if subprocess.run(smoke, cwd=REPO).returncode != 0:
            print("first_gpu: the smoke run failed (above): no full run", file=sys.stderr)
            return 1
    print(f"full {PROFILE} run on GPU {args.gpu} (cold compile caches) ...", flush=True)
    fields, log = full_run(args.gpu)
    report(fields, log)
    return 0 if not fields.get("status") else 1


if __name__ == "__main__":
    sys.exit(main())
