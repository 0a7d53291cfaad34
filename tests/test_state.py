"""BoardState: incremental folding, repeat statistics, noise band, bests, agent summaries, decisions."""

import pytest

from swarm.board.experiments import evolve, new_experiment
from swarm.board.fold import BoardState
from swarm.board.noise import NoiseSettings
from swarm.board.run_record import AgentEntry, SwarmRecord, write_run_record
from swarm.board.store import ADOPT, NOTE, USAGE, VERIFICATION, Board
from swarm.errors import BoardError

H100 = ("NVIDIA H100 80GB HBM3", "h100")
# The `single` rule: one run is a best and decides (screen-then-confirm: tests/test_confirmation.py)
SINGLE = NoiseSettings(rule="single")


def result(agent, sha, val, status="discard", gpu="0", group=H100, **fields):
    return new_experiment(
        agent=agent,
        gpu=gpu,
        device=group[0],
        profile=group[1],
        train_sha256=sha,
        val_bpb=val,
        status=status,
        **fields,
    )


@pytest.fixture
def board(tmp_path):
    return Board(tmp_path / "board").create()


def test_latest_record_of_an_id_wins_and_statistics_follow(board):
    state = BoardState(board, SINGLE)
    queued = board.append(new_experiment(agent="gpu0", gpu="0", device=H100[0], profile="h100"))
    state.refresh()
    assert [e["id"] for e in state.queue("0")] == [queued["id"]]
    board.append(evolve(queued, status="running"))
    state.refresh()
    assert state.queue("0") == [] and state.running("0")["id"] == queued["id"]
    assert state.agent_summary("gpu0").current == queued["id"]
    board.append(evolve(queued, status="keep", val_bpb=1.0, train_sha256="a"))
    state.refresh()
    assert state.running("0") is None
    assert state.best(H100).mean == 1.0 and state.best(H100).n == 1
    # a correction record replaces the earlier value in the statistics, it does not add a second run
    board.append(evolve(queued, status="keep", val_bpb=0.9, train_sha256="a"))
    state.refresh()
    assert state.best(H100).n == 1 and state.best(H100).mean == pytest.approx(0.9)
    summary = state.agent_summary("gpu0")
    assert summary.counts == {"keep": 1} and summary.last == queued["id"] and summary.current is None


def test_refresh_reads_only_what_was_appended(board):
    state = BoardState(board)
    board.append(result("gpu0", "a", 1.0))
    assert len(state.refresh()) == 1
    assert state.refresh() == []
    board.append({"type": NOTE, "agent": "gpu0", "text": "try wider"})
    board.append({"type": USAGE, "agent": "gpu0", "tokens": 10})
    board.append({"type": "something-new", "x": 1})
    assert len(state.refresh()) == 3
    assert [n["text"] for n in state.notes] == ["try wider"]
    assert state.usage[0]["tokens"] == 10 and state.other[0]["x"] == 1
    assert state.records_read == 4


def test_repeats_give_content_sigma_pooled_sigma_and_band(board):
    state = BoardState(board, NoiseSettings(floor={"h100": 1e-4}, rule="single"))
    for val in (1.0, 1.002, 1.004):  # sigma 0.002
        board.append(result("gpu0", "base", val))
    for val in (0.99, 0.994):  # squared deviations 8e-6, one degree of freedom
        board.append(result("gpu1", "wide", val, gpu="1"))
    board.append(result("gpu2", "other", 0.95, gpu="2", group=("cpu", "tiny")))  # another group
    state.refresh()
    base = state.content(H100, "base")
    assert base.n == 3 and base.mean == pytest.approx(1.002) and base.sigma == pytest.approx(0.002)
    group = state.group(H100)
    pooled = ((8e-6 + 8e-6) / (2 + 1)) ** 0.5
    assert group.pooled_sigma == pytest.approx(pooled)
    assert state.band(H100) == pytest.approx(2 * pooled)
    best = state.best(H100)
    assert best.train_sha256 == "wide" and best.n == 2 and best.mean == pytest.approx(0.992)
    assert state.best(("cpu", "tiny")).mean == 0.95  # never compared across groups
    assert state.band(("cpu", "tiny")) == NoiseSettings().floor_for("tiny")  # no repeats: the floor
    assert [b.train_sha256 for b in state.top(H100, 5)] == ["wide", "base"]


def test_floor_wins_when_repeats_agree(board):
    state = BoardState(board, NoiseSettings(floor={"h100": 3e-4}))
    board.append(result("gpu0", "base", 1.0))
    board.append(result("gpu1", "base", 1.0, gpu="1"))
    state.refresh()
    assert state.group(H100).pooled_sigma == 0.0 and state.band(H100) == 3e-4


def test_best_moves_when_its_own_repeats_get_worse(board):
    state = BoardState(board, SINGLE)
    board.append(result("gpu0", "lucky", 0.990))
    board.append(result("gpu1", "steady", 0.995, gpu="1"))
    state.refresh()
    assert state.best(H100).train_sha256 == "lucky"
    board.append(result("gpu2", "lucky", 1.010, gpu="2"))  # a rerun: mean 1.000
    state.refresh()
    assert state.best(H100).train_sha256 == "steady"


def test_verification_and_discoverer(board):
    state = BoardState(board, SINGLE)
    first = board.append(result("gpu0", "wide", 0.99, submitted_at=100.0))
    board.append(result("gpu1", "wide", 0.991, gpu="1", submitted_at=200.0))
    state.refresh()
    best = state.best(H100)
    assert best.experiment["id"] == first["id"] and not best.verified
    board.append(
        {
            "type": VERIFICATION,
            "id": first["id"],
            "device": H100[0],
            "profile": "h100",
            "train_sha256": "wide",
            "held": True,
        }
    )
    state.refresh()
    assert state.best(H100).verified
    assert state.best(H100).as_json()["verified"] is True


def test_decide_compares_with_the_agents_current_best(board):
    state = BoardState(board, NoiseSettings(floor={"h100": 1e-3}, rule="single"))
    probe = result("gpu0", "x", 1.0, status=None)
    assert state.decide(probe)[0] == "keep"  # first result: the baseline
    board.append(result("gpu0", "base", 1.0, status="keep"))
    board.append(result("gpu0", "worse", 1.01, status="discard"))
    state.refresh()
    assert state.decide(result("gpu0", "b", 0.9995))[0] == "marginal"
    status, reason, reference, band = state.decide(result("gpu0", "c", 0.9985))
    assert status == "keep" and band == 1e-3
    assert reference == state.content(H100, "base").first_id
    assert state.decide(result("gpu0", "d", 1.0))[0] == "discard"
    assert state.decide(result("gpu0", "e", 1.0005))[0] == "discard"
    # the rerun of a content is judged on its mean, and never against itself
    assert state.decide(result("gpu0", "base", 0.99))[0] == "keep"
    # another agent's results are not this agent's reference
    assert state.decide(result("gpu9", "z", 1.05))[0] == "keep"


def test_adopted_content_becomes_the_reference(board):
    state = BoardState(board, NoiseSettings(floor={"h100": 1e-3}))
    board.append(result("gpu0", "base", 1.0, status="keep"))
    board.append(result("gpu1", "great", 0.95, status="keep", gpu="1"))
    board.append(
        {"type": ADOPT, "agent": "gpu0", "train_sha256": "great", "device": H100[0], "profile": "h100"}
    )
    state.refresh()
    assert state.decide(result("gpu0", "n", 0.97))[0] == "discard"


def test_agent_summary_and_prefix_lookup(board):
    state = BoardState(board, SINGLE)
    a = board.append(result("gpu0", "base", 1.0, status="keep", id="abc12345"))
    board.append(result("gpu0", "w", 0.98, status="keep", id="abd00000"))
    board.append(result("gpu0", "c", None, status="crash", id="ffff0000"))
    board.append(result("gpu1", "base", 1.0, status="keep", gpu="1", id="12345678"))
    state.refresh()
    summary = state.agent_summary("gpu0")
    assert summary.counts == {"keep": 2, "crash": 1} and summary.best == "abd00000"
    assert summary.last == "ffff0000" and summary.submitted == 3
    assert state.experiment("abc")["id"] == a["id"]
    assert state.experiment("ABC1")["id"] == a["id"]
    with pytest.raises(BoardError, match="ambiguous"):
        state.experiment("ab")
    with pytest.raises(BoardError, match="unknown experiment id"):
        state.experiment("9")
    # gpu1's repeat of the baseline moves no one's best; a better content elsewhere does not either
    assert [s.name for s in state.agent_summaries()] == ["gpu0", "gpu1"]


def test_run_record_round_trip(board):
    run = SwarmRecord(
        tag="t",
        base="f" * 40,
        profile="tiny",
        agents=(AgentEntry("cpu0", "sweep", "cpu0", "cpu", "/w/cpu0", "swarm/t/cpu0"),),
    )
    write_run_record(board, run)
    state = BoardState(board)
    state.refresh()
    assert state.run == SwarmRecord.from_record(run.to_record())
    assert state.run.device_for_slot("cpu0") == "cpu" and state.run.device_for_slot("3") == "gpu3"


def test_observers_see_every_folded_record_whoever_refreshes(board):
    state = BoardState(board)
    seen = []
    state.observers.append(
        lambda record: seen.append((record["id"], state.experiments[record["id"]]["status"]))
    )
    queued = board.append(new_experiment(agent="gpu0", gpu="0", device=H100[0], profile="h100"))
    state.refresh()
    board.append(evolve(queued, status="keep", val_bpb=1.0, train_sha256="a"))
    state.apply(board.records()[-1])  # a writer folding its own append is observed too
    assert seen == [(queued["id"], "queued"), (queued["id"], "keep")]  # called after the fold


def test_run_is_parsed_once_per_run_record(board):
    state = BoardState(board)
    assert state.run is None
    slot = AgentEntry("gpu0", "claude", "0", H100[0], "/w/gpu0", "swarm/t/gpu0")
    write_run_record(board, SwarmRecord(tag="t", base="b" * 40, profile="h100", agents=(slot,)))
    state.refresh()
    first = state.run
    assert first.tag == "t" and state.run is first  # the same object while the record is the same
    write_run_record(
        board, SwarmRecord(tag="t", base="b" * 40, profile="h100", agents=(slot,), created_at=1.0)
    )
    state.refresh()
    assert state.run is not first and state.run.created_at == 1.0


def test_cached_top_and_agent_bests_match_a_fresh_fold(board):
    """Random results, repeats and corrections folded one by one: the incrementally kept top-n and agents'
    bests equal those of a state that folds the same board from scratch."""
    import random

    rng = random.Random(5)
    state = BoardState(board)
    written = []
    for step in range(400):
        if written and rng.random() < 0.2:  # a correction of an earlier experiment
            record = evolve(rng.choice(written), val_bpb=rng.uniform(0.9, 1.0))
        else:
            sha = f"c{rng.randrange(60)}"  # few contents: plenty of repeats across agents
            group = ("cpu", "tiny") if rng.random() < 0.1 else H100  # now and then another group
            record = result(f"gpu{rng.randrange(5)}", sha, rng.uniform(0.9, 1.0), group=group)
        written.append(board.append(record))
        state.refresh()
        top = [c.train_sha256 for c in state.top(H100, 5)]  # asked every step, as a display does
        if step % 7 == 0:
            fresh = BoardState(board)
            fresh.refresh()
            assert top == [c.train_sha256 for c in fresh.top(H100, 5)], step
            for agent in fresh.agents:
                assert state.agent_summary(agent).best == fresh.agent_summary(agent).best, (step, agent)


def test_follow_folds_a_board_in_pieces_like_refresh(board, monkeypatch):
    import swarm.board.fold

    for i in range(30):
        board.append(result(f"gpu{i % 3}", f"c{i % 7}", 1.0 - i / 1000, description="x" * (i * 40)))
    whole = BoardState(board)
    assert len(whole.refresh()) == 30
    monkeypatch.setattr(swarm.board.fold, "FOLD_CHUNK_BYTES", 700)  # smaller than the longest line
    pieces = BoardState(board)
    reads = []
    original = pieces.reader.read_new
    monkeypatch.setattr(
        pieces.reader, "read_new", lambda n=None, positions=None: reads.append(n) or original(n, positions)
    )
    assert pieces.follow() == 30 and len(reads) > 10
    assert pieces.experiments == whole.experiments and pieces.reader.offset == whole.reader.offset
    assert pieces.experiment_at == whole.experiment_at  # each latest record's line, whatever the pieces
    assert [c.train_sha256 for c in pieces.top(H100, 7)] == [c.train_sha256 for c in whole.top(H100, 7)]
    assert pieces.follow() == 0


def test_observers_see_every_record_even_when_a_batch_is_collapsed(board):
    state = BoardState(board)
    seen = []
    state.observers.append(lambda r: seen.append((r.get("id"), r.get("status"))))
    queued = board.append(new_experiment(agent="gpu0", gpu="0", device=H100[0], profile="h100", id="e1"))
    board.append(evolve(queued, status="running"))
    board.append(evolve(queued, status="keep", val_bpb=1.0, train_sha256="a"))
    state.refresh()  # one batch: only the last record of e1 is folded
    assert seen == [("e1", "queued"), ("e1", "running"), ("e1", "keep")]
    assert state.records_read == 3 and state.agent_summary("gpu0").counts == {"keep": 1}
    assert state.agent_summary("gpu0").submitted == 1
