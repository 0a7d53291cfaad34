"""A checkpoint of the folded board, so that a new process folds only what was appended since it was saved.

Folding a long run's board costs every new process the same work: ~0.7 s at 100,000 records on an idle
machine, paid by each `swarm best` an agent runs all night, and seconds by `swarm watch`. A checkpoint (`<board>/state.checkpoint`)
holds a BoardState as of a board offset; `open_state()` restores it, folds the records after that offset, and
saves a new one when it had much to fold. The coordinator saves one as the board grows (CheckpointKeeper).

    state = open_state(board, noise)       # restored (or folded from scratch), refreshed, maybe saved
    restore(board, noise) -> BoardState | None;  save(state) -> bool

A checkpoint is a cache, never a source of truth. It is used only when all of these hold, else the board is
folded from scratch (and the checkpoint replaced when this process may write it):
- its format is this code's: the key hashes the source of every module of the folding package, so any change
  to how the board is folded (a new status, a new field) invalidates old checkpoints without a version to bump;
- the board file is the one it was taken from: same device and inode, at least as long as the offset, and the
  same bytes at its start and just before the offset (a board truncated, replaced or rewritten is caught);
- its payload is whole: its length and CRC-32 match the header (a torn or corrupted file is caught);
- it unpickles with a restricted unpickler into exactly the fields a fresh state has, of the same types.

Trust. The checkpoint sits in the board directory, which only the runners, the coordinator and the human's
commands may write (the agents' sandbox mounts the board read-only; an agent without a sandbox can append to
the board itself, so a checkpoint gives it nothing new), and its payload unpickles into data only
(swarm.board.packing). The runner, which decides every recorded status, never restores a checkpoint. A
process that cannot write the board directory (a sandboxed agent) just restores and folds.
"""

from __future__ import annotations

import sys
import zlib
from hashlib import sha256
from pathlib import Path
from typing import Any

import orjson

from swarm.board.fold import BoardState
from swarm.board.identity import mark, matches, source_key, write_whole
from swarm.board.noise import NoiseSettings
from swarm.board.packing import FOLDING_PACKAGE, PROTOCOL, pack, unpack
from swarm.board.signing import has_key, sign_checkpoint, signed_checkpoint
from swarm.board.store import Board

CHECKPOINT_FILE = "state.checkpoint"
MAGIC = b"swarm board checkpoint\n"
SAVE_AFTER_BYTES = 1 << 20  # a process that folded this much board past the checkpoint saves a new one


def _format_key() -> str:
    """Changes whenever the folding code, the Python version or the pickle protocol does."""
    return source_key([Path(sys.modules[FOLDING_PACKAGE].__file__).parent], salt=f"pickle {PROTOCOL}")


# Computed when this module is loaded, from the source this process runs: a long-lived process whose files are
# replaced by an upgrade keeps writing checkpoints under its own code's key, never under the new one.
FORMAT_KEY = _format_key()


def format_key() -> str:
    return FORMAT_KEY


def checkpoint_path(board: Board) -> Path:
    return board.directory / CHECKPOINT_FILE


def save(state: BoardState) -> bool:
    """Write a checkpoint of `state` as of its reader's offset; False when this process may not write the
    board directory (a sandboxed agent) or the board is gone. Call it after refresh()."""
    board = state.board
    offset = state.reader.offset
    key = board.signing_key()
    if key is None and has_key(board.directory):
        return False  # this process folded unsigned lines as records: its state is not the runners' board
    where = mark(board.path, offset)
    if where is None:
        return False

    def produce() -> bytes:
        payload = pack(state)
        header = {
            "format": format_key(),
            **where,
            "payload_bytes": len(payload),
            "payload_crc32": zlib.crc32(payload),
            "noise": noise_key(state.noise),
        }
        if key is not None:  # readers holding the key trust only a checkpoint a key holder wrote
            header["mac"] = sign_checkpoint(key, orjson.dumps(header), payload)
        return MAGIC + orjson.dumps(header) + b"\n" + payload

    return write_whole(checkpoint_path(board), produce)


def _read_checkpoint(board: Board) -> tuple[dict[str, Any], bytes] | None:
    """The header and payload of the board's checkpoint, or None when it is missing, torn or not this
    board's (device, inode, length, edge bytes) or not this code's format."""
    try:
        data = checkpoint_path(board).read_bytes()
    except OSError:
        return None
    if not data.startswith(MAGIC):
        return None
    end = data.find(b"\n", len(MAGIC))
    try:
        header = orjson.loads(data[len(MAGIC) : end])
    except orjson.JSONDecodeError:
        return None
    if not isinstance(header, dict) or header.get("format") != format_key():
        return None
    payload = data[end + 1 :]
    key = board.signing_key()
    if key is not None:
        mac = header.pop("mac", None)
        if not isinstance(mac, str) or not signed_checkpoint(key, orjson.dumps(header), payload, mac):
            return None
    elif has_key(board.directory) and "mac" not in header:
        return None  # a signed board's checkpoint that no key holder wrote
    if len(payload) != header.get("payload_bytes") or zlib.crc32(payload) != header.get("payload_crc32"):
        return None
    if not matches(board.path, header, exact=False):
        return None
    return header, payload


def noise_key(noise: NoiseSettings) -> str:
    """The noise settings a state was folded with ([noise] in swarm.toml): statuses, bands and bests follow
    from them, so a checkpoint is only restored under the same ones."""
    return sha256(repr(noise).encode()).hexdigest()[:16]


def restore(board: Board, noise: NoiseSettings | None = None) -> BoardState | None:
    """The state saved in the board's checkpoint, its reader at the checkpoint's offset (call refresh() to
    fold what came after), or None when there is no checkpoint this process can trust to be this board's
    (or one folded under other noise settings)."""
    found = _read_checkpoint(board)
    if found is None:
        return None
    header, payload = found
    state = BoardState(board, noise)
    if header.get("noise") != noise_key(state.noise):
        return None
    if not unpack(state, payload):
        return None
    state.reader.offset = header["offset"]
    return state


def open_state(
    board: Board, noise: NoiseSettings | None = None, save_after: int = SAVE_AFTER_BYTES
) -> BoardState:
    """The board's state, refreshed: restored from its checkpoint when one is valid, else folded from the
    start; a new checkpoint is saved when more than `save_after` bytes of board had to be folded (and this
    process may write one)."""
    state = restore(board, noise)
    if state is None:
        state = BoardState(board, noise)
    start = state.reader.offset
    state.refresh()
    if state.reader.offset - start > save_after:
        save(state)
    return state


class CheckpointKeeper:
    """For a long-lived process that follows the board (the coordinator, watch): its state, and a new
    checkpoint saved whenever the board grew by `every` bytes since the last one, so that new processes have
    little to fold. `CheckpointKeeper.restore(board)` starts from the board's checkpoint when it is valid."""

    def __init__(self, state: BoardState, saved_at: int = 0, every: int = SAVE_AFTER_BYTES // 4):
        self.state = state
        self.saved_at = saved_at  # the board offset of the newest checkpoint (0: none known)
        self.every = every

    @classmethod
    def restore(cls, board: Board, noise: NoiseSettings | None = None, **kwargs: Any) -> CheckpointKeeper:
        restored = restore(board, noise)
        if restored is None:
            return cls(BoardState(board, noise), 0, **kwargs)
        return cls(restored, restored.reader.offset, **kwargs)

    @property
    def restored(self) -> bool:
        return self.saved_at > 0

    def tick(self) -> bool:
        """Call after the state's refresh; True when a checkpoint was written."""
        if self.state.reader.offset - self.saved_at < self.every:
            return False
        self.saved_at = self.state.reader.offset  # also when it fails: no retry every tick
        return save(self.state)
