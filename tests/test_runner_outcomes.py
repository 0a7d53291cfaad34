"""The runner judges what it measured: stand-in trainers that succeed, crash, hang, print NaN, overrun the
budget or tamper with prepare.py each get the right status; a hang is killed with its whole process tree."""

import pytest

from swarm.agents.protocol import agent_context, submit
from swarm.runner.service import Runner, RunnerSettings
from tests.support.swarm_run import STAND_IN_PREPARE, STAND_IN_SETTINGS, commit_train, git, stand_in_train

FAST = RunnerSettings(**STAND_IN_SETTINGS, overhead_default_s=3.0, kill_grace_s=0.5)


def run_one(run, source, path="train.py", settings=FAST, agent="cpu0"):
    """Commit `source` at `path` (None: commit the worktree as it is), submit it, run it in-process."""
    if source is None:
        git(run.worktree(agent), "add", "-A")
        git(run.worktree(agent), "commit", "-q", "-m", "as is")
    else:
        commit_train(run.worktree(agent), source, f"try {path}", path=path)
    runner = Runner(run.repo, run.board, run.run.agent(agent).queue, settings, log=lambda line: None)
    with run.agent_env(agent):  # SWARM_* set around the runner too: it must not hand them to the trainer
        job = submit(agent_context(), "stand-in", rerun=True)
        record = runner.step()
    assert record["id"] == job["id"]
    return record


@pytest.mark.parametrize(
    "mode, status, reason",
    [
        ("ok", "keep", "baseline"),
        ("crash", "crash", "exit code 1: RuntimeError: stand-in crash"),
        ("fail", "crash", "exit code 1: FAIL"),
        ("nan", "crash", "no finite val_bpb"),
        ("slow", "invalid", "clock: claims"),
        ("tamper", "invalid", "prepare.py was modified"),
    ],
)
def test_stand_in_outcomes(make_swarm_run, mode, status, reason):
    run = make_swarm_run()
    record = run_one(run, stand_in_train(mode=mode, val_bpb=0.95))
    assert record["status"] == status, record["reason"]
    assert reason in record["reason"]
    assert (run.board.directory / record["log"]).exists()
    assert (
        record["prepare_sha256"] and record["train_sha256"] and record["finished_at"] >= record["started_at"]
    )
    assert run.trainer_env() == {
        "CUDA_VISIBLE_DEVICES": "",  # a CPU slot sees no GPU
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "AUTORESEARCH_PROFILE": "tiny",
        "SWARM_AGENT": None,  # the agent's identity is not the trainer's
    }
    if status == "keep":
        assert record["val_bpb"] == pytest.approx(0.95) and record["num_steps"] == 10 and record["depth"] == 2
    assert not (run.board.directory / "runs" / record["id"]).exists()  # run directory cleaned


def test_commit_touching_prepare_is_invalid_and_never_runs(make_swarm_run):
    run = make_swarm_run()
    record = run_one(run, STAND_IN_PREPARE + "\nTIME_BUDGET_HACK = 1\n", path="prepare.py")
    assert record["status"] == "invalid" and "prepare.py" in record["reason"]
    assert run.events() == []  # no trainer started


def test_runner_executes_base_prepare_not_the_agents(make_swarm_run):
    run = make_swarm_run()
    # even when the allow-list lets prepare.py through, the run gets the base commit's copy
    lenient = RunnerSettings(
        **STAND_IN_SETTINGS, allowed_paths=("train.py", "prepare.py"), overhead_default_s=3.0
    )
    evil = STAND_IN_PREPARE.replace('"time_budget": 2', '"time_budget": 9999')
    commit_train(run.worktree("cpu0"), evil, "evil prepare", path="prepare.py")
    record = run_one(run, stand_in_train(mode="slow"), settings=lenient)
    assert record["status"] == "invalid" and "clock: claims" in record["reason"]


def test_hang_is_killed_with_its_whole_process_tree(make_swarm_run):
    run = make_swarm_run()
    settings = RunnerSettings(**STAND_IN_SETTINGS, timeout_s=1.5, kill_grace_s=0.5)
    record = run_one(run, stand_in_train(mode="hang"), settings=settings)
    assert record["status"] == "timeout" and "timeout" in record["reason"]
    assert (run.state_dir / "hang.pids").exists()
    assert run.run_processes() == {}, "a process survived the timeout"


def test_a_commit_that_cannot_be_materialised_is_a_crash_not_a_dead_runner(make_swarm_run):
    run = make_swarm_run()
    worktree = run.worktree("cpu0")
    (worktree / "train.py").unlink()
    (worktree / "train.py").symlink_to("/etc/passwd")  # a link out of the run directory
    record = run_one(run, None)
    assert record["status"] == "crash" and "cannot materialise" in record["reason"]
