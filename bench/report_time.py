"""How long `swarm report` takes on a long run's board: 100,000 records (about 33,000 experiments of 8 agents).

    .venv/bin/python bench/report_time.py [--experiments 33000] [--agents 8]

Writes a synthetic board (swarm.testing.synthetic: queued, running and final records of each experiment,
verification reruns, the run record), then runs `swarm report` on it in a new process, as a person would, and
prints its wall time; then, in process, the parts: reading the board's state, the Markdown, the plot. The
synthetic commits are not in any repository, so the lineage shows no train.py diffs (reading them is one
`git show` per lineage step: a few dozen, not a cost that grows with the board).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from swarm.board.checkpoint import open_state  # noqa: E402
from swarm.board.progress import from_experiments  # noqa: E402
from swarm.results.plot import render  # noqa: E402
from swarm.results.report import Report  # noqa: E402
from swarm.testing.synthetic import synthetic_run, write_board  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=33_000)
    parser.add_argument("--agents", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        board = write_board(
            Path(tmp) / "board", synthetic_run(agents=args.agents, experiments=args.experiments)
        )
        lines = board.path.read_bytes().count(b"\n")
        print(
            f"board: {lines:,} records, {board.path.stat().st_size / 1e6:.0f} MB, {args.experiments:,} experiments"
        )
        env = {**os.environ, "SWARM_BOARD": str(board.directory), "OMP_NUM_THREADS": "1"}
        for label in ("no checkpoint yet", "with the checkpoint the first call saved"):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-P", "-m", "swarm", "report", "--out", str(Path(tmp) / "out")],
                cwd=REPO, env=env, check=True, capture_output=True,
            )  # fmt: skip
            print(f"  swarm report, new process, {label}: {time.perf_counter() - started:.2f} s")
        started = time.perf_counter()
        state = open_state(board)
        read = time.perf_counter() - started
        started = time.perf_counter()
        report = Report(state)
        text = report.markdown("progress.png")
        markdown = time.perf_counter() - started
        started = time.perf_counter()
        steps = {key: state.best_steps(key) for key in state.groups}  # as write_report draws it
        render(from_experiments(report.experiments, steps), Path(tmp) / "progress.png", report.bests)
        plot = time.perf_counter() - started
        print(
            f"  in process: board state {read:.2f} s (restored), report text {markdown:.2f} s "
            f"({len(text) / 1e3:.0f} kB), plot {plot:.2f} s"
        )


if __name__ == "__main__":
    main()
