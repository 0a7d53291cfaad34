"""Screen, then confirm (the default noise rule): calibration, promising, confirmation reruns, verdicts."""

import json
import math

import pytest

from swarm.board.experiments import DISCARD, KEEP, MARGINAL, PROMISING
from swarm.board.noise import Evidence, NoiseSettings, decide
from swarm.board.state import BoardState
from swarm.config import load_section
from swarm.errors import SwarmError
from swarm.runner.service import Runner, RunnerSettings
from tests.support.swarm_run import STAND_IN_SETTINGS, latest, run_queued, stand_in_train, submit

FLOOR = "[noise]\nfloor = {tiny = 1e-4}\n"
# the baseline's three runs print 1.001, 0.999, 1.0: sigma 0.001
BASELINE = stand_in_train(val_bpb=1.0, offsets=(0.001, -0.001, 0.0), marker="baseline")
GROUP = ("Test GPU", "tiny")


def calibrated_run(make_swarm_run, cli, agents=("gpu0", "gpu1", "gpu2")):
    """A run whose agents each measured the baseline once (the class is calibrated with three slots)."""
    run = make_swarm_run(config=FLOOR, agents=agents, train=BASELINE)
    for agent in agents:
        with run.agent_env(agent):
            code, out, err = cli("submit", "-m", "baseline")
        assert code == 0, err
    for agent in agents:
        run_queued(run, run.run.agent(agent).gpu)
    return run


def one_job(run, slot):
    """Run the next queued job of a slot, with the run's noise settings."""
    runner = Runner(
        run.repo,
        run.board,
        slot,
        RunnerSettings(**STAND_IN_SETTINGS),
        load_section(run.repo, "noise", NoiseSettings),
    )
    return runner.step()


def state_of(run):
    state = BoardState(run.board, NoiseSettings(floor={"tiny": 1e-4}))
    state.refresh()
    return state


def test_decisions_use_the_sigma_of_a_difference():
    noise = NoiseSettings(floor={"h100": 0.0})
    first = Evidence(0.997, 1, 1.0, 3, 0.001, calibrated=True, final=False)
    status, reason, band = decide(noise, "h100", first)
    assert band == pytest.approx(1.5 * 0.001 * math.sqrt(1 + 1 / 3))  # 0.00173
    assert status == PROMISING and "confirmation" in reason
    assert decide(noise, "h100", Evidence(0.9990, 1, 1.0, 3, 0.001, True, False))[0] == MARGINAL
    assert decide(noise, "h100", Evidence(1.0005, 1, 1.0, 3, 0.001, True, False))[0] == DISCARD
    # the verdict over 3 runs against 3: 2 sigma x sqrt(2/3) = 0.00163
    status, reason, band = decide(noise, "h100", Evidence(0.998, 3, 1.0, 3, 0.001, True, True))
    assert status == KEEP and band == pytest.approx(2 * 0.001 * math.sqrt(2 / 3)) and "confirmed" in reason
    assert decide(noise, "h100", Evidence(0.9990, 3, 1.0, 3, 0.001, True, True))[0] == MARGINAL
    # never a keep before the class is calibrated, however large the gain
    status, reason, _ = decide(noise, "h100", Evidence(0.9, 3, 1.0, 1, 0.001, calibrated=False, final=True))
    assert status == MARGINAL and "not calibrated" in reason
    # the floor bounds sigma from below (floor / sigmas), so a few agreeing repeats cannot shrink the band
    floored = NoiseSettings(floor={"h100": 0.004})
    assert decide(floored, "h100", Evidence(0.997, 1, 1.0, 3, 0.0, True, False))[0] == MARGINAL
    # the old rule, kept as `single`: one run beyond max(2 sigma, floor) is a keep
    single = NoiseSettings(floor={"h100": 0.0}, rule="single")
    assert decide(single, "h100", first)[0] == KEEP
    with pytest.raises(SwarmError, match="rule"):
        NoiseSettings(rule="sometimes")


def test_a_promising_result_is_confirmed_on_other_slots_then_kept(make_swarm_run, cli):
    run = calibrated_run(make_swarm_run, cli)
    state = state_of(run)
    assert state.calibrated(GROUP) and state.best(GROUP).n == 3
    # gpu2 has work queued: the confirmation goes to the free slot 1 and to gpu0's own slot
    submit(run, cli, "gpu2", stand_in_train(val_bpb=1.002, marker="busy"), "busy")
    better = submit(run, cli, "gpu0", stand_in_train(val_bpb=0.99, offsets=(0.0, 0.001, -0.001)), "better")
    first = one_job(run, "0")
    assert first["id"] == better and first["status"] == PROMISING
    reruns = [r for r in run.board.records() if r.get("verify_of") == better and r["status"] == "queued"]
    assert sorted(r["gpu"] for r in reruns) == ["0", "1"]
    assert {r["requested_by"] for r in reruns} == {"confirmation"}
    state = state_of(run)
    assert state.best(GROUP).train_sha256 != first["train_sha256"]  # one run is not a best
    assert state.experiment(better)["status"] == PROMISING
    with run.agent_env("gpu0"):
        code, out, _ = cli("wait", better)
    assert code == 0 and "promising: not a keep yet" in out and f"swarm wait {better} --verdict" in out

    run_queued(run, "1")
    assert latest(run.board, better)["status"] == PROMISING  # one rerun of two: still open
    run_queued(run, "0")
    verdict = latest(run.board, better)
    assert (
        verdict["status"] == KEEP
        and "confirmed" in verdict["reason"]
        and "mean of 3 runs" in verdict["reason"]
    )
    assert {latest(run.board, r["id"])["status"] for r in reruns} == {KEEP}
    (verification,) = [r for r in run.board.records() if r["type"] == "verification"]
    assert verification["held"] and verification["verdict"] == KEEP
    with run.agent_env("gpu0"):
        code, out, _ = cli("wait", better, "--verdict", "--json")
        assert json.loads(out)["status"] == KEEP
        code, out, _ = cli("best", "--json")
    (best,) = json.loads(out)
    assert best["id"] == better and best["n"] == 3 and best["mean"] == pytest.approx(0.99)
    assert best["verified"] and best["sigma"] == pytest.approx(0.001)


def test_a_lucky_first_run_is_not_kept(make_swarm_run, cli):
    run = calibrated_run(make_swarm_run, cli)
    lucky = submit(run, cli, "gpu0", stand_in_train(val_bpb=0.99, offsets=(0.0, 0.02, 0.02)), "lucky")
    assert run_queued(run, "0")[0]["status"] == PROMISING
    run_queued(run, "1")
    run_queued(run, "2")
    verdict = latest(run.board, lucky)
    assert verdict["status"] == DISCARD  # mean 1.0033: worse than the baseline
    state = state_of(run)
    assert state.best(GROUP).train_sha256 != verdict["train_sha256"]
    reference = state.agent_reference("gpu0", GROUP)
    assert reference.n == 3 and reference.mean == pytest.approx(1.0)  # still the baseline
    (verification,) = [r for r in run.board.records() if r["type"] == "verification"]
    assert not verification["held"] and verification["verdict"] == DISCARD


def test_a_class_with_one_slot_is_calibrated_by_baseline_reruns(make_swarm_run, cli):
    run = make_swarm_run(config=FLOOR, agents=("gpu0",), train=BASELINE)
    with run.agent_env("gpu0"):
        cli("submit", "-m", "baseline")
    baseline, *calibration = run_queued(run, "0")
    assert baseline["status"] == KEEP
    assert [r["requested_by"] for r in calibration] == ["calibration", "calibration"]
    state = state_of(run)
    assert state.calibrated(GROUP) and state.content(GROUP, baseline["train_sha256"]).n == 3
    assert state.content(GROUP, baseline["train_sha256"]).sigma == pytest.approx(0.001)
    assert len(state.experiments) == 3  # asked once: the reruns asked for no more


def test_a_crashed_confirmation_rerun_still_ends_in_a_verdict(make_swarm_run, cli):
    run = calibrated_run(make_swarm_run, cli)
    # the second run of this exact file exits 3: one confirmation rerun crashes
    flaky = stand_in_train(val_bpb=0.99, marker="flaky")
    flaky = flaky.replace("time.sleep(0.0)\n", "time.sleep(0.0)\nif runs == 1:\n    sys.exit(3)\n", 1)
    better = submit(run, cli, "gpu0", flaky, "better")
    run_queued(run, "0")
    run_queued(run, "1")
    crashed = [r for r in run.board.records() if r.get("verify_of") == better and r["status"] == "crash"]
    assert len(crashed) == 1 and latest(run.board, better)["status"] == PROMISING
    run_queued(run, "2")
    verdict = latest(run.board, better)
    assert verdict["status"] == KEEP and "mean of 2 runs" in verdict["reason"]


def test_calibration_reruns_count_baselines_on_their_way_and_go_first(make_swarm_run, cli):
    run = make_swarm_run(config=FLOOR, agents=("gpu0", "gpu1"), train=BASELINE)
    for agent in ("gpu0", "gpu1"):
        with run.agent_env(agent):
            cli("submit", "-m", "baseline")
    later = submit(run, cli, "gpu0", stand_in_train(val_bpb=1.5, marker="later"), "queued before")
    assert one_job(run, "0")["status"] == KEEP  # gpu0's baseline; gpu1's is still queued
    state = state_of(run)
    (calibration,) = [e for e in state.experiments.values() if e.get("requested_by") == "calibration"]
    assert calibration["gpu"] == "1"  # the other slot
    assert [e["id"] for e in state.queue("1")][0] == calibration["id"]  # ahead of gpu1's baseline
    run_queued(run, "1")
    run_queued(run, "0")
    state = state_of(run)
    assert state.calibrated(GROUP) and state.content(GROUP, calibration["train_sha256"]).n == 3
    assert state.experiment(later)["status"] == DISCARD


def test_one_calibration_at_a_time_per_class(make_swarm_run, cli):
    # the agents' first results differ (e.g. a baseline that overran its budget): only the first asks
    run = make_swarm_run(config=FLOOR, agents=("gpu0", "gpu1"), train=BASELINE)
    submit(run, cli, "gpu0", stand_in_train(val_bpb=1.0, marker="first of gpu0"), "a")
    submit(run, cli, "gpu1", stand_in_train(val_bpb=1.0, marker="first of gpu1"), "b")
    assert one_job(run, "0")["status"] == KEEP
    assert one_job(run, "1")["status"] == KEEP  # a calibration rerun is first in line, not gpu1's job
    assert one_job(run, "1")["status"] == KEEP
    state = state_of(run)
    assert len([e for e in state.experiments.values() if e.get("requested_by") == "calibration"]) == 2
