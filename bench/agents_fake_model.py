"""End-to-end time per experiment of each agent kind against the scripted fake model server, and the
model tokens each kind spends per experiment (the API agent's are the figure the issue asks for).

    .venv/bin/python bench/agents_fake_model.py                        # every kind, real tiny train.py
    .venv/bin/python bench/agents_fake_model.py --trainer standin      # agent + swarm time only (seconds)
    .venv/bin/python bench/agents_fake_model.py --kinds api-anthropic,claude

Kinds: api-anthropic, api-openai (Responses API), api-chat (openai-compatible, Chat Completions), claude
(Claude Code) and codex (Codex CLI). An API agent runs as `swarm agent api` in a real run with a real runner
and does its scripted two experiments (the baseline, then one change, then acts on the status); Claude
Code and Codex each run one experiment through `swarm spawn --cpu 1 --kind KIND` (coordinator, tmux,
runner). One kind at a time, one training thread (OMP_NUM_THREADS=1, as in the tests), in temporary
directories. Per experiment: wall time from starting the agent (or `swarm spawn`) to its last result on
the board, the part the trainer took (the runner's wall_seconds), the rest (agent start, model calls,
tools, git, the swarm's queueing), model requests, and tokens as the fake server counts them (about 4
characters a token of what each request really carries, so they scale with each agent's real context).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_train import default_cache_dir, ensure_data  # noqa: E402

from swarm.board.experiments import FINAL_STATUSES  # noqa: E402
from swarm.board.ledger import totals_by_agent  # noqa: E402
from swarm.board.store import Board  # noqa: E402
from swarm.testing.fake_model import FakeModelServer  # noqa: E402
from tests.support.agent_scripts import (  # noqa: E402
    PREPARE,
    TRAIN,
    cli,
    learning_rate_edit,
    research_script,
    spawned_swarm,
    start_api_agent,
)
from tests.support.swarm_run import STAND_IN_PREPARE, make_run, stand_in_train, wait_until  # noqa: E402

API_KINDS = {"api-anthropic": "anthropic", "api-openai": "openai", "api-chat": "openai-compatible"}
KINDS = (*API_KINDS, "claude", "codex")


def trainer_files(trainer: str) -> tuple[str, str, tuple[str, str]]:
    """(train.py, prepare.py, the scripted edit) for the real tiny train.py or a stand-in."""
    if trainer == "real":
        return TRAIN, PREPARE, learning_rate_edit(TRAIN)
    return stand_in_train(val_bpb=1.0), STAND_IN_PREPARE, ("VAL_BPB = 1.0", "VAL_BPB = 0.9")


def finished(board: Board) -> list[dict]:
    latest = {r["id"]: r for r in board.records() if r["type"] == "experiment"}
    return sorted(
        (e for e in latest.values() if e["status"] in FINAL_STATUSES), key=lambda e: e["finished_at"]
    )


def measure_api(kind: str, trainer: str, tmp: Path) -> dict:
    train, prepare, edit = trainer_files(trainer)
    run = make_run(tmp, agents=("cpu0",), train=train, prepare=prepare)
    os.environ["STANDIN_STATE_DIR"] = str(run.state_dir)
    run.start_runner("cpu0")
    try:
        with FakeModelServer(research_script(*edit)) as server:
            started = time.time()
            proc = start_api_agent(run, "cpu0", API_KINDS[kind], server)
            output, _ = proc.communicate(timeout=600)
            if proc.returncode != 0:
                raise SystemExit(f"{kind}: the agent failed (exit {proc.returncode}):\n{output[-3000:]}")
    finally:
        run.stop_runners()
        os.environ.pop("STANDIN_STATE_DIR")  # the directory goes with this kind's temporary directory
    return summarise(run.board, started, kind)


def measure_cli(kind: str, trainer: str, tmp: Path, cache: Path) -> dict:
    cli(kind)
    train, prepare, edit = trainer_files(trainer)
    started = time.time()
    with spawned_swarm(tmp, kind, cache, train=train, prepare=prepare, edit=edit) as (repo, _server):
        board = Board(repo / "board")
        usage = lambda: [r for r in board.records() if r["type"] == "usage"]  # noqa: E731
        wait_until(lambda: finished(board) and usage(), timeout=600, interval=0.2)
    return summarise(board, started, kind, first_session_only=True)


def summarise(board: Board, started: float, kind: str, first_session_only: bool = False) -> dict:
    experiments = finished(board)
    records = board.records()
    usage = [r for r in records if r["type"] == "usage"]
    if first_session_only:  # the coordinator resumes a CLI after its session; count the scripted one
        usage = usage[:1]
    totals = totals_by_agent(usage).get("cpu0")
    n = len(experiments)
    wall = experiments[-1]["finished_at"] - started
    training = sum(e["wall_seconds"] or 0.0 for e in experiments)
    return {
        "kind": kind,
        "experiments": n,
        "wall": wall / n,
        "training": training / n,
        "rest": (wall - training) / n,
        "requests": (totals.requests / n) if totals and totals.requests else None,
        "tokens": totals.tokens / n if totals else 0,
        "input": totals.input_tokens / n if totals else 0,
        "output": totals.output_tokens / n if totals else 0,
        "statuses": ",".join(e["status"] for e in experiments),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of: {', '.join(KINDS)}")
    parser.add_argument("--trainer", choices=("real", "standin"), default="real")
    args = parser.parse_args()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        parser.error(f"unknown kind {unknown[0]!r}")
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["AUTORESEARCH_PROFILE"] = "tiny"  # for ensure_data only; the runner sets it for train.py
    cache = default_cache_dir("tiny")
    if args.trainer == "real":
        ensure_data(dict(os.environ), cache)
    os.environ.pop("AUTORESEARCH_PROFILE")
    os.environ["AUTORESEARCH_CACHE_DIR"] = str(cache)
    for name in ("SWARM_BOARD", "SWARM_TAG", "SWARM_AGENT", "SWARM_GPU", "TMUX"):
        os.environ.pop(name, None)
    print(f"trainer: {args.trainer} (tiny profile, CPU, 1 thread); one kind at a time", flush=True)
    print(
        f"{'kind':<14}{'exps':>5}{'wall/exp':>10}{'train/exp':>11}{'rest/exp':>10}{'req/exp':>9}"
        f"{'tokens/exp':>12}{'in/exp':>10}{'out/exp':>9}  statuses",
        flush=True,
    )
    for kind in kinds:
        with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp:
            if kind in API_KINDS:
                row = measure_api(kind, args.trainer, Path(tmp))
            else:
                row = measure_cli(kind, args.trainer, Path(tmp), cache)
        requests = f"{row['requests']:.1f}" if row["requests"] else "-"
        print(
            f"{row['kind']:<14}{row['experiments']:>5}{row['wall']:>9.1f}s{row['training']:>10.1f}s"
            f"{row['rest']:>9.1f}s{requests:>9}{row['tokens']:>12,.0f}{row['input']:>10,.0f}{row['output']:>9,.0f}"
            f"  {row['statuses']}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
