"""The board's core contract: whole-line appends, incremental reads, torn lines skipped."""

from swarm.board.store import EXPERIMENT, Board


def test_incremental_reader_returns_only_new_records(tmp_path):
    board = Board(tmp_path).create()
    reader = board.reader()
    board.append({"type": EXPERIMENT, "id": "a", "status": "queued"})
    assert [r["id"] for r in reader.read_new()] == ["a"]
    assert reader.read_new() == []
    board.append({"type": EXPERIMENT, "id": "b", "status": "queued"})
    assert [r["id"] for r in reader.read_new()] == ["b"]


def test_torn_last_line_is_skipped_and_later_appends_still_parse(tmp_path):
    board = Board(tmp_path).create()
    board.append({"type": EXPERIMENT, "id": "a"})
    with open(board.path, "ab") as f:
        f.write(b'{"type":"experiment","id":"torn","val_')  # a writer killed mid-append
    reader = board.reader()
    assert [r["id"] for r in reader.read_new()] == ["a"]  # the partial line is not consumed yet
    board.append({"type": EXPERIMENT, "id": "b"})
    assert [r["id"] for r in reader.read_new()] == ["b"]
    assert reader.skipped == 1
    assert [r["id"] for r in board.records()] == ["a", "b"]
