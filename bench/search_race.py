"""Time to target on the tiny profile: the sweep agent vs the optuna agent (TPE) vs random search.

    .venv/bin/python bench/search_race.py [--kinds sweep,optuna,random] [--seeds 1,2,3] [--minutes 10]
                                          [--workers 2] [--cache DIR]

For each kind and seed, a fresh real swarm (`swarm spawn --cpu WORKERS --agent KIND`, the real train.py,
the default `confirm` noise rule) runs for the same wall time; random search is the optuna agent with
`[optuna] sampler = "random"`. The board is then read back: the best confirmed val_bpb (swarm.board.fold's
best: a mean over at least 1 + confirm_runs runs) at each quarter of the wall time, and what early stopping
would have saved on that board (bench/pruning_replay.py: GPU-seconds, and eventual winners it would have
stopped). Racers run one after another, so each has the workers to itself, seed by seed with the kinds
interleaved (sweep 1, optuna 1, random 1, sweep 2, ...), so that a machine whose speed drifts over the hour
does not favour the kind that ran first. The mean row averages the racers that had a confirmed best by
then, and says how many did.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pruning_replay import replay  # noqa: E402
from realswarm import REPO_ROOT, environment, make_project, prepare_cache, spawn, stop  # noqa: E402

from swarm.board.fold import BoardState  # noqa: E402
from swarm.board.store import Board  # noqa: E402
from swarm.runner.pruning import PruningSettings  # noqa: E402
from swarm.target.profiles import time_budget  # noqa: E402

QUARTERS = (0.25, 0.5, 0.75, 1.0)


def config_for(kind: str, seed: int) -> tuple[str, str]:
    """(agent kind to spawn, swarm.toml) for a racer."""
    if kind == "sweep":
        return "sweep", ""
    sampler = "random" if kind == "random" else "tpe"
    return "optuna", f'[optuna]\nsampler = "{sampler}"\nseed = {seed}\n'


def best_over_time(board: Board, started: float, wall_s: float) -> list[float | None]:
    """The best confirmed mean at each quarter of the wall time (None: no confirmed best yet)."""
    state = BoardState(board)
    marks = [started + q * wall_s for q in QUARTERS]
    out: list[float | None] = []
    for record in board.records():
        while marks and (record.get("ts") or 0) > marks[0]:
            out.append(_best(state))
            marks.pop(0)
        state.apply(record)
    while marks:
        out.append(_best(state))
        marks.pop(0)
    return out


def _best(state: BoardState) -> float | None:
    bests = list(state.bests().values())
    return min(b.mean for b in bests) if bests else None


def race(kind: str, seed: int, minutes: float, workers: int, cache: Path) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix=f"race-{kind}-{seed}-"))
    agent, config = config_for(kind, seed)
    repo = make_project(scratch / "project", config=config)
    env = environment(cache, scratch / "tmux")
    tag = f"{kind}{seed}"
    started = time.time()
    spawn(repo, env, workers, agent, tag)
    try:
        time.sleep(minutes * 60)
    finally:
        stop(repo, env, tag)
    board = Board(repo / "board")
    state = BoardState(board)
    state.refresh()
    budget = time_budget((REPO_ROOT / "prepare.py").read_text(), "tiny")
    pruning = replay(board.directory, budget, PruningSettings(enabled=True))
    finished = [e for e in state.experiments.values() if e.get("finished_at")]
    return {
        "kind": kind,
        "seed": seed,
        "curve": best_over_time(board, started, minutes * 60),
        "runs": len(finished),
        "pruning": pruning,
        "board": str(board.directory),
    }


def show(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "   -  "


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default="sweep,optuna,random")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--minutes", type=float, default=10.0, help="wall time of each racer")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", help="tiny data cache (prepared there when missing)")
    args = parser.parse_args()
    cache = Path(args.cache) if args.cache else Path(tempfile.mkdtemp(prefix="race-cache-"))
    prepare_cache(cache)
    quarters = "  ".join(f"{q * args.minutes:>5.1f}m" for q in QUARTERS)
    print(
        f"best confirmed val_bpb at each quarter of {args.minutes:g} min, {args.workers} CPU workers, tiny profile"
    )
    print(f"{'kind':<7} {'seed':>4}  {quarters}  runs  prune: stopped saved_s/spent_s lost_winners")
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for kind in args.kinds.split(","):
            r = race(kind, seed, args.minutes, args.workers, cache)
            results.append(r)
            p = r["pruning"]
            print(
                f"{kind:<7} {seed:>4}  {'  '.join(f'{show(v):>6}' for v in r['curve'])}  {r['runs']:>4}  "
                f"{p['stopped']:>7} {p['saved_s']:>7.0f}/{p['spent_s']:<7.0f} {p['lost_winners']:>3}   {r['board']}",
                flush=True,
            )
    for kind in args.kinds.split(","):
        mine = [r for r in results if r["kind"] == kind]
        means = []
        for i in range(len(QUARTERS)):
            values = [r["curve"][i] for r in mine if r["curve"][i] is not None]
            means.append(f"{show(statistics.mean(values) if values else None)} ({len(values)}/{len(mine)})")
        stopped = sum(r["pruning"]["stopped"] for r in mine)
        saved = sum(r["pruning"]["saved_s"] for r in mine)
        spent = sum(r["pruning"]["spent_s"] for r in mine)
        lost = sum(r["pruning"]["lost_winners"] for r in mine)
        print(
            f"{kind:<7} mean  {'  '.join(means)}  {sum(r['runs'] for r in mine):>4} runs; "
            f"early stop would stop {stopped}, save {saved:.0f} of {spent:.0f} training s, lose {lost} winners"
        )


if __name__ == "__main__":
    main()
