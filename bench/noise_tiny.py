"""Run-to-run noise of the CPU tiny profile: train the repository's train.py N times, print val_bpb sigma.

    .venv/bin/python bench/noise_tiny.py [--runs 4] [--cache DIR]

The tiny profile's noise floor in swarm.board.noise (DEFAULT_FLOORS["tiny"]) was chosen from this figure: a
fixed wall-clock budget on a shared CPU gives a varying step count, hence a varying val_bpb.
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

from swarm.target.summary import parse_summary  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--cache", help="tiny data cache (prepared here when missing)")
    args = parser.parse_args()
    cache = Path(args.cache or tempfile.mkdtemp(prefix="tiny-cache-"))
    env = {
        **os.environ,
        "AUTORESEARCH_PROFILE": "tiny",
        "AUTORESEARCH_CACHE_DIR": str(cache),
        "OMP_NUM_THREADS": "1",
    }
    if not any(cache.iterdir()):
        subprocess.run([sys.executable, "prepare.py", "--source", "local"], cwd=REPO, env=env, check=True,
                       capture_output=True)  # fmt: skip
    values, steps = [], []
    for k in range(args.runs):
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "train.py"], cwd=REPO, env=env, capture_output=True, text=True)
        summary = parse_summary(proc.stdout)
        if proc.returncode != 0 or not isinstance(summary.get("val_bpb"), float):
            print(f"run {k}: failed (exit {proc.returncode})\n{proc.stdout[-500:]}{proc.stderr[-500:]}")
            continue
        values.append(summary["val_bpb"])
        steps.append(summary.get("num_steps"))
        print(f"run {k}: val_bpb {summary['val_bpb']:.6f}  steps {summary.get('num_steps')}  "
              f"wall {time.monotonic() - started:.1f} s", flush=True)  # fmt: skip
    if len(values) >= 2:
        sigma = statistics.stdev(values)
        print(f"tiny profile: n={len(values)} mean {statistics.mean(values):.6f} sigma {sigma:.6f} "
              f"(2 sigma {2 * sigma:.6f}); steps {min(steps)}..{max(steps)}")  # fmt: skip


if __name__ == "__main__":
    main()
