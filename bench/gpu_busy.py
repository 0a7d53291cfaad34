"""GPU busy fraction on 8 fake GPUs: the old per-slot queues against the one scheduler, side by side in one run.

    .venv/bin/python bench/gpu_busy.py [--train-seconds 3] [--experiments 24] [--agents 8,2,1] [--gpus 8]

Each GPU has a real `swarm runner --gpu K` process; trainers are stand-ins that sleep T seconds (no CUDA is
touched: the GPUs are fake). Agents are threads that behave like a researcher submitting waves: think 0.2 T,
then commit and submit until `depth` of their jobs are in flight (depth = ceil(GPUs / agents) + 1), then
take whichever results come and think again. Requests go through each agent's inbox to
the runners, as a sandboxed agent's do.

  per-slot:  as before the scheduler: each agent owns one GPU and its queue (1 agent -> 1 GPU used)
  scheduler: agents own no GPU; every job waits in the class's queue and any free GPU takes the next one

Busy: the time slots held a job (claimed -> recorded, from the board) over GPUs x the window from the first
claim to the last record (steady state: the agents' first thinking pause is not counted); training: the
same with the trainers' own wall time (the rest is the runner's per-run work: snapshot, sandbox, recording). Also printed: submit -> claimed
by a runner (median, p90) and, for a 1-agent wave of 8 on 8 GPUs, its wall time against 8 sequential runs.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from swarm.board.experiments import FINAL_STATUSES  # noqa: E402
from swarm.board.fold import BoardState  # noqa: E402
from swarm.board.run_record import AgentEntry, Worker, write_run_record  # noqa: E402
from swarm.board.slots import box_queue  # noqa: E402
from swarm.runner.inbox import post, wait_answer  # noqa: E402
from tests.support.swarm_run import git, make_run, stand_in_train  # noqa: E402

DEVICE = "Fake GPU"
SINGLE = '[noise]\nrule = "single"\n'


def make(tmp: Path, mode: str, agents: int, gpus: int):
    """A run of `agents` agents on `gpus` fake GPUs, shaped as `mode` has it."""
    names = tuple(f"gpu{i}" for i in range(agents))
    run = make_run(
        tmp, agents=names, profile="tiny", devices={str(i): DEVICE for i in range(gpus)}, config=SINGLE
    )
    if mode == "scheduler":
        slots = tuple(replace(a, queue=box_queue(DEVICE), device=DEVICE) for a in run.run.agents)
        workers = tuple(Worker(f"gpu{i}", str(i), DEVICE) for i in range(gpus))
        run.run = replace(run.run, agents=slots, workers=workers)
        write_run_record(run.board, run.run)
        serving = [str(i) for i in range(gpus)]
    else:  # each agent owns its GPU: only those are served
        serving = [a.queue for a in run.run.agents]
    os.environ["STANDIN_STATE_DIR"] = str(run.state_dir)
    for agent in run.run.agents:  # as `swarm spawn` makes them for a sealed agent
        (run.board.directory / "inbox" / agent.name).mkdir(parents=True, exist_ok=True)
    for slot in serving:
        run.start_runner(slot)
    return run


def commit(worktree: Path, source: str, message: str) -> str:
    """A commit of train.py as a child of HEAD, HEAD moved to it (what an agent's `git commit` does)."""
    (worktree / "train.py").write_text(source)
    git(worktree, "commit", "-q", "-am", message)
    return git(worktree, "rev-parse", "HEAD")


def submit(run, agent: AgentEntry, sha: str, text: str) -> dict:
    return wait_answer(
        post(run.board.directory, agent.name, {"op": "submit", "commit": sha, "description": text})
    )


def wait_final(state: BoardState, eid: str) -> dict:
    while True:
        state.refresh()
        record = state.experiments.get(eid)
        if record and record.get("status") in FINAL_STATUSES:
            return record
        time.sleep(0.02)


def agent_loop(run, agent: AgentEntry, experiments: int, depth: int, train_s: float, submitted: dict) -> None:
    """Think 0.2 T, then submit enough commits (a wave) to have `depth` in flight; wait for any of them."""
    state = BoardState(run.board)
    worktree = Path(agent.worktree)
    in_flight: list[str] = []
    k = 0
    while k < experiments or in_flight:
        if k < experiments and len(in_flight) < depth:
            time.sleep(0.2 * train_s)  # thinking about the next wave
            while k < experiments and len(in_flight) < depth:
                source = stand_in_train(val_bpb=1.0 - k * 1e-4, sleep_s=train_s, marker=f"{agent.name}-{k}")
                record = submit(run, agent, commit(worktree, source, f"{k}"), f"experiment {k}")
                submitted[record["id"]] = time.time()
                in_flight.append(record["id"])
                k += 1
        state.refresh()
        done = [e for e in in_flight if state.experiments[e].get("status") in FINAL_STATUSES]
        in_flight = [e for e in in_flight if e not in done]
        if not done:
            time.sleep(0.02)


def occupied(state: BoardState) -> tuple[list[tuple[str, float, float]], float]:
    """(slot, claimed, recorded) of every run the runners made, and the trainers' summed wall time."""
    spans, training = [], 0.0
    for record in state.experiments.values():
        if (
            record.get("status") in FINAL_STATUSES
            and record.get("started_at")
            and not record.get("reused_from")
        ):
            spans.append((str(record["gpu"]), record["started_at"], record["finished_at"]))
            training += record.get("wall_seconds") or 0.0
    return spans, training


def simulate(mode: str, agents: int, gpus: int, experiments: int, train_s: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        run = make(Path(tmp), mode, agents, gpus)
        submitted: dict[str, float] = {}
        depth = math.ceil(gpus / agents) + 1
        per_agent = max(1, experiments // agents)
        try:
            threads = [
                threading.Thread(target=agent_loop, args=(run, a, per_agent, depth, train_s, submitted))
                for a in run.run.agents
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            run.stop_runners()
        state = BoardState(run.board)
        state.refresh()
        spans, training = occupied(state)
        window = max(end for _, _, end in spans) - min(start for _, start, _ in spans)
        latency = sorted(
            state.experiments[e]["started_at"] - t
            for e, t in submitted.items()
            if state.experiments[e].get("started_at") and not state.experiments[e].get("reused_from")
        )
        return {
            "busy": sum(end - start for _, start, end in spans) / (gpus * window),
            "training": training / (gpus * window),
            "runs": len(spans),
            "window": window,
            "latency_p50": statistics.median(latency) if latency else float("nan"),
            "latency_p90": latency[int(0.9 * (len(latency) - 1))] if latency else float("nan"),
        }


def wave(gpus: int, train_s: float) -> tuple[float, float]:
    """Wall time of one agent's wave of `gpus` jobs on `gpus` GPUs, and of the same jobs one at a time."""
    with tempfile.TemporaryDirectory() as tmp:
        run = make(Path(tmp), "scheduler", 1, gpus)
        agent = run.run.agents[0]
        state = BoardState(run.board)
        worktree = Path(agent.worktree)
        try:
            shas = [
                commit(
                    worktree, stand_in_train(val_bpb=1.0 + k * 1e-4, sleep_s=train_s, marker=f"w{k}"), f"w{k}"
                )
                for k in range(2 * gpus)
            ]
            started = time.time()
            ids = [submit(run, agent, sha, f"wave {k}")["id"] for k, sha in enumerate(shas[:gpus])]
            for eid in ids:
                wait_final(state, eid)
            in_wave = time.time() - started
            started = time.time()
            for k, sha in enumerate(shas[gpus:]):
                wait_final(state, submit(run, agent, sha, f"one {k}")["id"])
            sequential = time.time() - started
        finally:
            run.stop_runners()
        return in_wave, sequential


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-seconds", type=float, default=3.0)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--experiments", type=int, default=24, help="in all, split over the agents")
    parser.add_argument("--agents", default="8,2,1", help="agent counts to compare (comma separated)")
    parser.add_argument("--no-wave", action="store_true", help="skip the 1-agent wave figure")
    args = parser.parse_args()
    print(
        f"{args.gpus} fake GPUs, stand-in trainers T={args.train_seconds:g} s, agents think 0.2 T and keep "
        f"ceil(GPUs/agents)+1 jobs in flight; {args.experiments} experiments per case; load: "
        f"{os.getloadavg()[0]:.1f} (1-min load average of this machine)",
        flush=True,
    )
    for agents in (int(a) for a in args.agents.split(",")):
        for mode in ("per-slot", "scheduler"):
            f = simulate(mode, agents, args.gpus, args.experiments, args.train_seconds)
            print(
                f"{agents:2d} agent(s), {mode:9}: {100 * f['busy']:5.1f}% busy, {100 * f['training']:5.1f}% "
                f"training ({f['runs']} runs in "
                f"{f['window']:.1f} s), submit -> claimed p50 {1000 * f['latency_p50']:.0f} ms "
                f"p90 {1000 * f['latency_p90']:.0f} ms",
                flush=True,
            )
    if not args.no_wave:
        in_wave, sequential = wave(args.gpus, args.train_seconds)
        print(
            f"1 agent, wave of {args.gpus} on {args.gpus} GPUs: {in_wave:.1f} s; the same {args.gpus} one at a "
            f"time: {sequential:.1f} s ({sequential / in_wave:.1f}x faster; ideal {args.gpus}x)",
            flush=True,
        )


if __name__ == "__main__":
    main()
