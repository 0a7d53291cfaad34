"""The coordinator's verifier: each group's new best is rerun once on another slot, and only once."""

from swarm.board.noise import NoiseSettings
from swarm.orchestration.best_verifier import BestVerifier
from tests.support.swarm_run import latest, run_queued, stand_in_train, submit

SINGLE = NoiseSettings(rule="single")  # under `confirm` bests are confirmed already (test_confirmation.py)


def test_new_best_is_verified_once_on_another_slot(make_swarm_run, cli):
    run = make_swarm_run(agents=("gpu0", "gpu1"))
    verifier = BestVerifier(run.board, noise=SINGLE)
    assert verifier.tick() == []  # an empty board: nothing to verify

    first = submit(run, cli, "gpu0", stand_in_train(val_bpb=0.97), "good")
    run_queued(run, "0", SINGLE)
    assert verifier.tick() == [f"verify {first} on 1"]
    assert verifier.tick() == []  # queued already: not twice
    run_queued(run, "1", SINGLE)
    assert verifier.tick() == []  # verified now
    (best,) = verifier.state.bests().values()
    assert best.experiment["id"] == first and best.verified and best.n == 2

    # A better result is a new best: verified in its turn, by a rerun whose mean does not hold.
    second = submit(run, cli, "gpu1", stand_in_train(val_bpb=0.90, offsets=(0.0, 0.05)), "lucky")
    run_queued(run, "1", SINGLE)
    assert verifier.tick() == [f"verify {second} on 0"]
    run_queued(run, "0", SINGLE)
    assert latest(run.board, second)["val_bpb"] == 0.90
    # The failed verification is an answer: that content is not queued again, also by a new coordinator.
    assert [r["held"] for r in run.board.records() if r["type"] == "verification"] == [True, False]
    assert verifier.tick() == [] and BestVerifier(run.board, noise=SINGLE).tick() == []


def test_a_class_with_one_slot_is_not_verified_unasked(make_swarm_run, cli):
    run = make_swarm_run(agents=("gpu0", "gpu1"), devices={"1": "Other GPU"})
    submit(run, cli, "gpu0", stand_in_train(val_bpb=0.97), "good")
    run_queued(run, "0", SINGLE)
    assert (
        BestVerifier(run.board, noise=SINGLE).tick() == []
    )  # gpu1 is of another class: its timing would not compare
