"""What early stopping would have saved on a real board, and which eventual winners it would have stopped.

    .venv/bin/python bench/pruning_replay.py BOARD_DIR [--budget 15] [--margin 0.05] [--min-fraction 0.3]

Folds the board in order through the real code: before each first run (not a rerun) lands, the reference
curve is what swarm.runner.pruning would have used at that moment (the group's confirmed best, trusted
curves only), and the run's own logged curve is fed to a Monitor point by point. A run the Monitor stops
counts its unspent budget as saved; it is a lost winner when it ended `keep` (or was a `promising` first run
confirmed to keep), or became the group's best. search_race.py calls `replay` on each board it makes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from swarm.board.experiments import (  # noqa: E402
    KEEP,
    group_of,  # noqa: E402
    is_measured,
)
from swarm.board.fold import BoardState  # noqa: E402
from swarm.board.store import Board  # noqa: E402
from swarm.runner.pruning import CurveCache, Monitor, PruningSettings, reference_curve  # noqa: E402


def replay(board_dir: Path, budget_s: float, settings: PruningSettings) -> dict[str, float]:
    board = Board(Path(board_dir))
    state = BoardState(board)
    curves = CurveCache(board.directory)
    stopped: dict[str, float] = {}  # id -> fraction of the budget when it would have been stopped
    runs = 0
    for record in board.records():
        if record.get("type") == "experiment" and is_measured(record) and not record.get("verify_of"):
            eid = record["id"]
            if eid not in stopped and state.experiments.get(eid, {}).get("status") in ("queued", "running"):
                runs += 1
                reference = reference_curve(state, group_of(record), curves, settings)
                if reference:
                    monitor = Monitor(board.directory / "none", reference, settings)
                    for fraction, loss in curves.of(record):
                        if monitor.observe(fraction, loss):
                            stopped[eid] = fraction
                            break
        state.apply(record)
    bests = {b.train_sha256 for b in state.bests().values()}
    lost = [
        eid
        for eid in stopped
        if state.experiments[eid].get("status") == KEEP or state.experiments[eid].get("train_sha256") in bests
    ]
    return {
        "runs": runs,
        "stopped": len(stopped),
        "saved_s": sum(budget_s * (1 - f) for f in stopped.values()),
        "spent_s": runs * budget_s,
        "lost_winners": len(lost),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("board")
    parser.add_argument("--budget", type=float, default=15.0, help="the profile's training budget, seconds")
    parser.add_argument("--margin", type=float, default=PruningSettings.margin)
    parser.add_argument("--min-fraction", type=float, default=PruningSettings.min_fraction)
    args = parser.parse_args()
    settings = PruningSettings(enabled=True, margin=args.margin, min_fraction=args.min_fraction)
    out = replay(Path(args.board), args.budget, settings)
    print(
        f"{out['runs']} first runs; would stop {out['stopped']}, saving {out['saved_s']:.0f} of "
        f"{out['spent_s']:.0f} training seconds; eventual winners stopped: {out['lost_winners']}"
    )


if __name__ == "__main__":
    main()
