"""What signed board lines cost a reader: folding the same synthetic board unsigned, signed and read
with its key (every line's HMAC checked), and signed but read without the key (an agent's view).

    .venv/bin/python bench/board_signing.py [--experiments 33000] [--repeats 3]

33,000 experiments are about 100,000 records (queued, running, final). Figures: the best of `--repeats`
full folds (BoardState.refresh from an empty state) of each board.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from swarm.board.fold import BoardState  # noqa: E402
from swarm.board.signing import create_key, key_path  # noqa: E402
from swarm.board.store import Board  # noqa: E402
from swarm.testing.synthetic import synthetic_run, write_board  # noqa: E402


def fold_seconds(board_dir: Path, repeats: int) -> tuple[float, int, int]:
    best, records, forged = float("inf"), 0, 0
    for _ in range(repeats):
        state = BoardState(Board(board_dir))
        start = time.perf_counter()
        state.refresh()
        best = min(best, time.perf_counter() - start)
        records, forged = state.records_read, state.forged
    return best, records, forged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=33_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain, signed = Path(tmp) / "plain", Path(tmp) / "signed"
        write_board(plain, synthetic_run(experiments=args.experiments))
        signed.mkdir()
        create_key(signed)
        write_board(signed, synthetic_run(experiments=args.experiments))
        size = (signed / "board.jsonl").stat().st_size / (plain / "board.jsonl").stat().st_size - 1
        rows = [("unsigned board", plain), ("signed, with the key", signed)]
        for name, directory in rows:
            seconds, records, forged = fold_seconds(directory, args.repeats)
            print(f"{name + ':':28} fold {seconds:6.3f} s  ({records:,} records, {forged} forged)")
        key_path(signed).rename(Path(tmp) / "away.key")
        seconds, records, _ = fold_seconds(signed, args.repeats)
        print(f"{'signed, without the key:':28} fold {seconds:6.3f} s  ({records:,} records)")
        print(f"signed lines are {size:.1%} larger")


if __name__ == "__main__":
    main()
