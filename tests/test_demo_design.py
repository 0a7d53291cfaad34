"""What makes the 3-minute demo show the swarm working: the sweep's first proposal on the tiny profile is
the likeliest gain, and a demo whose time is up waits for a confirmation already under way."""

from __future__ import annotations

from swarm.agents.sweep.proposals import PRIORITY, Planner, rotation
from swarm.board.fold import BoardState
from swarm.demo import awaiting
from swarm.target.hparams import read_knobs
from tests.support.gitrepo import TRAIN
from tests.support.target import REPO_ROOT
from tests.support.watch import T0, experiment, finish, make_board


def test_the_sweep_opens_with_the_tiny_profiles_likeliest_gain():
    knobs = read_knobs((REPO_ROOT / "train.py").read_text(), "tiny")
    config = {name: knob.value for name, knob in knobs.items()}
    first = next(Planner("cpu0", "tiny").proposals(config))
    (change,) = first.changes
    assert change.name == "Q_SCALE" and change.new > change.old  # larger first on tiny
    # other profiles keep the published runs' order, smaller move first
    names = list(read_knobs(TRAIN, "h100"))
    assert rotation(names, "gpu0", "h100")[0] == next(n for n in PRIORITY if n in names)
    h100 = next(Planner("gpu0", "h100").proposals({"TOTAL_BATCH_SIZE": 2**19, "Q_SCALE": 1.0}))
    assert str(h100.changes[0]) == "TOTAL_BATCH_SIZE 524288 -> 262144"
    # each agent still starts somewhere else
    assert rotation(list(config), "cpu1", "tiny")[0] != "Q_SCALE"


def test_the_demo_waits_only_for_results_awaiting_their_verdict(tmp_path):
    board = make_board(tmp_path / "board")
    base = experiment("gpu0", at=T0)
    board.append(finish(base, 1.0, status="keep", sha="sha-base"))
    lucky = experiment("gpu1", at=T0 + 10, description="lucky")
    board.append(finish(lucky, 0.9, status="promising", sha="sha-lucky"))
    rerun = experiment("gpu0", at=T0 + 20, verify_of=lucky["id"], requested_by="confirmation")
    board.append(finish(rerun, 0.91, status="promising", sha="sha-lucky"))
    state = BoardState(board)
    assert [e["id"] for e in awaiting(state)] == [lucky["id"]]  # not its rerun, not the baseline
    board.append({**finish(lucky, 0.9, status="keep", sha="sha-lucky"), "reason": "confirmed"})
    assert awaiting(state) == []
