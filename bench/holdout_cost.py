"""What measuring the holdout adds to a run's evaluation: the h100 estimate, and a measurement on this CPU.

    .venv/bin/python bench/holdout_cost.py [--repeats 3]

The estimate counts forward passes of the evaluator's batch (the profile's eval_batch_size): it runs
eval_tokens / seq_len rows plus its causality check's rows for val_bpb, then the same compiled program on
holdout_tokens / seq_len rows (no second causality check) for holdout_bpb; loading and compiling the program happen once, so the added share of the wall time is at most
the added share of forward passes. The measurement times both calls of the evaluator's function on the tiny
profile (a temporary cache, prepared first and not timed) for a small causal model exported as train.py
hands its model over.
"""

from __future__ import annotations

import argparse
import ast
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from swarm.runner import evaluator  # noqa: E402


def profiles() -> dict:
    tree = ast.parse((REPO / "prepare.py").read_text())
    node = next(
        n for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "PROFILES"
    )
    return ast.literal_eval(node.value)


def estimate() -> None:
    for name, p in profiles().items():
        batch = p["eval_batch_size"]
        rows, held = p["eval_tokens"] // p["max_seq_len"], p.get("holdout_tokens", 0) // p["max_seq_len"]
        check = -(-evaluator.CAUSALITY_ROWS // batch)
        passes, extra = -(-rows // batch) + check, -(-held // batch)
        print(
            f"{name:5}  batch {batch:4}: val {rows} rows + causality = {passes} passes, holdout {held} rows = "
            f"{extra} passes: +{100 * extra / passes:.1f}% of the evaluation's forward passes"
        )


def measure(repeats: int) -> None:
    import numpy as np
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "AUTORESEARCH_PROFILE": "tiny", "AUTORESEARCH_CACHE_DIR": tmp}
        subprocess.run(
            [sys.executable, str(REPO / "prepare.py"), "--source", "local"],
            env=env,
            check=True,
            capture_output=True,
        )
        os.environ.update(AUTORESEARCH_PROFILE="tiny", AUTORESEARCH_CACHE_DIR=tmp)
        import prepare

        class Small(torch.nn.Module):  # embedding, one causal convolution, a head: cost per row is fixed
            def __init__(self):
                super().__init__()
                self.embed = torch.nn.Embedding(prepare.VOCAB_SIZE, 64)
                self.mix = torch.nn.Conv1d(64, 64, 4)
                self.head = torch.nn.Linear(64, prepare.VOCAB_SIZE)

            def forward(self, idx):
                h = self.embed(idx).transpose(1, 2)
                h = self.mix(torch.nn.functional.pad(h, (3, 0))).transpose(1, 2)
                return self.head(torch.relu(h))

        model = Path(tmp) / "model.pt2"
        prepare.export_model(Small(), prepare.EVAL_BATCH_SIZE, model)
        program = evaluator.load_model(model.read_bytes(), prepare.MAX_SEQ_LEN, prepare.EVAL_BATCH_SIZE)
        forward = evaluator.Forward(program, torch.device("cpu"), compiled=False)
        rows = np.load(Path(tmp) / "eval" / "val_tokens.npy")
        holdout = np.load(Path(tmp) / "eval" / "holdout_tokens.npy")
        token_bytes = np.load(Path(tmp) / "eval" / "token_bytes.npy")
        val_s, held_s = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            evaluator.evaluate_program(forward, rows, token_bytes)
            val_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            evaluator.evaluate_program(forward, holdout, token_bytes, seed=1, check=False)
            held_s.append(time.perf_counter() - started)
        v, h = statistics.median(val_s), statistics.median(held_s)
        print(
            f"tiny on this CPU (batch {prepare.EVAL_BATCH_SIZE}, {len(rows)} + {len(holdout)} rows, median of {repeats}): "
            f"val {v:.2f} s, holdout {h:.2f} s (+{100 * h / v:.0f}%; the tiny profile measures half as many "
            "holdout rows as val rows, since its cost is not bounded)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    estimate()
    measure(args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
