"""Waves: `swarm submit` of several commits, `swarm grid` of a knob's values, `swarm wait` for all of them, and
`swarm queue` showing the class queue an agent plans its next wave by."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace

from swarm.board.run_record import Worker, write_run_record
from swarm.board.slots import box_queue
from swarm.runner.service import Runner
from tests.support.swarm_run import STAND_IN_RUNNER, commit_train, git, latest, stand_in_train

SINGLE = '[noise]\nrule = "single"\n'


def knob_train(lr: float = 0.04, depth: int = 4) -> str:
    """A stand-in trainer with a hyperparameter block whose val_bpb depends on its knobs."""
    body = stand_in_train(val_bpb=1.0, marker="knobs")
    block = textwrap.dedent(
        f"""\
        MATRIX_LR = {lr!r}  # learning rate
        DEPTH = {depth!r}  # layers
        """
    )
    return block + body.replace("VAL_BPB = 1.0", "VAL_BPB = 1.0 + abs(MATRIX_LR - 0.03) - DEPTH / 1000")


def shared(run, slots):
    agents = tuple(replace(a, queue=box_queue("cpu"), device="cpu") for a in run.run.agents)
    run.run = replace(run.run, agents=agents, workers=tuple(Worker(s, s, "cpu") for s in slots))
    write_run_record(run.board, run.run)
    return run


def test_grid_submits_one_commit_per_combination_and_wait_collects_the_wave(make_swarm_run, cli):
    run = shared(make_swarm_run(agents=("cpu0",), train=knob_train(), config=SINGLE), ("cpu0", "cpu1"))
    worktree = run.worktree("cpu0")
    head = git(worktree, "rev-parse", "HEAD")
    with run.agent_env("cpu0"):
        code, out, err = cli("grid", "MATRIX_LR=0.02,0.03", "DEPTH=4,6", "-m", "lr x depth")
        assert code == 0, err
        ids = out.split()
        assert len(ids) == 4
        code, out, _ = cli("queue", "--json")
        (queue,) = json.loads(out)["queues"]
        assert queue["queue"] == "box:cpu" and queue["slots"] == 2 and queue["idle"] == 2
        assert queue["depth"] == 4 and queue["by_agent"] == {"cpu0": 4}
    assert git(worktree, "rev-parse", "HEAD") == head and not git(worktree, "status", "--porcelain")
    records = [latest(run.board, e) for e in ids]
    assert [r["description"] for r in records] == [
        "lr x depth: MATRIX_LR=0.02 DEPTH=4",
        "lr x depth: MATRIX_LR=0.02 DEPTH=6",
        "lr x depth: MATRIX_LR=0.03 DEPTH=4",
        "lr x depth: MATRIX_LR=0.03 DEPTH=6",
    ]
    for r in records:  # each a child of HEAD changing only its knobs
        assert git(worktree, "rev-parse", f"{r['commit']}^") == head
        diff = git(worktree, "diff", head, r["commit"], "--stat")
        assert "train.py" in diff and "1 file changed" in diff
    runners = [Runner(run.repo, run.board, s, STAND_IN_RUNNER, log=lambda _: None) for s in ("cpu0", "cpu1")]
    while any(latest(run.board, e)["status"] in ("queued", "running") for e in ids):
        for r in runners:
            r.step()
    with run.agent_env("cpu0"):
        code, out, _ = cli("wait", *ids, "--json", "--timeout", "60")
    assert code == 0
    values = {r["description"].split(": ")[1]: r["val_bpb"] for r in json.loads(out)}
    assert min(values, key=values.get) == "MATRIX_LR=0.03 DEPTH=6"
    assert {latest(run.board, e)["gpu"] for e in ids} <= {"cpu0", "cpu1"}


def test_submit_of_several_commits_and_bad_grids(make_swarm_run, cli):
    run = shared(make_swarm_run(agents=("cpu0",), train=knob_train(), config=SINGLE), ("cpu0",))
    worktree = run.worktree("cpu0")
    first = commit_train(worktree, knob_train(lr=0.05), "lr 0.05")
    second = commit_train(worktree, knob_train(lr=0.06), "lr 0.06")
    with run.agent_env("cpu0"):
        code, out, err = cli("submit", "-m", "two", first, second)
        assert code == 0, err
        ids = out.split()
        assert [latest(run.board, e)["commit"] for e in ids] == [first, second]
        assert latest(run.board, ids[1])["description"] == "two: lr 0.06"
        for argv, message in (
            (("grid", "NOPE=1,2"), "no hyperparameter NOPE"),
            (("grid", "lr=1"), "not KNOB=a,b,c"),
            (("grid", "DEPTH=x"), "not a number"),
            (("submit", "-m", "x", "nosuchref"), "no commit 'nosuchref'"),
        ):
            code, _, err = cli(*argv)
            assert code != 0 and message in err and "Traceback" not in err


def test_the_sweep_agent_sizes_its_wave_to_its_share_of_the_slots():
    from swarm.agents.sweep.agent import wave_size

    agents = [{"name": f"a{i}", "gpu": "box:H100"} for i in range(2)]
    status = {"agents": agents, "queues": [{"queue": "box:H100", "slots": 8}]}
    assert wave_size(status, agents[0]) == 5  # 8 GPUs shared by 2 agents: 4 each, and one ahead
    assert wave_size({**status, "agents": agents * 8}, agents[0]) == 2
    assert wave_size({"agents": [{"gpu": "3"}], "queues": []}, {"gpu": "3"}) == 2  # a run from before


def test_watch_shows_shared_slots_their_queue_and_each_agents_own_jobs(tmp_path):
    from swarm.board.experiments import evolve, new_experiment
    from swarm.board.run_record import AgentEntry, SwarmRecord
    from swarm.board.store import Board
    from swarm.tui.header import header_text
    from swarm.tui.model import WatchModel

    board = Board(tmp_path / "board").create()
    class_queue = box_queue("H100")
    agents = tuple(AgentEntry(n, "test", class_queue, "H100", f"/r/{n}", f"swarm/t/{n}") for n in ("a", "b"))
    workers = tuple(Worker(f"gpu{i}", str(i), "H100") for i in range(4))
    write_run_record(
        board, SwarmRecord(tag="t", base="0" * 40, profile="h100", agents=agents, workers=workers)
    )
    jobs = [
        board.append(
            new_experiment(agent=a, gpu=class_queue, device="H100", profile="h100", submitted_at=float(k))
        )
        for k, a in enumerate("aaab")
    ]
    board.append(evolve(jobs[0], status="running", gpu="2", queue=class_queue, started_at=10.0))
    snapshot = WatchModel(board.directory, None, clock=lambda: 20.0).refresh()
    rows = {row.name: row for row in snapshot.agents}
    assert rows["a"].queued == 2 and rows["b"].queued == 1 and rows["a"].elapsed == 10.0
    assert (snapshot.header.busy_slots, snapshot.header.slots) == (1, 4)
    header = str(header_text(snapshot.header))
    assert "GPUs busy 1/4" in header and "queue box:H100: 4 slot(s), 3 idle, 3 waiting (b 1, a 2)" in header
