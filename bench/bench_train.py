"""Benchmark train.py end to end: steps/s, tokens/s, startup + export overhead, the sealed evaluator, MFU, VRAM.

    .venv/bin/python bench/bench_train.py                           # tiny profile, this machine's defaults
    .venv/bin/python bench/bench_train.py --threads 1               # as the tests run it (OMP_NUM_THREADS=1)
    .venv/bin/python bench/bench_train.py --threads 1 --parallel 2  # two tiny runs sharing the cores
    .venv/bin/python bench/bench_train.py --profile h100            # on a GPU, with `--source local` data

Data comes from `prepare.py --source local` into the profile's cache (AUTORESEARCH_CACHE_DIR or
~/.cache/autoresearch/<profile>, or --cache-dir), prepared first when it is not there yet.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from swarm.target.summary import parse_summary  # noqa: E402
from tests.support.target import evaluate_model  # noqa: E402

STEP_LINE = re.compile(r"^step (\d+) .* tok/s ([\d,]+)")
BATCH_LINE = re.compile(r"(\d+) tokens per step")
PHASES_LINE = re.compile(r"^startup ([\d.]+)s, compile ([\d.]+)s, export ([\d.]+)s", re.MULTILINE)


def default_cache_dir(profile: str) -> Path:
    override = os.environ.get("AUTORESEARCH_CACHE_DIR")
    return Path(override) if override else Path.home() / ".cache" / "autoresearch" / profile


def ensure_data(env: dict[str, str], cache_dir: Path) -> None:
    if (cache_dir / "prepared.json").exists():
        return
    print(f"preparing {env['AUTORESEARCH_PROFILE']} data in {cache_dir} (--source local) ...", flush=True)
    t0 = time.monotonic()
    subprocess.run([sys.executable, "prepare.py", "--source", "local"], cwd=REPO_ROOT, env=env, check=True)
    print(f"prepared in {time.monotonic() - t0:.1f}s", flush=True)


def run_once(env: dict[str, str], log_path: Path) -> dict:
    with tempfile.TemporaryDirectory() as work:  # each run hands its model.pt2 over in its own directory
        for name in ("train.py", "prepare.py"):
            shutil.copy(REPO_ROOT / name, Path(work) / name)
        return _run_in(Path(work), env, log_path)


def _run_in(work: Path, env: dict[str, str], log_path: Path) -> dict:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "train.py"], cwd=work, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    log_path.write_text(proc.stdout + proc.stderr)
    summary = parse_summary(proc.stdout)
    if proc.returncode != 0 or "training_seconds" not in summary:
        raise SystemExit(f"train.py failed (exit {proc.returncode}); log in {log_path}")
    # Steady-state throughput: the logged steps after the first three (which may compile or warm up).
    logged = [int(m.group(2).replace(",", "")) for m in map(STEP_LINE.match, proc.stdout.splitlines()) if m]
    steady = statistics.median(logged[3:]) if len(logged) > 3 else float("nan")
    train_s = summary["training_seconds"]
    tokens_per_step = int(BATCH_LINE.search(proc.stdout).group(1))  # total_tokens_M is rounded too coarsely
    phases = PHASES_LINE.search(proc.stdout)
    # val_bpb is the sealed evaluator's, from the model train.py handed over (as the runner measures it)
    t_eval = time.monotonic()
    outcome = evaluate_model(
        work / "model.pt2", Path(env["AUTORESEARCH_CACHE_DIR"]), profile=env["AUTORESEARCH_PROFILE"]
    )
    eval_wall = time.monotonic() - t_eval
    return {
        "val_bpb": outcome.get("val_bpb", float("nan")),
        "evaluator_s": eval_wall,
        "steps": summary["num_steps"],
        "steps_per_s": summary["num_steps"] / train_s,
        "tokens_per_s": summary["num_steps"] * tokens_per_step / train_s,
        "steady_tokens_per_s": steady,
        "training_s": train_s,
        "total_s": summary["total_seconds"],
        "overhead_s": summary["total_seconds"] - train_s,
        "startup_s": float(phases.group(1)) if phases else float("nan"),
        "compile_s": float(phases.group(2)) if phases else float("nan"),
        "export_s": float(phases.group(3)) if phases else float("nan"),
        "wall_s": wall,
        "mfu_percent": summary["mfu_percent"],
        "peak_vram_mb": summary["peak_vram_mb"],
        "device": summary["device"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="tiny", help="AUTORESEARCH_PROFILE for prepare.py and train.py")
    parser.add_argument("--cache-dir", type=Path, help="data cache (default: the profile's cache)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of runs")
    parser.add_argument("--parallel", type=int, default=1, help="train.py processes at once per round")
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS for train.py (default: inherited)")
    parser.add_argument("--log-dir", type=Path, default=Path("/tmp"), help="where each run's output is kept")
    args = parser.parse_args()

    cache_dir = args.cache_dir or default_cache_dir(args.profile)
    env = {**os.environ, "AUTORESEARCH_PROFILE": args.profile, "AUTORESEARCH_CACHE_DIR": str(cache_dir)}
    if args.threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    ensure_data(env, cache_dir)

    results = []
    for round_no in range(args.repeats):
        logs = [args.log_dir / f"bench_train_{args.profile}_{round_no}_{i}.log" for i in range(args.parallel)]
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            results += list(pool.map(lambda log: run_once(env, log), logs))

    threads = env.get("OMP_NUM_THREADS", f"default ({os.cpu_count()} cores)")
    print(
        f"\nprofile {args.profile} on {results[0]['device']}, OMP_NUM_THREADS={threads}, {args.parallel} at once"
    )
    columns = [
        ("val_bpb", "{:.4f}"),
        ("steps", "{}"),
        ("steps_per_s", "{:.2f}"),
        ("tokens_per_s", "{:,.0f}"),
        ("steady_tokens_per_s", "{:,.0f}"),
        ("training_s", "{:.1f}"),
        ("overhead_s", "{:.1f}"),
        ("startup_s", "{:.1f}"),
        ("compile_s", "{:.1f}"),
        ("export_s", "{:.1f}"),
        ("evaluator_s", "{:.1f}"),
        ("wall_s", "{:.1f}"),
        ("mfu_percent", "{:.2f}"),
        ("peak_vram_mb", "{:.0f}"),
    ]
    widths = [max(len(name), 9) for name, _ in columns]
    print(" ".join(f"{name:>{w}}" for (name, _), w in zip(columns, widths, strict=True)))
    rows = [[fmt.format(r[name]) for name, fmt in columns] for r in results]
    if len(results) > 1:
        rows.append(
            [fmt.format(statistics.mean(r[name] for r in results)) for name, fmt in columns] + ["(mean)"]
        )
    for row in rows:
        print(" ".join(f"{cell:>{w}}" for cell, w in zip(row, [*widths, 0], strict=False)))
    print("\nsteps_per_s, tokens_per_s: all steps over training_seconds; steady: median of the logged steps")
    print(
        "overhead_s = total_seconds - training_seconds: startup_s + compile_s (warm-up) + export_s, outside the runner's training window;"
        " evaluator_s: the sealed evaluator process (val_bpb), after train.py"
    )
    print("wall_s: the whole process, interpreter start and imports included")
    return 0


if __name__ == "__main__":
    sys.exit(main())
