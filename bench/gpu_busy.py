"""GPU busy fraction in a simulated run: synchronous `swarm run` vs queue-ahead with `swarm submit`.

    .venv/bin/python bench/gpu_busy.py [--train-seconds 2] [--agents 2] [--experiments 6]

Each agent has its own slot and runner (`swarm runner --gpu K` processes), and a stand-in trainer that
takes T seconds. An agent "thinks" 0.2 T before each experiment (edits, commits), then:
  sync:        `swarm run` (blocks until the result), think again, ...
  queue-ahead: `swarm submit` the next experiment, then `swarm wait` for the previous one, so the next job
               is already queued when the current one ends.
Agents call the real CLI as subprocesses (an agent pays interpreter start-up like a real one). The busy
fraction is the trainers' time over slots x wall time, from the agents' start to the last result, and from
the first trainer start to the last trainer end (the steady state, without the first thinking pause).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.swarm_run import commit_train, make_run, stand_in_train  # noqa: E402


def swarm(run, agent: str, *argv: str) -> str:
    env = {**os.environ, **run.agent_environ(agent), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "swarm", *argv],
        cwd=run.worktree(agent),
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return proc.stdout.strip()


def agent_loop(run, agent: str, mode: str, experiments: int, train_s: float) -> None:
    worktree = run.worktree(agent)
    previous = None
    for k in range(experiments):
        time.sleep(0.2 * train_s)  # thinking
        commit_train(
            worktree, stand_in_train(val_bpb=1.0 - k * 1e-3, sleep_s=train_s, marker=f"{agent}-{k}"), f"{k}"
        )
        if mode == "sync":
            swarm(run, agent, "run", "-m", f"experiment {k}")
        else:
            eid = swarm(run, agent, "submit", "-m", f"experiment {k}")
            if previous:
                swarm(run, agent, "wait", previous)
            previous = eid
    if previous:
        swarm(run, agent, "wait", previous)


def simulate(mode: str, agents: int, experiments: int, train_s: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        names = tuple(f"gpu{i}" for i in range(agents))
        run = make_run(Path(tmp), agents=names, profile="tiny")
        os.environ["STANDIN_STATE_DIR"] = str(run.state_dir)
        for name in names:
            run.start_runner(name.removeprefix("gpu"))
        try:
            started = time.time()
            threads = [
                threading.Thread(target=agent_loop, args=(run, name, mode, experiments, train_s))
                for name in names
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            finished = time.time()
        finally:
            run.stop_runners()
        busy = 0.0
        open_starts, stamps = {}, []
        for kind, stamp, pid, *_ in run.events():
            stamps.append(float(stamp))
            if kind == "start":
                open_starts[pid] = float(stamp)
            else:
                busy += float(stamp) - open_starts.pop(pid)
        # whole run (the agents' first thinking included), and steady state (first trainer start to last end)
        return busy / (agents * (finished - started)), busy / (agents * (max(stamps) - min(stamps)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-seconds", type=float, default=2.0)
    parser.add_argument("--agents", type=int, default=2)
    parser.add_argument("--experiments", type=int, default=6, help="per agent")
    args = parser.parse_args()
    for mode in ("sync", "queue-ahead"):
        whole, steady = simulate(mode, args.agents, args.experiments, args.train_seconds)
        print(
            f"GPU busy fraction, {mode:11}: {whole * 100:5.1f}% of the run, {steady * 100:5.1f}% from first start "
            f"to last end  (T={args.train_seconds:g} s, think 0.2 T, {args.agents} agents x {args.experiments})",
            flush=True,
        )


if __name__ == "__main__":
    main()
