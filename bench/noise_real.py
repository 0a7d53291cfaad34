"""Decisions with the real tiny trainer on busy CPU workers: changes that do nothing, and one real gain.

    .venv/bin/python bench/noise_real.py [--workers 2] [--nulls 20] [--cache DIR] [--keep-dir]

A real swarm (`swarm spawn --cpu N`, runners training the real train.py on the tiny profile) whose agents
are idle placeholders: the bench submits from their worktrees. First each agent's baseline (the class is
calibrated: with fewer than three workers the runner reruns a baseline), then `--nulls` changes that do
nothing (a comment line each, so each is a new train.py), then one change with a known real effect: the
base is handicapped (the tiny profile's MATRIX_LR and EMBEDDING_LR divided by `--handicap`, 100: divided
by 10 the gain was about one sigma of this box's noise, too small to call "known") and the change puts them
back; it is submitted right after the baselines, so that it is measured under the same machine load. The
swarm runs under the default rule (`confirm`, paired), which queues its own confirmation reruns, each beside
a control run of the reference; the reruns asked for count both.

Printed: for the null changes, the keeps (goal 0) and the reruns asked for, under the `confirm` rule as it
ran, next to what the `single` rule (the rule before issue 14) would have decided on the same first runs
(a replay of the board through the real decision code: its keeps, and its marginals, each of which asks the
agent for a rerun); for the real change, its final status under both (goal: keep).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from realswarm import (  # noqa: E402
    REPO_ROOT,
    commit_and_submit,
    environment,
    make_project,
    prepare_cache,
    spawn,
    stop,
    wait_idle,
)

from swarm.board.experiments import KEEP, MARGINAL, PROMISING  # noqa: E402
from swarm.board.fold import BoardState  # noqa: E402
from swarm.board.noise import NoiseSettings  # noqa: E402
from swarm.board.store import Board  # noqa: E402

TAG = "noise"
IDLE = '[agents.commands]\nidle = ["sleep", "1000000"]\n'


def handicapped(train: str, factor: float) -> tuple[str, str]:
    """(base train.py with the tiny profile's MATRIX_LR and EMBEDDING_LR / factor, the change restoring them)."""
    base = train
    for name in ("MATRIX_LR", "EMBEDDING_LR"):
        match = re.search(rf"^    {name} = ([0-9.]+)$", train, re.MULTILINE)
        if match is None:
            raise SystemExit(f"train.py has no tiny {name} override to handicap")
        bad = f"    {name} = {float(match.group(1)) / factor:g}  # handicapped by bench/noise_real.py"
        base = base.replace(match.group(0), bad)
    return base, train


def replay_single(board: Board, first_ids: set[str]) -> dict[str, str]:
    """What the `single` rule decides for each first run, folding the board in order through the real
    decision code; the confirmation reruns and verdicts the `confirm` rule added are left out."""
    state = BoardState(board, NoiseSettings(rule="single"))
    decided: dict[str, str] = {}
    for record in board.records():
        eid = record.get("id")
        if record.get("type") == "experiment":
            if record.get("verify_of") in first_ids or eid in decided:
                continue
            if eid in first_ids and record.get("status") in (PROMISING, KEEP, MARGINAL, "discard"):
                decided[eid] = state.decide(record, final=False)[0]
                record = {**record, "status": decided[eid]}  # as the single rule would have recorded it
        state.apply(record)
    return decided


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--nulls", type=int, default=20)
    parser.add_argument("--cache", help="tiny data cache (prepared there when missing)")
    parser.add_argument(
        "--handicap",
        type=float,
        default=100.0,
        help="the base's learning rates are divided by this (default 100)",
    )
    parser.add_argument("--keep-dir", action="store_true", help="leave the scratch project for inspection")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="noise-real-"))
    cache = Path(args.cache) if args.cache else scratch / "cache"
    prepare_cache(cache)
    env = environment(cache, scratch / "tmux")
    base, restored = handicapped((REPO_ROOT / "train.py").read_text(), args.handicap)
    repo = make_project(scratch / "project", config=IDLE, train=base)
    started = time.monotonic()
    agents = [f"cpu{k}" for k in range(args.workers)]
    spawn(repo, env, args.workers, "idle", TAG)
    try:
        baselines = [commit_and_submit(repo, env, TAG, a, base + "\n", "baseline") for a in agents]
        # early in the queue: measured in the same stretch of machine load as the baselines
        real = commit_and_submit(
            repo, env, TAG, agents[0], restored, "restore the learning rates (a real gain)"
        )
        nulls = [
            commit_and_submit(
                repo, env, TAG, agents[k % len(agents)], base + f"\n# null change {k}\n", f"null {k}"
            )
            for k in range(args.nulls)
        ]
        state = wait_idle(repo)
    finally:
        stop(repo, env, TAG)
    board = Board(repo / "board")
    e = state.experiments
    reruns = [x for x in e.values() if x.get("verify_of")]
    confirm_reruns = [x for x in reruns if x.get("verify_of") in nulls]
    single = replay_single(board, set(nulls) | {real})
    null_status = [e[i]["status"] for i in nulls]  # crash / invalid ones too (a loaded machine overruns)
    group = next(iter(state.groups.values()))
    print(
        f"{args.workers} CPU workers, {args.nulls} null changes, tiny profile, {time.monotonic() - started:.0f} s"
    )
    print(
        f"pooled sigma {group.pooled_sigma:.4f} from {group.repeats} degrees of freedom; baselines {baselines}"
    )
    print(f"{'rule':<8} | {'null keeps':>10} | {'reruns asked':>12} | real change")
    print(
        f"{'single':<8} | {sum(single.get(i) == KEEP for i in nulls):>10} | "
        f"{sum(single.get(i) == MARGINAL for i in nulls):>12} | {single.get(real)} (one run)"
    )
    print(
        f"{'paired':<8} | {null_status.count(KEEP):>10} | {len(confirm_reruns):>12} | {e[real]['status']} "
        f"({e[real].get('reason')})"
    )
    print(f"confirm: null statuses {dict((s, null_status.count(s)) for s in sorted(set(null_status)))}; "
          f"all reruns {len(reruns)} (calibration {sum(x.get('requested_by') == 'calibration' for x in reruns)})")  # fmt: skip
    if args.keep_dir:
        print(f"project kept at {repo}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
