"""One scheduler for every slot: agents share their class's slots (a box's as a cluster's), any free slot takes
the next job, fairly across agents; pinned pairs stay on their slot; a slot that dies mid-wave loses nothing."""

from __future__ import annotations

import signal
from dataclasses import replace

import pytest

from swarm.agents.protocol import agent_context, submit
from swarm.board.charges import payer
from swarm.board.experiments import new_experiment
from swarm.board.run_record import Worker, write_run_record
from swarm.board.scheduling import pick
from swarm.board.slots import box_queue
from swarm.runner.service import Runner
from swarm.target.summary import is_finite
from tests.support.swarm_run import STAND_IN_RUNNER, commit_train, latest, stand_in_train, wait_until
from tests.support.target import REPO_ROOT

FINAL = {"keep", "marginal", "discard", "crash", "timeout", "invalid", "promising"}
SINGLE = '[noise]\nrule = "single"\n'


def job(agent: str, t: float, **fields) -> dict:
    return {**new_experiment(agent=agent, gpu="box:cpu", submitted_at=t), **fields}


# ---------------------------------------------------------------------------------------------------------
# The decision itself (swarm.board.scheduling.pick)


def test_a_deep_queue_does_not_starve_another_agent():
    deep = [job("a", t) for t in range(1, 9)]  # a's wave of 8, all submitted before b's one job
    late = job("b", 100.0)
    running = [job("a", 0.0, status="running", started_at=50.0)]
    assert pick((), deep + [late], running) is late  # a holds a slot already: b goes first
    # slots free one at a time and nothing runs: round robin by who was served last
    assert pick((), deep + [late], (), served={"a": 60.0}) is late
    assert pick((), deep, (), served={"a": 60.0}) is deep[0]  # alone, a's oldest job first


def test_pinned_jobs_first_and_calibration_before_the_class():
    pooled = [job("a", 1.0), job("b", 2.0)]
    pair = [job("a", 5.0, gpu="cpu1", control=True), job("a", 5.1, gpu="cpu1")]
    assert pick(pair, pooled, ()) is pair[0]
    assert pick(pair[1:], pooled, ()) is pair[1]  # nothing of the class comes between a pair's halves
    calibration = job("b", 9.0, requested_by="calibration")
    assert pick((), pooled + [calibration], ()) is calibration
    assert pick((), (), ()) is None


def test_an_agents_rerun_pinned_to_a_slot_waits_for_its_payers_turn():
    """A rerun agent a asked for of b's result (swarm.board.charges: charged to a) is pinned to the slot but
    does not jump the class queue while a already holds a slot; a confirmation's pair does."""
    agents = ("a", "b")

    def share(j):
        return payer(j, agents) or ""

    asked = job("b", 0.5, gpu="cpu1", requested_by="a", verify_of="x")
    running = [job("a", 0.0, status="running", started_at=1.0)]
    honest = job("b", 3.0)
    assert pick([asked], [honest], running, share=share) is honest
    assert pick([asked], [], running, share=share) is asked  # nothing else waits: the slot takes it
    confirmation = job("b", 0.5, gpu="cpu1", requested_by="confirmation", verify_of="x")
    assert pick([confirmation], [honest], running, share=share) is confirmation


# ---------------------------------------------------------------------------------------------------------
# Real runs: agents on a box's shared slots


def share_slots(run, slots: tuple[str, ...]):
    """Rewrite a test run as `swarm spawn` writes one now: its agents queue for the class, these slots
    serve it."""
    agents = tuple(replace(a, queue=box_queue("cpu"), device="cpu") for a in run.run.agents)
    run.run = replace(run.run, agents=agents, workers=tuple(Worker(s, s, "cpu") for s in slots))
    write_run_record(run.board, run.run)
    return run


def runner(run, slot: str) -> Runner:
    return Runner(run.repo, run.board, slot, STAND_IN_RUNNER, log=lambda line: None)


def test_any_free_slot_takes_any_agents_job_fairly(make_swarm_run):
    run = share_slots(make_swarm_run(agents=("cpu0", "cpu1"), config=SINGLE), ("cpu0", "cpu1"))
    ids = {}
    for agent, count in (("cpu0", 4), ("cpu1", 1)):
        with run.agent_env(agent):
            for k in range(count):
                commit_train(run.worktree(agent), stand_in_train(val_bpb=1 - k / 100, marker=f"{agent}{k}"))
                ids.setdefault(agent, []).append(submit(agent_context(), f"{agent} {k}")["id"])
    queued = latest(run.board, ids["cpu0"][0])
    assert queued["gpu"] == "box:cpu" and queued["device"] == "cpu"
    first, second = runner(run, "cpu0"), runner(run, "cpu1")
    taken = []
    while len([r for r in taken if not r.get("verify_of")]) < 5:
        taken += [r for r in (first.step(), second.step()) if r is not None]
    # the slots take turns at the class's queue (and the baseline's calibration reruns pinned to them):
    # b's only job runs second, ahead of a's three others
    mine = [r for r in taken if not r.get("verify_of")]
    assert [r["id"] for r in mine[:2]] == [ids["cpu0"][0], ids["cpu1"][0]]
    assert {r["gpu"] for r in mine} == {"cpu0", "cpu1"}
    assert all(r["status"] in FINAL and r["queue"] == "box:cpu" for r in mine)


def test_a_pinned_pair_stays_on_its_slot(make_swarm_run):
    run = share_slots(make_swarm_run(agents=("cpu0",), config=SINGLE), ("cpu0", "cpu1"))
    with run.agent_env("cpu0"):
        commit_train(run.worktree("cpu0"), stand_in_train(val_bpb=0.9, marker="x"))
        pooled = submit(agent_context(), "class job")
    # a confirmation's rerun and control, queued on slot cpu1 after the class job
    same = ("agent", "profile", "tag", "branch", "commit", "parent", "base", "train_sha256", "device")
    rerun, control = (
        run.board.append(new_experiment(**{k: pooled[k] for k in same}, gpu="cpu1", control=c or None))
        for c in (False, True)
    )
    other = runner(run, "cpu1")
    # the older class job waits: nothing comes between the pair's halves on their slot
    assert [other.step()["id"], other.step()["id"]] == [rerun["id"], control["id"]]
    assert latest(run.board, pooled["id"])["status"] == "queued"
    home = runner(run, "cpu0")
    wait_until(lambda: home.step() and latest(run.board, pooled["id"])["status"] in FINAL)
    assert latest(run.board, pooled["id"])["gpu"] == "cpu0"


def test_a_slot_that_dies_mid_wave_loses_nothing(make_swarm_run, cli):
    run = share_slots(make_swarm_run(agents=("cpu0",), config=SINGLE), ("cpu0", "cpu1"))
    ids = []
    with run.agent_env("cpu0"):
        for k in range(4):
            commit_train(
                run.worktree("cpu0"), stand_in_train(val_bpb=1 - k / 100, sleep_s=0.5, marker=str(k))
            )
            ids.append(submit(agent_context(), f"wave {k}")["id"])
    doomed = run.start_runner("cpu0")
    wait_until(lambda: any(latest(run.board, e)["status"] == "running" for e in ids), timeout=60)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    run.runners.remove(doomed)
    run.start_runner("cpu1")  # the other slot of the class finishes the wave, the orphan included
    wait_until(lambda: all(latest(run.board, e)["status"] in FINAL for e in ids), timeout=120)
    run.start_runner("cpu0")  # the dead slot's runner comes back: its orphan was already requeued and run
    records = [latest(run.board, e) for e in ids]
    assert all(r["status"] == "keep" or r["status"] in FINAL for r in records)
    assert sum(1 for r in records if r["gpu"] == "cpu1") >= 3
    # each recorded once: one final record per id
    finals = [r for r in run.board.records() if r.get("id") in ids and r.get("status") in FINAL]
    assert sorted(r["id"] for r in finals) == sorted(ids)


@pytest.mark.slow  # real tiny trainer runs
def test_two_agents_share_four_slots_on_the_real_tiny_trainer(make_swarm_run, tiny_cache, monkeypatch, cli):
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(tiny_cache))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    train = (REPO_ROOT / "train.py").read_text()
    run = make_swarm_run(agents=("cpu0", "cpu1"), prepare=(REPO_ROOT / "prepare.py").read_text(), train=train)
    slots = ("cpu0", "cpu1", "cpu2", "cpu3")
    share_slots(run, slots)
    for slot in slots:
        run.start_runner(slot)
    ids = []
    for agent in ("cpu0", "cpu1"):
        commit_train(run.worktree(agent), train + f"\n# {agent}'s baseline\n", "baseline")
        with run.agent_env(agent):
            code, out, err = cli("submit", "-m", "baseline")
        assert code == 0, err
        ids.append(out.strip())
    records = wait_until(
        lambda: (rs := [latest(run.board, e) for e in ids]) and all(r["status"] in FINAL for r in rs) and rs,
        timeout=420,
    )
    for record in records:
        log = (run.board.directory / record["log"]).read_text()
        # trained and judged by the sealed path (on a loaded 2-core machine the clock may call a run invalid)
        assert record["status"] in FINAL - {"crash", "timeout"}, (record["reason"], log[-1500:])
        assert "profile:          tiny" in log and record["device"] == "cpu"
        assert record["status"] == "invalid" or (
            record["evaluation"] == "sealed" and is_finite(record["val_bpb"])
        )
        assert record["queue"] == "box:cpu" and record["gpu"] in slots
    first, second = sorted(records, key=lambda r: r["started_at"])
    assert first["gpu"] != second["gpu"] and second["started_at"] < first["finished_at"]  # side by side


def test_spawn_plans_any_number_of_agents_on_any_number_of_gpus(make_swarm_run, monkeypatch):
    from swarm.orchestration.launch import window_plans
    from swarm.orchestration.spawn import SpawnRequest, _new_run
    from swarm.repo.paths import RunPaths

    run = make_swarm_run()
    paths = RunPaths.for_repo(run.repo)
    monkeypatch.setenv("SWARM_FAKE_GPUS", "8:NVIDIA H100 80GB HBM3")
    for agents, names in ((2, ["nvidia-h100-80gb-hbm3-0", "nvidia-h100-80gb-hbm3-1"]), (1, None), (16, None)):
        planned = _new_run(SpawnRequest(gpus="8", agents=agents), "t", run.base, paths)
        assert len(planned.agents) == agents and len(planned.workers) == 8
        assert {a.queue for a in planned.agents} == {"box:NVIDIA H100 80GB HBM3"}
        if names:
            assert [a.name for a in planned.agents] == names
        windows = [w.name for w in window_plans(planned, paths)]
        assert windows[agents:] == [f"runner-gpu{i}" for i in range(8)]  # a runner per GPU, whatever N is
        assert planned.runners_of("box:NVIDIA H100 80GB HBM3") == [str(i) for i in range(8)]
    default = _new_run(SpawnRequest(gpus="8"), "t", run.base, paths)  # one per GPU, named as always
    assert [a.name for a in default.agents] == [f"gpu{i}" for i in range(8)]
