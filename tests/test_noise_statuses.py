"""keep / marginal / discard under the `single` rule with a stand-in trainer whose val_bpb has known noise; identical content
measured twice is answered from the board without a run, unless --rerun."""

import json
import statistics

import pytest

from swarm.board.noise import NoiseSettings
from swarm.runner.service import Runner, RunnerSettings
from tests.support.swarm_run import STAND_IN_SETTINGS, commit_train, stand_in_train

# the `single` rule (one run decides); screen-then-confirm is tested in test_confirmation.py
NOISE = NoiseSettings(floor={"tiny": 1e-4}, sigmas=2.0, reuse_runs=2, rule="single")


def test_statuses_follow_the_noise_band(make_swarm_run, cli):
    run = make_swarm_run(config='[noise]\nfloor = {tiny = 1e-4}\nrule = "single"\nreuse_runs = 2\n')
    runner = Runner(
        run.repo, run.board, "cpu0", RunnerSettings(**STAND_IN_SETTINGS), NOISE, log=lambda line: None
    )
    worktree = run.worktree("cpu0")

    def experiment(source, message, *flags):
        commit_train(worktree, source, message)
        with run.agent_env("cpu0"):
            code, out, _ = cli("submit", "-m", message, *flags)
        assert code == 0
        eid = out.strip()
        record = runner.step()
        assert record is not None and record["id"] == eid
        return record

    # the baseline, run twice: offsets +-0.001 give sigma 0.001414, so the band is 2 x 0.001414 = 0.002828
    baseline = stand_in_train(val_bpb=1.0, offsets=(0.001, -0.001), marker="baseline")
    first = experiment(baseline, "baseline")
    assert (first["status"], first["val_bpb"]) == ("keep", pytest.approx(1.001))
    second = experiment(baseline, "baseline again", "--rerun")
    assert second["status"] == "keep" and "mean of 2 runs" in second["reason"]
    assert second["band"] == pytest.approx(1e-4)  # the band when it was judged: no repeats before it
    band = 2 * statistics.stdev([1.001, 0.999])  # 0.002828

    better = experiment(stand_in_train(val_bpb=0.99, marker="better"), "a clear gain")
    assert better["status"] == "keep" and better["reference"] == first["id"]
    assert better["band"] == pytest.approx(band, rel=1e-4)
    inside = experiment(stand_in_train(val_bpb=0.9885, marker="inside"), "a gain inside the noise")
    assert inside["status"] == "marginal" and inside["reference"] == better["id"]
    worse = experiment(stand_in_train(val_bpb=0.995, marker="worse"), "worse")
    assert worse["status"] == "discard"

    # the baseline content was measured twice: a third submission is answered from the board, no run
    commit_train(worktree, baseline, "baseline once more")
    with run.agent_env("cpu0"):
        code, out, _ = cli("run", "-m", "baseline once more", "--json")
    answered = json.loads(out)
    assert answered["reused_from"] == [first["id"], second["id"]]
    assert answered["val_bpb"] == pytest.approx(1.0)
    assert answered["status"] == "discard"  # worse than the agent's current best (0.99)
    assert runner.step() is None  # nothing was queued
    assert len([e for e in run.events() if e[0] == "start"]) == 5

    # --rerun forces a run of the same content
    with run.agent_env("cpu0"):
        code, out, _ = cli("submit", "-m", "measure again", "--rerun")
    assert runner.step()["id"] == out.strip()
    assert len([e for e in run.events() if e[0] == "start"]) == 6


def test_a_commit_outside_the_allow_list_is_never_answered_from_the_board(make_swarm_run, cli):
    run = make_swarm_run()
    runner = Runner(
        run.repo, run.board, "cpu0", RunnerSettings(**STAND_IN_SETTINGS), NOISE, log=lambda line: None
    )
    worktree = run.worktree("cpu0")
    with run.agent_env("cpu0"):
        for _ in range(2):  # the base train.py, measured twice
            commit_train(worktree, (worktree / "train.py").read_text(), "baseline")
            cli("submit", "-m", "baseline", "--rerun")
            runner.step()
        commit_train(worktree, "# sneaky\n", "edit prepare.py only", path="prepare.py")
        code, out, _ = cli("submit", "-m", "same train.py, other prepare.py")
    assert runner.step()["status"] == "invalid"
