"""Screen, then confirm (the default noise rule): calibration, promising, confirmation reruns, verdicts."""

import json
import math

import pytest

from swarm.board.experiments import DISCARD, KEEP, MARGINAL, PROMISING
from swarm.board.fold import BoardState
from swarm.board.noise import Evidence, NoiseSettings, decide, decide_paired
from swarm.config import load_section
from swarm.errors import SwarmError
from swarm.runner.service import Runner, RunnerSettings
from tests.support.swarm_run import STAND_IN_SETTINGS, latest, run_queued, stand_in_train, submit

FLOOR = "[noise]\nfloor = {tiny = 1e-4}\n"
UNPAIRED = FLOOR + "paired = false\n"  # confirmation reruns without control runs of the reference
# the baseline's three runs print 1.001, 0.999, 1.0: sigma 0.001
BASELINE = stand_in_train(val_bpb=1.0, offsets=(0.001, -0.001, 0.0), marker="baseline")
GROUP = ("Test GPU", "tiny")


def calibrated_run(make_swarm_run, cli, agents=("gpu0", "gpu1", "gpu2"), config=FLOOR):
    """A run whose agents each measured the baseline once (the class is calibrated with three slots)."""
    run = make_swarm_run(config=config, agents=agents, train=BASELINE)
    for agent in agents:
        with run.agent_env(agent):
            code, out, err = cli("submit", "-m", "baseline")
        assert code == 0, err
    for agent in agents:
        run_queued(run, run.run.agent(agent).queue)
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
    state = BoardState(run.board, load_section(run.repo, "noise", NoiseSettings))
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


def test_a_paired_verdict_judges_the_reruns_against_their_controls():
    noise = NoiseSettings(floor={"h100": 0.0})
    # two reruns against two controls: 1.2 sigma x sqrt(1/2 + 1/2) = 0.0012
    status, reason, band = decide_paired(noise, "h100", [0.998, 0.998], [1.0, 1.0], 0.001, calibrated=True)
    assert status == KEEP and band == pytest.approx(1.2 * 0.001) and "control runs" in reason
    assert decide_paired(noise, "h100", [0.999, 0.9992], [1.0, 1.0], 0.001, True)[0] == MARGINAL
    assert decide_paired(noise, "h100", [0.99, 0.99], [0.99, 0.989], 0.001, True)[0] == DISCARD
    status, reason, _ = decide_paired(noise, "h100", [0.9, 0.9], [1.0, 1.0], 0.001, calibrated=False)
    assert status == MARGINAL and "not calibrated" in reason


def test_a_promising_result_is_confirmed_beside_control_runs_then_kept(make_swarm_run, cli):
    run = calibrated_run(make_swarm_run, cli)
    baseline_sha = state_of(run).best(GROUP).train_sha256
    better = submit(run, cli, "gpu0", stand_in_train(val_bpb=0.99, offsets=(0.0, 0.001, -0.001)), "better")
    first = one_job(run, "0")
    assert first["id"] == better and first["status"] == PROMISING
    queued = [r for r in run.board.records() if r.get("verify_of") == better and r["status"] == "queued"]
    # two free slots: a rerun and a control on each, back to back, the control first on the second slot
    assert [(r["gpu"], bool(r["control"])) for r in queued] == [
        ("1", False),
        ("1", True),
        ("2", True),
        ("2", False),
    ]
    controls = [r for r in queued if r["control"]]
    assert {r["train_sha256"] for r in controls} == {baseline_sha}
    assert {r["agent"] for r in controls} == {"gpu0"} and {r["requested_by"] for r in queued} == {
        "confirmation"
    }
    assert [bool(r["control"]) for r in state_of(run).queue("2")] == [
        True,
        False,
    ]  # FIFO: the pair runs in order

    run_queued(run, "1")
    assert latest(run.board, better)["status"] == PROMISING  # one pair of two: still open
    control = latest(run.board, controls[0]["id"])
    assert control["status"] != PROMISING and "control run for the confirmation" in control["reason"]
    run_queued(run, "2")
    verdict = latest(run.board, better)
    assert verdict["status"] == KEEP and "2 reruns beside 2 control runs" in verdict["reason"]
    assert verdict["reference"] == first["reference"]
    (verification,) = [r for r in run.board.records() if r["type"] == "verification"]
    assert verification["verdict"] == KEEP and sorted(verification["controls"]) == sorted(
        c["id"] for c in controls
    )
    assert verification["control_mean"] == pytest.approx(1.0, abs=0.0011)
    state = state_of(run)
    assert state.best(GROUP).train_sha256 == first["train_sha256"] and state.best(GROUP).n == 3
    assert state.content(GROUP, baseline_sha).n == 5  # the controls are runs of the baseline too


@pytest.mark.parametrize("config, expected", [(FLOOR, {MARGINAL, DISCARD}), (UNPAIRED, {KEEP})])
def test_a_machine_that_got_faster_does_not_make_a_change_that_does_nothing_a_keep(
    make_swarm_run, cli, config, expected
):
    """The baselines ran while the machine was slow; the change, which does nothing, runs once it is fast:
    every run after that is 0.01 lower. Unpaired, its reruns agree with its lucky first run and it is
    kept; paired, its reruns are no better than the reference rerun beside them."""
    run = calibrated_run(make_swarm_run, cli, config=config)
    (run.state_dir / "drift").write_text("-0.01")
    null = submit(run, cli, "gpu0", BASELINE.replace("Stand-in trainer baseline", "a comment only"), "no-op")
    assert run_queued(run, "0")[0]["status"] == PROMISING
    run_queued(run, "1")
    run_queued(run, "2")
    run_queued(run, "0")
    assert latest(run.board, null)["status"] in expected


def test_when_the_confirmation_runs_fail_the_runs_there_are_decide(make_swarm_run, cli):
    run = calibrated_run(make_swarm_run, cli)
    better = submit(run, cli, "gpu0", stand_in_train(val_bpb=0.99, offsets=(0.0, 0.001, -0.001)), "better")
    run_queued(run, "0")
    # the reference's commit can no longer be trained here: its controls crash
    (run.state_dir / "drift").write_text("not a number")  # every stand-in now fails, reruns included
    run_queued(run, "1")
    run_queued(run, "2")
    verdict = latest(run.board, better)
    assert verdict["status"] in {KEEP, MARGINAL, DISCARD} and "control runs" not in verdict["reason"]


def test_unpaired_a_promising_result_is_confirmed_on_other_slots_then_kept(make_swarm_run, cli):
    run = calibrated_run(make_swarm_run, cli, config=UNPAIRED)
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


def test_unpaired_a_lucky_first_run_is_not_kept(make_swarm_run, cli):
    run = calibrated_run(make_swarm_run, cli, config=UNPAIRED)
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


def test_unpaired_a_crashed_confirmation_rerun_still_ends_in_a_verdict(make_swarm_run, cli):
    run = calibrated_run(make_swarm_run, cli, config=UNPAIRED)
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
