"""Board appends per second with many concurrent writer processes (each append: lock, one write, fsync).

    .venv/bin/python bench/board_appends.py [--writers 64] [--records 50]

Each writer appends experiment-sized records (~1 KB, every field present) as fast as it can; the figure
is all records over the wall time from the first to the last append, and the board is checked after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from swarm.board.store import Board  # noqa: E402

WRITER = textwrap.dedent(
    """\
    import sys, time
    from swarm.board.store import Board
    from swarm.board.experiments import new_experiment
    board = Board(sys.argv[1])
    n = int(sys.argv[2])
    while time.time() < float(sys.argv[3]):  # start together
        time.sleep(0.001)
    first = time.time()
    for k in range(n):
        board.append(new_experiment(agent="gpu" + sys.argv[4], gpu=sys.argv[4], device="NVIDIA H100 80GB HBM3",
            profile="h100", description="a typical one-line description of an experiment", status="keep",
            commit="0" * 40, parent="1" * 40, base="2" * 40, val_bpb=0.99, train_sha256="3" * 64,
            prepare_sha256="4" * 64, training_seconds=300.1, num_steps=953))
    print(first, time.time())
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=64)
    parser.add_argument("--records", type=int, default=50, help="records per writer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        board = Board(Path(tmp) / "board").create()
        start_at = time.time() + 2.0 + args.writers * 0.03  # after every interpreter has started
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    WRITER,
                    str(board.directory),
                    str(args.records),
                    str(start_at),
                    str(i),
                ],
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            for i in range(args.writers)
        ]
        spans = [tuple(map(float, p.communicate()[0].split())) for p in procs]
        first, last = min(s[0] for s in spans), max(s[1] for s in spans)
        total = args.writers * args.records
        records = board.records()
        assert len(records) == total, f"{len(records)} records on the board, expected {total}"
        size = len(json.dumps(records[0]))
        print(
            f"board appends: {total / (last - first):.0f} appends/s with {args.writers} concurrent writers "
            f"({total} records of ~{size} bytes in {last - first:.2f} s, each fsynced under the lock)"
        )


if __name__ == "__main__":
    main()
