"""Dispatch overhead per experiment, the local runner against the Ray runner, and the head's cost per record.

    .venv/bin/python bench/ray_dispatch.py [--experiments 15]

Runs itself inside a private network namespace (`unshare --net`, loopback only), as the Ray tests do.
The same stand-in train.py (exits at once, logging its start and end times) is trained, one experiment at
a time, by
  local: `swarm runner --gpu 0`, the one-box runner;
  ray:   `swarm runner --ray ADDRESS` on a local Ray cluster (ray.cluster_utils: a head and one node with
         one fake GPU), the snapshot shipped as a task, the log shipped back.
Figures (median / max): submit -> trainer start (the queued record on disk to the trainer's first line),
trainer exit -> recorded (its last line to the final record on the board), and the runner process's CPU
time per experiment (utime + stime of the runner and its reaped children, from /proc): on Ray, what the
head pays per experiment; plus the Ray runner's idle CPU (no jobs) per second. From these, the head at 100 and 1,000
GPUs with the h100 profile's 5-minute experiments (docs/cluster.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from swarm.agents.protocol import agent_context, submit, wait_for  # noqa: E402
from swarm.board.run_record import write_run_record  # noqa: E402
from swarm.board.slots import ray_queue  # noqa: E402
from tests.support.swarm_run import commit_train, make_run, stand_in_train, wait_until  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime, stime, and the same of its reaped children (the git processes that materialise a commit)
    return sum(int(f) for f in fields[11:15]) / TICKS


def measure(run, agent: str, runner_pid: int, n: int, tag: str) -> dict[str, list[float]]:
    to_start, to_record, cpu = [], [], []
    offset = len([e for e in run.events() if e[0] == "start"])
    for k in range(n):
        commit_train(run.worktree(agent), stand_in_train(val_bpb=1.0 - k * 1e-3, marker=f"{tag}{k}"), f"e{k}")
        before = cpu_seconds(runner_pid)
        with run.agent_env(agent):
            ctx = agent_context()
            queued = submit(ctx, f"experiment {k}")
        final = wait_for(ctx.state, queued["id"], timeout_s=120)
        start, end = wait_until(lambda k=k: _pair(run.events(), offset + k))
        cpu.append(cpu_seconds(runner_pid) - before)
        to_start.append(start - queued["ts"])
        to_record.append(final["ts"] - end)
        assert final["status"] in ("keep", "discard", "marginal"), final
    return {"submit -> trainer start": to_start, "trainer exit -> recorded": to_record, "runner CPU": cpu}


def local(tmp: Path, n: int) -> dict[str, list[float]]:
    run = make_run(tmp, agents=("gpu0",), profile="tiny")
    os.environ["STANDIN_STATE_DIR"] = str(run.state_dir)
    proc = run.start_runner("0")
    try:
        return measure(run, "gpu0", proc.pid, n, "l")
    finally:
        run.stop_runners()


def on_ray(tmp: Path, n: int) -> tuple[dict[str, list[float]], float]:
    from ray.cluster_utils import Cluster

    run = make_run(tmp, agents=("gpu0",), profile="tiny")
    os.environ["STANDIN_STATE_DIR"] = str(run.state_dir)  # the node's workers inherit it
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 0, "include_dashboard": False}
    )
    cluster.add_node(num_cpus=1, num_gpus=1, resources={"accelerator_type:Fake": 1})
    cluster.wait_for_nodes()
    agent = replace(run.run.agents[0], queue=ray_queue("Fake"), device="Fake")
    run.run = replace(run.run, agents=(agent,), cluster=cluster.address)
    write_run_record(run.board, run.run)
    # make_run's swarm.toml (the stand-in prepares no data, so val_bpb is the trainer's: evaluation =
    # "reported"; its trainer's state directory in the sandbox) plus the head's node polling
    with open(run.repo / "swarm.toml", "a") as f:
        f.write("[ray]\nnode_poll_s = 0.5\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "swarm", "runner", "--ray", cluster.address],
        cwd=run.repo,
        env=run.runner_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run.runners.append(proc)
    try:
        try:
            wait_until(lambda: _ready(proc), 120)
        except AssertionError:
            raise SystemExit("the Ray runner's node never became ready:\n" + "".join(_lines[-20:])) from None
        figures = measure(run, "gpu0", proc.pid, n, "r")
        before = cpu_seconds(proc.pid)
        time.sleep(5.0)
        idle = (cpu_seconds(proc.pid) - before) / 5.0
        return figures, idle
    finally:
        run.stop_runners()
        cluster.shutdown()


_lines: list[str] = []


def _ready(proc) -> bool:
    """Whether the Ray runner said its node's cache is ready (reads its output as it comes)."""
    import select

    while select.select([proc.stdout], [], [], 0)[0]:
        line = proc.stdout.readline()
        if not line:
            break
        _lines.append(line)
    return any("cache ready" in line for line in _lines)


def _pair(events: list[list[str]], k: int):
    starts = [float(e[1]) for e in events if e[0] == "start"]
    ends = [float(e[1]) for e in events if e[0] == "end"]
    return (starts[k], ends[k]) if len(ends) > k else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=15)
    parser.add_argument("--in-namespace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.in_namespace:
        script = 'ip link set lo up && exec "$0" "$@"'
        argv = [sys.executable, __file__, "--experiments", str(args.experiments), "--in-namespace"]
        sys.exit(subprocess.call(["unshare", "--net", "sh", "-c", script, *argv]))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    tmp = Path(tempfile.mkdtemp(prefix="ray-dispatch-"))
    try:
        results = {"local": local(tmp / "local", args.experiments)}
        results["ray"], idle = on_ray(tmp / "ray", args.experiments)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.experiments} experiments each, stand-in trainer, one slot, one machine (2 cores)")
    print(f"{'':28}{'local median':>14}{'max':>8}{'ray median':>14}{'max':>8}")
    for name in results["local"]:
        row = f"{name + ':':28}"
        for kind in ("local", "ray"):
            values = results[kind][name]
            row += f"{statistics.median(values) * 1000:>11.0f} ms{max(values) * 1000:>6.0f}  "
        print(row)
    print("(runner CPU: the runner process and the children it reaped: git, and locally the trainer itself;")
    print(" on Ray the trainer is the node's, so the ray column is what the head pays per experiment)")
    print(f"ray runner idle CPU: {idle * 100:.1f}% of a core")
    cpu = statistics.median(results["ray"]["runner CPU"])
    for gpus in (100, 1000):
        rate = gpus / 300.0  # h100 profile: 5-minute experiments, every GPU busy
        print(
            f"{gpus:>5} GPUs: {rate:.2f} experiments/s, {3 * rate:.1f} board appends/s "
            f"(queued, running, final), head runner CPU {rate * cpu + idle:.2f} cores"
        )
    print(json.dumps({k: {n: statistics.median(v) for n, v in r.items()} for k, r in results.items()}))


if __name__ == "__main__":
    main()
