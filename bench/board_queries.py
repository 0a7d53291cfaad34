"""Latency of `swarm best` and `swarm board --top 20` on a board of 100,000 records.

    .venv/bin/python bench/board_queries.py [--records 100000] [--repeats 3]

The board holds experiments as agents produce them: each experiment is a queued, a running and a final
record (every field present), 8 agents, ~10% repeats of a baseline content, notes now and then. Figures:
the CLI as an agent runs it (a new process: interpreter start, full read and fold of the board, query),
the in-process fold, and an incremental refresh after one more record (what a TUI pays per tick).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from swarm.board.experiments import evolve, new_experiment  # noqa: E402
from swarm.board.state import BoardState  # noqa: E402
from swarm.board.store import Board  # noqa: E402


def write_board(directory: Path, records: int) -> None:
    rng = random.Random(0)
    lines = []
    t = 1.7e9
    while len(lines) < records:
        k = len(lines) // 3
        agent = f"gpu{k % 8}"
        sha = "baseline" if rng.random() < 0.1 else f"{rng.getrandbits(64):016x}"
        queued = new_experiment(
            agent=agent, gpu=str(k % 8), device="NVIDIA H100 80GB HBM3", profile="h100", tag="bench",
            branch=f"swarm/bench/{agent}", commit=f"{rng.getrandbits(160):040x}",
            parent=f"{rng.getrandbits(160):040x}", base="f" * 40, train_sha256=sha,
            description="increase MATRIX_LR to 0.05 and shorten warmdown", submitted_at=t,
        )  # fmt: skip
        running = evolve(queued, status="running", started_at=t + 1)
        final = evolve(
            running, status=rng.choice(["keep", "discard", "discard", "marginal", "crash"]),
            val_bpb=round(1.0 - k * 1e-6 + rng.gauss(0, 3e-4), 6), training_seconds=300.1, total_seconds=325.9,
            peak_vram_mb=45060.2, mfu_percent=39.8, total_tokens_M=499.6, num_steps=953, num_params_M=50.3,
            depth=8, prepare_sha256="e" * 64, finished_at=t + 330, log=f"logs/{queued['id']}.log", band=3e-4,
        )  # fmt: skip
        for record in (queued, running, final):
            record["ts"] = t
            lines.append(orjson.dumps(record))
        if k % 50 == 0:
            lines.append(orjson.dumps({"type": "note", "agent": agent, "text": "wider helps", "ts": t}))
        t += 40
    (directory / "board.jsonl").write_bytes(b"\n".join(lines[:records]) + b"\n")


def timed(argv: list[str], env: dict[str, str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "board"
        directory.mkdir()
        write_board(directory, args.records)
        size = (directory / "board.jsonl").stat().st_size
        env = {**os.environ, "SWARM_BOARD": str(directory), "PYTHONPATH": str(REPO)}
        swarm = [sys.executable, "-m", "swarm"]
        print(f"board: {args.records} records, {size / 1e6:.0f} MB")
        base = timed([sys.executable, "-c", "import swarm.cli"], env, args.repeats)
        print(f"  python start + import swarm.cli:  {base * 1000:6.0f} ms")
        for name, argv in (("swarm best", ["best"]), ("swarm board --top 20", ["board", "--top", "20"])):
            print(f"  {name + ':':32} {timed(swarm + argv, env, args.repeats) * 1000:6.0f} ms  (new process)")
        board = Board(directory)
        started = time.perf_counter()
        state = BoardState(board)
        state.refresh()
        fold = time.perf_counter() - started
        started = time.perf_counter()
        bests = state.bests()
        top = state.top(next(iter(state.groups)), 20)
        summaries = state.agent_summaries()
        query = time.perf_counter() - started
        board.append(new_experiment(agent="gpu0", gpu="0", device="NVIDIA H100 80GB HBM3", profile="h100"))
        started = time.perf_counter()
        state.refresh()
        state.bests()
        tick = time.perf_counter() - started
        assert bests and len(top) == 20 and summaries
        print(f"  in process: read + fold {fold * 1000:.0f} ms, best + top 20 + agents {query * 1000:.1f} ms, "
              f"refresh after one append {tick * 1000:.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
