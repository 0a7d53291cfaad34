"""`swarm runner` as a real process: queue-ahead jobs run in order and never overlap; a runner killed
mid-run loses no job; a second runner for the same slot refuses to start."""

import json
import signal
import subprocess
import sys

from swarm.agents.protocol import agent_context, submit
from tests.support.swarm_run import commit_train, latest, process_alive, stand_in_train, wait_until

FINAL = {"keep", "marginal", "discard", "crash", "timeout", "invalid"}


def test_queue_ahead_runs_in_order_one_at_a_time(make_swarm_run, cli):
    # one run decides (the `single` rule): no calibration or confirmation reruns join the queue
    run = make_swarm_run(agents=("gpu0",), config='[noise]\nrule = "single"\n')
    worktree = run.worktree("gpu0")
    ids = []
    with run.agent_env("gpu0"):
        for k in range(3):  # submitted back to back, before any runner exists
            commit_train(
                worktree, stand_in_train(val_bpb=1.0 - k * 0.05, sleep_s=0.3, marker=str(k)), f"step {k}"
            )
            code, out, _ = cli("submit", "-m", f"step {k}")
            ids.append(out.strip())
    run.start_runner("0")
    with run.agent_env("gpu0"):
        code, out, _ = cli("wait", ids[-1][:5], "--json", "--timeout", "60")
    assert code == 0 and json.loads(out)["id"] == ids[-1]
    records = [latest(run.board, eid) for eid in ids]
    assert all(r["status"] in FINAL for r in records)
    assert [r["status"] for r in records] == ["keep", "keep", "keep"]
    starts = sorted(records, key=lambda r: r["started_at"])
    assert [r["id"] for r in starts] == ids  # submission order
    events = run.events()
    spans = []
    for kind, stamp, *_ in events:
        if kind == "start":
            spans.append([float(stamp), None])
        else:
            spans[-1][1] = float(stamp)
    assert len(spans) == 3
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start, "two trainers overlapped on one GPU"
    assert all(e[3].startswith(str(run.board.directory / "runs")) for e in events if e[0] == "start")
    assert run.trainer_env()["CUDA_VISIBLE_DEVICES"] == "0"


def test_killed_runner_loses_no_job(make_swarm_run):
    run = make_swarm_run()
    commit_train(run.worktree("cpu0"), stand_in_train(mode="hang", marker="slow"), "slow one")
    with run.agent_env("cpu0"):
        job = submit(agent_context(), "slow one")
    runner = run.start_runner("cpu0")
    trainer, grandchild = run.hang_pids()
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    assert latest(run.board, job["id"])["status"] == "running"
    # the trainer's sandbox dies with its runner (parent-death signal), every process in it with it
    wait_until(lambda: not process_alive(trainer) and not process_alive(grandchild), timeout=10)

    # a fixed commit would be a new experiment; here the same job is requeued and retried on restart
    run.start_runner("cpu0")
    wait_until(lambda: latest(run.board, job["id"])["attempt"] == 2)
    wait_until(lambda: latest(run.board, job["id"])["status"] == "running")
    retried = latest(run.board, job["id"])
    assert retried["attempt"] == 2


def test_orphan_past_max_attempts_is_a_crash(make_swarm_run):
    run = make_swarm_run(config="[runner]\nmax_attempts = 1\n")
    commit_train(run.worktree("cpu0"), stand_in_train(mode="hang"), "hangs")
    with run.agent_env("cpu0"):
        job = submit(agent_context(), "hangs")
    runner = run.start_runner("cpu0")
    _, grandchild = run.hang_pids()
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    run.start_runner("cpu0")
    final = wait_until(lambda: _final(latest(run.board, job["id"])))
    assert final["status"] == "crash" and "runner died" in final["reason"]
    wait_until(lambda: not process_alive(grandchild), timeout=10)


def test_stopped_runner_requeues_its_job_and_one_runner_per_slot(make_swarm_run):
    run = make_swarm_run()
    commit_train(run.worktree("cpu0"), stand_in_train(mode="hang"), "hangs")
    with run.agent_env("cpu0"):
        job = submit(agent_context(), "hangs")
    runner = run.start_runner("cpu0")
    second = subprocess.run(
        [sys.executable, "-m", "swarm", "runner", "--cpu", "0"],
        cwd=run.repo,
        env=run.runner_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 1 and "already running" in second.stderr
    pids = run.hang_pids()
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=15) == 0
    requeued = latest(run.board, job["id"])
    assert requeued["status"] == "queued" and requeued["attempt"] == 1
    for pid in pids:
        wait_until(lambda pid=pid: not process_alive(pid), timeout=10)


def _final(record):
    return record if record and record["status"] in FINAL else None
