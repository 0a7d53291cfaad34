"""Signed boards: a line appended by anyone without the board's key (an agent, a trainer) is never folded,
and is counted, and doctor and watch say so; boards without a key read as they always did."""

from __future__ import annotations

import json

from swarm.board.fold import BoardState
from swarm.board.signing import create_key, key_dir
from swarm.board.store import Board
from tests.support.swarm_run import make_run


def _forge(board: Board, record: dict) -> None:
    with open(board.path, "ab") as f:  # what a process without the key can do at best
        f.write(json.dumps(record).encode() + b"\n")


def test_unsigned_and_badly_signed_lines_are_never_folded(tmp_path):
    run = make_run(tmp_path)
    create_key(run.board.directory)
    board = Board(run.board.directory)
    note = board.append({"type": "note", "id": "n1", "agent": "cpu0", "text": "signed"})
    forged = {"type": "experiment", "id": "f0f0f0f0", "agent": "cpu0", "gpu": "cpu0", "device": "cpu"}
    forged |= {"profile": "tiny", "status": "keep", "val_bpb": 0.1, "train_sha256": "x" * 64}
    _forge(board, forged)
    signed = board.path.read_bytes().splitlines()[-2]
    tampered = signed.replace(b'"signed"', b'"edited"')
    with open(board.path, "ab") as f:
        f.write(tampered + b"\n")
    state = BoardState(board)
    state.refresh()
    assert state.experiments == {} and state.best(("cpu", "tiny")) is None
    assert [n["text"] for n in state.notes] == ["signed"] and "sig" not in state.notes[0]
    assert state.notes[0] == note
    # The run record, written before the key existed, is unsigned too: a board is signed from its start
    # (swarm spawn makes the key with the board); here the key came later, so the run is gone as well.
    assert state.run is None and state.forged == 3 and b"f0f0f0f0" in state.forged_lines[1]


def test_a_reader_without_the_key_and_a_board_without_one_fold_every_line(tmp_path):
    run = make_run(tmp_path)
    _forge(run.board, {"type": "note", "id": "n2", "agent": "cpu0", "text": "unsigned"})
    state = BoardState(run.board)
    state.refresh()
    assert state.forged == 0 and state.run is not None and len(state.notes) == 1
    create_key(run.board.directory)
    signed = Board(run.board.directory)
    signed.append({"type": "note", "id": "n3", "agent": "cpu0", "text": "signed"})
    (key_dir(run.board.directory) / "board.key").rename(tmp_path / "hidden.key")  # an agent's view
    blind = BoardState(Board(run.board.directory))
    blind.refresh()
    assert [n["text"] for n in blind.notes] == ["unsigned", "signed"] and blind.forged == 0


def test_doctor_says_when_a_forged_line_appears_and_what_the_sandbox_is(tmp_path):
    from swarm import doctor

    run = make_run(tmp_path, signed=True)
    assert "signed, every line" in dict(doctor.board_rows(run.repo))["board"]
    _forge(run.board, {"type": "experiment", "id": "f0f0f0f0", "status": "keep", "val_bpb": 0.1})
    row = dict(doctor.board_rows(run.repo))["board"]
    assert row.startswith("WARNING: 1 line(s) without a valid signature") and "f0f0f0f0" in row
    from swarm.tui.header import header_text
    from swarm.tui.model import WatchModel

    header = WatchModel(run.board.directory, control_for=lambda tag: None).refresh().header
    assert header.forged == 1 and "1 board line(s) not written by a runner" in header_text(header).plain
    name, value = doctor.sandbox_row()
    assert name == "sandbox" and (value.endswith(": works") or value.startswith("NONE: "))
