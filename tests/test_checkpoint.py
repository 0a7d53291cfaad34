"""The folded-state checkpoint: a restored state plus the records after it equals a full fold of the board, and
a checkpoint that is stale, torn, corrupt, forged or of another board is never used."""

from __future__ import annotations

import os
import pickle
import zlib

import orjson
import pytest

from swarm.board import envelope
from swarm.board.checkpoint import (
    CHECKPOINT_FILE,
    KIND,
    CheckpointKeeper,
    checkpoint_path,
    format_key,
    noise_key,
    open_state,
    restore,
    save,
)
from swarm.board.experiments import evolve
from swarm.board.fold import BoardState
from swarm.board.identity import mark
from swarm.board.packing import BoardRecords, pack
from swarm.board.store import Board
from swarm.testing.synthetic import synthetic_run, write_board


def _round(value):
    if isinstance(value, float):
        return round(value, 12)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_round(v) for v in value]
    return value


def state_view(state: BoardState) -> dict:
    """Everything a command or display asks a state, as plain data (floats to 12 digits: a fold in other
    pieces adds the same numbers in another order)."""
    groups = {
        "/".join(key): {
            "band": state.band(key),
            "sigma": group.pooled_sigma,
            "repeats": group.repeats,
            "top": [b.as_json() for b in state.top(key, 50)],
        }
        for key, group in state.groups.items()
    }
    # by id: a fold applies an experiment at its last record within a piece of board, so the order of
    # `experiments` depends on where the pieces were cut (a restored state's on where the checkpoint was)
    measured = sorted(
        (e for e in state.experiments.values() if e.get("val_bpb") is not None), key=lambda e: e["id"]
    )
    measured = measured[-20:]
    return _round(
        {
            "experiments": dict(state.experiments.items()),
            "bests": [b.as_json() for b in state.bests().values()],
            "groups": groups,
            "agents": [a.as_json() for a in state.agent_summaries()],
            "notes": state.notes,
            "usage": state.usage,
            "other": state.other,
            "run": state.run_record,
            "verifications": sorted(map(repr, state.verifications.items())),
            "adopted": repr(sorted((a, sorted(g.items())) for a, g in state.adopted.items())),
            "queued": state.queued_counts(),
            "running": state.running_slots(),
            "decide": [state.decide(e) for e in measured],
            "records_read": state.records_read,
            "progress": repr(state.progress.groups),
            "finish_times": state.finish_times,
        }
    )


def full_fold(board: Board) -> dict:
    state = BoardState(board)
    state.refresh()
    return state_view(state)


@pytest.fixture
def records():
    return list(synthetic_run(agents=6, experiments=240))


@pytest.fixture
def board(tmp_path, records):
    return write_board(tmp_path / "board", records)


def test_restored_state_equals_full_fold(board):
    first = open_state(board, save_after=0)  # folds from scratch and saves
    assert checkpoint_path(board).exists()
    restored = restore(board)
    assert restored is not None and isinstance(restored.experiments, BoardRecords)
    assert restored.reader.offset == board.path.stat().st_size
    restored.refresh()
    assert state_view(restored) == state_view(first) == full_fold(board)


def test_board_that_grew_folds_only_the_rest(tmp_path, records):
    half = len(records) // 2
    board = write_board(tmp_path / "board", records[:half])
    assert save(open_state(board, save_after=1 << 40))
    saved_at = board.path.stat().st_size
    write_board(board.directory, records[half:])
    restored = restore(board)
    assert restored is not None and restored.reader.offset == saved_at
    folded = len(restored.refresh())
    assert folded == len(records) - half  # only what came after the checkpoint was read
    assert state_view(restored) == full_fold(board)
    # a restored state that goes on folding and saves again stays equal
    assert save(restored)
    again = restore(board)
    again.refresh()
    assert state_view(again) == full_fold(board)


def test_a_restored_state_takes_results_back_as_a_fold_does(board, records):
    """Packed contents, agents' results and content holders (swarm.board.packing.PackedTable) are built when a later
    record of an old experiment (a verdict, a correction) takes its result back."""
    assert save(open_state(board, save_after=1 << 40))
    finals = [r for r in records if r.get("type") == "experiment" and r.get("val_bpb") is not None][:40]
    write_board(board.directory, [evolve(r, status="discard", val_bpb=r["val_bpb"] + 0.01) for r in finals])
    restored = restore(board)
    restored.refresh()
    assert state_view(restored) == full_fold(board)
    assert save(restored)  # partly built tables pack again
    again = restore(board)
    assert state_view(again) == full_fold(board)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: data[:-1] + bytes([data[-1] ^ 0x40]), id="flipped-payload-byte"),
        pytest.param(lambda data: data.replace(b'"offset": ', b'"offset": 1', 1), id="header-offset"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: b"garbage" + data, id="bad-magic"),
        pytest.param(lambda data: data.replace(b'"format": "', b'"format": "0', 1), id="other-format"),
    ],
)
def test_damaged_checkpoint_is_rebuilt(board, damage):
    save(open_state(board))
    path = checkpoint_path(board)
    path.write_bytes(damage(path.read_bytes()))
    assert restore(board) is None
    state = open_state(board, save_after=0)
    assert state_view(state) == full_fold(board)
    assert restore(board) is not None  # rebuilt: the next process restores again


def test_replaced_or_truncated_board_is_not_restored(tmp_path, records, board):
    save(open_state(board))
    # the same bytes in a new file (a copy moved into place): another inode, not trusted
    copy = board.path.with_name("copy")
    copy.write_bytes(board.path.read_bytes())
    os.replace(copy, board.path)
    assert restore(board) is None
    save(open_state(board))
    # truncated below the checkpoint's offset
    data = board.path.read_bytes()
    with open(board.path, "r+b") as f:
        f.truncate(len(data) // 2)
    assert restore(board) is None
    # rewritten in place (same inode) to a different board at least as long: the edge bytes differ
    other = b"".join(orjson.dumps(r) + b"\n" for r in synthetic_run(agents=6, experiments=260, seed=7))
    with open(board.path, "r+b") as f:
        f.truncate(0)
        f.write(other)
    assert board.path.stat().st_size >= len(data)
    assert restore(board) is None
    assert state_view(open_state(board)) == full_fold(board)


def test_forged_checkpoint_cannot_run_code(tmp_path, board):
    """A checkpoint with a valid header and CRC whose pickle calls a function is refused by the unpickler."""
    save(open_state(board))
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = checkpoint_path(board)
    fields = _fields(path)
    payload = pickle.dumps({"fields": {"x": Evil()}, "experiments": {}}, protocol=5)
    path.write_bytes(envelope.seal(KIND, fields, payload, key=None))
    assert restore(board) is None
    assert not marker.exists()
    # a well-formed pickle of the wrong shape is refused too
    payload = pickle.dumps({"fields": {"groups": []}, "experiments": {}}, protocol=5)
    path.write_bytes(envelope.seal(KIND, fields, payload, key=None))
    assert restore(board) is None


def _fields(path) -> dict:
    """The header fields of a checkpoint file, less the body's length and CRC (envelope.seal adds them)."""
    header, _ = envelope.open_envelope(KIND, path.read_bytes())
    return {k: v for k, v in header.items() if k not in ("body_bytes", "body_crc32")}


def test_a_checkpoint_in_the_format_before_the_envelope_is_rebuilt(board):
    """A checkpoint as the code before swarm.board.envelope wrote it (its own magic, an orjson header, the
    same payload, every check it made passing) is not trusted: the board is folded and a new one saved."""
    state = open_state(board)
    payload = pack(state)
    header = {
        "format": format_key(),
        **mark(board.path, state.reader.offset),
        "payload_bytes": len(payload),
        "payload_crc32": zlib.crc32(payload),
        "noise": noise_key(state.noise),
    }
    checkpoint_path(board).write_bytes(b"swarm board checkpoint\n" + orjson.dumps(header) + b"\n" + payload)
    assert restore(board) is None
    assert state_view(open_state(board, save_after=0)) == full_fold(board)
    assert restore(board) is not None  # replaced by one in the envelope


def test_a_process_that_cannot_write_just_folds(board):
    checkpoint_path(board).mkdir()  # the checkpoint's name is taken: os.replace fails as on a read-only board
    state = open_state(board, save_after=0)
    assert not save(state)
    assert state_view(state) == full_fold(board)
    assert [p.name for p in board.directory.iterdir() if p.name.startswith(f".{CHECKPOINT_FILE}")] == []


def test_keeper_saves_as_the_board_grows(tmp_path, records):
    board = write_board(tmp_path / "board", records[:50])
    keeper = CheckpointKeeper.restore(board, every=10_000)
    assert not keeper.restored
    keeper.state.refresh()
    assert keeper.tick()  # 50 records are more than 10 kB past offset 0
    assert not keeper.tick()  # nothing new
    write_board(board.directory, records[50:])
    keeper.state.refresh()
    assert keeper.tick()
    again = CheckpointKeeper.restore(board)
    assert again.restored and again.state.reader.offset == board.path.stat().st_size
    assert state_view(again.state) == full_fold(board)


def test_watch_from_a_checkpoint_shows_what_a_full_fold_shows(tmp_path, records):
    """The watch model restores on its first refresh and replays the restored experiments into its progress
    series: its first snapshot equals that of a model that folded the whole board."""
    from swarm.testing.synthetic import end_of
    from swarm.tui.model import WatchModel

    now = end_of(records)
    board = write_board(tmp_path / "board", records)
    folded = WatchModel(board.directory, clock=lambda: now)
    expected = folded.refresh()
    assert folded.keeper is not None and not folded.keeper.restored
    save(open_state(board))
    restored = WatchModel(board.directory, clock=lambda: now)
    snapshot = restored.refresh()
    assert restored.keeper.restored and isinstance(restored.state.experiments, BoardRecords)
    assert (snapshot.header, snapshot.agents, snapshot.leaders) == (
        expected.header,
        expected.agents,
        expected.leaders,
    )
    assert restored.state.progress.groups == folded.state.progress.groups  # the plot's series
    assert restored._usage == folded._usage and restored._baseline_sha == folded._baseline_sha
    # none of the experiment records had to be read for that first screen, but the few it shows and the runs
    # of the confirmed contents (when each was confirmed places the steps of the best's line)
    group = next(iter(restored.state.groups.values()))
    confirmed_runs = sum(group.contents[sha].n for sha in group.confirmed_shas())
    assert sum(type(v) is dict for v in restored.state.experiments._table.values()) < 50 + confirmed_runs


def test_a_signed_boards_checkpoint_must_come_from_a_key_holder(tmp_path, records):
    """On a signed board (swarm.board.signing), a process without the key folds unsigned lines as records,
    so it never saves a checkpoint; and a checkpoint a key holder did not write (forged, or its payload
    changed with the CRC fixed up) is refused by a process that holds the key."""
    from swarm.board.signing import create_key

    directory = tmp_path / "board"
    directory.mkdir()
    create_key(directory)
    board = Board(directory)
    board.create()
    for record in records:
        board.append(record)
    honest = open_state(board, save_after=0)
    assert restore(Board(directory)) is not None  # a key holder's checkpoint is used

    keyless = Board(directory)
    keyless._key = (
        b""  # as inside an agent's sandbox, where board/keys/ is hidden (falsy: load_key not retried)
    )
    keyless.signing_key = lambda: None
    checkpoint_path(board).unlink()
    assert save(BoardState(keyless)) is False and not checkpoint_path(board).exists()

    save(honest)
    fields = _fields(checkpoint_path(board))
    tampered = open_state(Board(directory))
    tampered.notes.append({"type": "note", "agent": "gpu0", "text": "forged"})
    forged = pack(tampered)  # a well-formed state that no fold of this board gives
    fields.pop("mac")
    assert restore_unsigned(directory, fields, forged) is not None  # so only the MAC refuses it below
    checkpoint_path(board).write_bytes(envelope.seal(KIND, fields, forged, key=None))
    assert restore(Board(directory)) is None  # no MAC
    fields["mac"] = "0" * 64
    checkpoint_path(board).write_bytes(envelope.seal(KIND, fields, forged, key=None))
    assert restore(Board(directory)) is None  # a wrong MAC
    assert state_view(open_state(Board(directory))) == state_view(honest)


def restore_unsigned(directory, fields, payload):
    """What restore() makes of these header fields and payload on an unsigned copy of the board."""
    import shutil

    copy = directory.parent / "unsigned"
    shutil.copytree(directory, copy, ignore=shutil.ignore_patterns("keys", CHECKPOINT_FILE))
    stat = (copy / "board.jsonl").stat()
    fields = {**fields, "device": stat.st_dev, "inode": stat.st_ino}
    checkpoint_path(Board(copy)).write_bytes(envelope.seal(KIND, fields, payload, key=None))
    return restore(Board(copy))
