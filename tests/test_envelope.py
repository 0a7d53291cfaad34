"""The one envelope of trusted files beside the board (swarm.board.envelope): what it writes is read back
only by a reader of the same kind and code, for the same board as long as it was, whole, and on a signed
board only when a key holder wrote it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from swarm.board import envelope
from swarm.board.keys import create_key, load_key
from swarm.board.store import Board

NAME = "state.test"
KIND = "test"
FMT = "code-1"


@pytest.fixture
def board(tmp_path):
    board = Board(tmp_path / "board").create()
    for i in range(20):
        board.append({"type": "note", "agent": "gpu0", "text": f"note {i}"})
    return board


def write(board, body=b"payload", offset=None, key=None, **fields):
    offset = board.path.stat().st_size if offset is None else offset
    return envelope.write(board.directory, NAME, KIND, FMT, offset, fields, lambda: body, key)


def read(board, key=None, exact=True, kind=KIND, fmt=FMT):
    return envelope.read(board.directory, NAME, kind, fmt, key, exact)


def test_what_is_written_is_read_back_with_its_fields(board):
    assert write(board, b"hello", noise="n1")
    header, body = read(board)
    assert body == b"hello" and header["noise"] == "n1" and header["offset"] == board.path.stat().st_size
    assert (board.directory / NAME).read_bytes().startswith(envelope.magic(KIND))


def test_another_kind_or_code_is_not_trusted(board):
    assert write(board)
    assert read(board, kind="other") is None
    assert read(board, fmt="code-2") is None


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[:-1], id="torn"),
        pytest.param(lambda data: data[:-1] + bytes([data[-1] ^ 1]), id="flipped-body-byte"),
        pytest.param(lambda data: data[: data.index(b"\n") + 5], id="torn-header"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: b"\xff" * 100, id="garbage"),
        pytest.param(lambda data: data.replace(b"{", b"[", 1), id="header-not-an-object"),
    ],
)
def test_a_damaged_file_is_not_trusted(board, damage):
    assert write(board)
    path = board.directory / NAME
    path.write_bytes(damage(path.read_bytes()))
    assert read(board) is None


def test_the_board_must_be_the_one_it_was_taken_of(board):
    assert write(board)
    board.append({"type": "note", "agent": "gpu0", "text": "later"})
    assert read(board, exact=True) is None  # one more line: not this board's length any more
    assert read(board, exact=False) is not None  # a checkpoint's reader: folds the rest
    copy = board.path.with_name("copy")
    copy.write_bytes(board.path.read_bytes())
    copy.replace(board.path)  # the same bytes in another file
    assert read(board, exact=False) is None
    assert not write(board, offset=board.path.stat().st_size + 1)  # the board is shorter than that


def test_a_signed_board_trusts_only_a_key_holders_file(board):
    create_key(board.directory)
    key = load_key(board.directory)
    assert not write(board)  # this process cannot read the key: it folded unsigned lines, writes nothing
    assert not (board.directory / NAME).exists()
    assert write(board, b"honest", key=key)
    assert read(board, key=key)[1] == b"honest"
    assert read(board, key=None)[1] == b"honest"  # a reader without the key (a sandbox): a MAC is there
    header, _ = envelope.open_envelope(KIND, (board.directory / NAME).read_bytes())
    fields = {k: v for k, v in header.items() if k not in ("body_bytes", "body_crc32")}
    (board.directory / NAME).write_bytes(envelope.seal(KIND, fields, b"forged", key=None))
    assert read(board, key=key) is None  # the MAC does not cover this body
    del fields["mac"]
    (board.directory / NAME).write_bytes(envelope.seal(KIND, fields, b"forged", key=None))
    assert read(board, key=key) is None and read(board, key=None) is None  # no MAC on a signed board
    (board.directory / NAME).write_bytes(envelope.seal(KIND, fields, b"forged", key=b"k" * 32))
    assert read(board, key=key) is None  # made with another key


def test_a_caller_cannot_set_the_envelopes_own_fields(board):
    with pytest.raises(ValueError):
        write(board, offset=1, format="mine")


def test_a_file_that_cannot_be_replaced_leaves_nothing_behind(board):
    (board.directory / NAME).mkdir()  # the name is taken: os.replace fails as on a read-only board
    assert envelope.write(board.directory, NAME, KIND, FMT, 1, {}, lambda: b"x", None) is False
    assert [p.name for p in board.directory.iterdir() if p.name.startswith(f".{NAME}")] == []


def test_reading_loads_no_hashing_without_a_key():
    """A saved answer's reader on an unsigned board (or in a sandbox) never loads hashlib (OpenSSL)."""
    probe = "import sys, swarm.board.envelope; print('hashlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
