"""Early stop: a run whose loss curve is clearly behind the best's is stopped and recorded `pruned`."""

import json

import pytest

from swarm.board.experiments import PRUNED, new_experiment
from swarm.board.fold import BoardState
from swarm.board.noise import NoiseSettings
from swarm.config import load_section
from swarm.runner.pruning import CurveCache, PruningSettings, loss_at, parse_curve, reference_curve
from swarm.runner.service import Runner, RunnerSettings
from tests.support.swarm_run import STAND_IN_SETTINGS, latest, stand_in_train, submit

PRUNING = PruningSettings(enabled=True, poll_s=0.05, min_fraction=0.3, margin=0.05, patience=2)
GOOD = [4.0, 3.5, 3.0, 2.8, 2.6, 2.5, 2.4, 2.3, 2.2, 2.1]  # ends at 2.1 for a val_bpb of 1.05: ratio 0.5
GROUP = ("Test GPU", "tiny")


def curve_train(losses, val_bpb, marker, step_s=0.05):
    """A stand-in trainer that prints progress lines like train.py's (one per tenth of the budget)."""
    n = len(losses)
    loop = (
        f"for i, loss in enumerate({list(losses)!r}):\n"
        f"    pct = 100 * (i + 1) / {n}\n"
        '    print("step %05d (%5.1f%%) loss %.4f lrm 1.00" % (i + 1, pct, loss), flush=True)\n'
        f"    time.sleep({step_s})\n"
    )
    return stand_in_train(val_bpb=val_bpb, marker=marker).replace(
        "time.sleep(0.0)\n", "time.sleep(0.0)\n" + loop, 1
    )


def runner(run, slot, pruning=PRUNING):
    noise = load_section(run.repo, "noise", NoiseSettings)
    return Runner(
        run.repo,
        run.board,
        slot,
        RunnerSettings(**STAND_IN_SETTINGS),
        noise,
        log=lambda line: None,
        pruning=pruning,
    )


def test_progress_lines_make_a_curve():
    text = b"profile tiny\nstep 00001 (  3.3%) loss 5.5000 lrm 1.00 dt 12ms\nstep 00009 ( 50.0%) loss 4.2500 lrm\n"
    curve = parse_curve(text + b"step 00020 (100.0%) loss 3.0e+00 lrm 0.10\n---\nval_bpb: 1.0\n")
    assert curve == [(0.033, 5.5), (0.5, 4.25), (1.0, 3.0)]
    assert loss_at(curve, 0.75) == pytest.approx(3.625) and loss_at(curve, 0.01) is None


@pytest.mark.slow  # five stand-in runs that step on the wall clock
def test_a_hopeless_run_is_stopped_and_a_good_one_is_not(make_swarm_run, cli):
    run = make_swarm_run(config="[noise]\nfloor = {tiny = 1e-4}\n", agents=("gpu0", "gpu1", "gpu2"))
    baseline = curve_train(GOOD, 1.05, "baseline")
    for agent in ("gpu0", "gpu1", "gpu2"):
        submit(run, cli, agent, baseline, "baseline")
    for slot in ("0", "1", "2"):
        assert runner(run, slot).step()["status"] == "keep"
    state = BoardState(run.board)
    state.refresh()
    assert state.best(GROUP).n == 3  # a confirmed best: its curves are the reference

    hopeless = submit(
        run, cli, "gpu0", curve_train([x * 1.3 for x in GOOD], 1.2, "hopeless", step_s=0.2), "bad"
    )
    record = runner(run, "0").step()
    assert record["id"] == hopeless and record["status"] == PRUNED and record["val_bpb"] is None
    assert "clearly behind the best" in record["reason"]
    assert 0 < record["saved_seconds"] <= 2 * 0.7  # the tiny budget is 2 s; stopped after 30% of it or more
    log = (run.board.directory / record["log"]).read_text()
    assert "val_bpb" not in log  # the trainer was ended before its summary
    # a pruned run is no measurement: nothing of it reaches the statistics
    state.refresh()
    assert state.content(GROUP, record["train_sha256"]) is None

    fine = submit(run, cli, "gpu1", curve_train([x * 0.99 for x in GOOD], 1.04, "fine"), "fine")
    assert runner(run, "1").step()["id"] == fine
    assert latest(run.board, fine)["status"] != PRUNED
    # off (the default): the hopeless curve runs to its end
    again = submit(run, cli, "gpu2", curve_train([x * 1.3 for x in GOOD], 1.2, "hopeless 2"), "bad again")
    off = runner(run, "2", PruningSettings())
    while off.step()["id"] != again:  # after the confirmation reruns of `fine` queued there
        pass
    assert latest(run.board, again)["val_bpb"] == pytest.approx(1.2)


def _write_run(board, curves, eid, sha, val_bpb, losses, slot):
    log = f"logs/{eid}.log"
    lines = [
        f"step {i + 1:05d} ({100 * (i + 1) / len(losses):5.1f}%) loss {x:.4f}" for i, x in enumerate(losses)
    ]
    (board.directory / log).write_text("\n".join(lines) + "\n")
    board.append(
        new_experiment(
            id=eid, agent=f"gpu{slot}", gpu=slot, device=GROUP[0], profile="tiny", train_sha256=sha,
            val_bpb=val_bpb, status="keep", log=log, finished_at=float(len(board.records())),
        )
    )  # fmt: skip


def test_a_forged_low_curve_is_never_a_reference(tmp_path):
    from swarm.board.store import Board

    board = Board(tmp_path / "board").create()
    curves = CurveCache(board.directory)
    state = BoardState(board, NoiseSettings(floor={"tiny": 1e-4}))
    for k in range(3):  # honest baseline runs: final loss 2.1 for val_bpb 1.05
        _write_run(board, curves, f"base{k}", "base", 1.05 + 0.001 * k, GOOD, str(k))
    state.refresh()
    assert reference_curve(state, GROUP, curves, PRUNING)[-1] == (1.0, pytest.approx(2.1))
    # a train.py that prints a curve far below what its measured val_bpb says, and is the best
    for k in range(3):
        _write_run(board, curves, f"forge{k}", "forged", 1.0, [x / 3 for x in GOOD], str(k))
    state.refresh()
    assert state.best(GROUP).train_sha256 == "forged"
    assert reference_curve(state, GROUP, curves, PRUNING) is None  # untrusted: nobody is stopped by it
    assert json.dumps(PruningSettings().__dict__)  # plain settings, as swarm.toml gives them
