"""What the evaluator's causality check costs: counted for every profile, measured on the tiny profile.

    .venv/bin/python bench/causality_cost.py [--cache DIR] [--runs 1] [--mirror]

Counted: a profile's evaluation rows (eval_tokens / max_seq_len) in batches of its eval_batch_size are the
evaluation's forwards; the check adds one forward per cut batch (CAUSALITY_ROWS rows in whole batches) and
the comparison of two logit tensors per cut batch, so its share of the evaluation time is about the ratio
of forwards. Measured: train.py's tiny-profile model (untrained weights, moved off zero), evaluated by the
evaluator's own functions on this machine's CPU, with the check and with CAUSALITY_ROWS = 0; with --mirror
compiled under bf16 autocast as on CUDA (the first call compiles: excluded by a warm-up evaluation).
Without --cache a tiny cache is prepared in a temporary directory first (not timed).
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

from swarm.runner import evaluator  # noqa: E402
from swarm.target.profiles import read_profiles  # noqa: E402


def counted() -> None:
    for name, profile in read_profiles((REPO / "prepare.py").read_text()).items():
        rows = profile["eval_tokens"] // profile["max_seq_len"]
        batch = profile["eval_batch_size"]
        forwards = -(-rows // batch)
        cut = -(-evaluator.CAUSALITY_ROWS // batch)
        print(
            f"{name:>5}: {rows} rows in {forwards} forwards of {batch}; the check cuts {cut * batch} rows in "
            f"{cut} more forwards: +{100 * cut / forwards:.1f}% forwards "
            f"(a peek at 1 position in 64 passes with p <= {(1 - 1 / 64) ** (cut * batch):.1e})"
        )


def measured(cache: Path, runs: int, mirror: bool) -> None:
    import numpy as np
    import torch

    os.environ.update(AUTORESEARCH_PROFILE="tiny", AUTORESEARCH_CACHE_DIR=str(cache))
    sys.path.insert(0, str(REPO))
    import prepare
    import train

    torch.manual_seed(0)
    width = -(-train.DEPTH * train.ASPECT_RATIO // train.HEAD_DIM) * train.HEAD_DIM
    config = train.GPTConfig(
        prepare.MAX_SEQ_LEN, prepare.VOCAB_SIZE, train.DEPTH, width // train.HEAD_DIM, width,
        train.WINDOW_PATTERN, train.SHORT_WINDOW,
    )  # fmt: skip
    model = train.GPT(config)
    model.init_weights()
    model.prepare_attention("cpu", use_flex=False)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    with tempfile.TemporaryDirectory() as tmp:
        prepare.export_model(model, path=Path(tmp) / "model.pt2")
        data = (Path(tmp) / "model.pt2").read_bytes()
    rows = np.load(cache / "eval" / "val_tokens.npy")
    token_bytes = np.load(cache / "eval" / "token_bytes.npy")
    program = evaluator.load_model(data, prepare.MAX_SEQ_LEN, prepare.EVAL_BATCH_SIZE)
    forward = evaluator.Forward(program, torch.device("cpu"), compiled=mirror)
    tensors = (torch.from_numpy(rows.astype(np.int64)), torch.from_numpy(token_bytes.astype(np.int64)))

    def once(check_rows: int) -> float:
        evaluator.CAUSALITY_ROWS = check_rows
        started = time.perf_counter()
        evaluator.bits_per_byte(forward, *tensors, torch.Generator().manual_seed(1))
        return time.perf_counter() - started

    full = evaluator.CAUSALITY_ROWS
    once(0)  # warm-up (with --mirror: the compile)
    without = statistics.median(once(0) for _ in range(runs))
    with_check = statistics.median(once(full) for _ in range(runs))
    mode = "compiled, bf16 autocast" if mirror else "eager fp32"
    print(
        f" tiny, measured on this CPU ({mode}, {torch.get_num_threads()} threads, median of {runs}): "
        f"evaluation {without:.2f} s without the check, {with_check:.2f} s with it "
        f"(+{100 * (with_check / without - 1):.0f}%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="a prepared tiny-profile cache (default: prepare one)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--mirror", action="store_true", help="compiled under bf16 autocast, as on CUDA")
    args = parser.parse_args()
    counted()
    if args.cache is not None:
        measured(args.cache, args.runs, args.mirror)
        return
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "AUTORESEARCH_PROFILE": "tiny", "AUTORESEARCH_CACHE_DIR": tmp}
        subprocess.run(
            [sys.executable, str(REPO / "prepare.py"), "--source", "local"], env=env, check=True,
            capture_output=True,
        )  # fmt: skip
        measured(Path(tmp), args.runs, args.mirror)


if __name__ == "__main__":
    main()
