"""A checkpoint of the folded board, so that a new process folds only what was appended since it was saved.

Folding a long run's board costs every new process the same work: ~0.7 s at 100,000 records on an idle
machine, paid by each `swarm best` an agent runs all night, and seconds by `swarm watch`. A checkpoint (`<board>/state.checkpoint`)
holds a BoardState as of a board offset; `open_state()` restores it, folds the records after that offset, and
saves a new one when it had much to fold. The coordinator saves one as the board grows (CheckpointKeeper).

    state = open_state(board, noise)       # restored (or folded from scratch), refreshed, maybe saved
    restore(board, noise) -> BoardState | None;  save(state) -> bool

A checkpoint is a cache, never a source of truth. It is used only when swarm.board.envelope trusts it
(this code's format: the key hashes the source of every module of the folding package; the same board file,
at least as long as its offset; a whole body; on a signed board a key holder's MAC), when it was folded
under the same [noise] settings, and when its payload unpickles into exactly the fields a fresh state has
(swarm.board.packing); else the board is folded from scratch (and the checkpoint replaced when this process
may write it).

Trust. The checkpoint sits in the board directory, which only the runners, the coordinator and the human's
commands may write (the agents' sandbox mounts the board read-only; an agent without a sandbox can append to
the board itself, so a checkpoint gives it nothing new), and its payload unpickles into data only
(swarm.board.packing). The runner, which decides every recorded status, never restores a checkpoint. A
process that cannot write the board directory (a sandboxed agent) just restores and folds.
"""

from __future__ import annotations

import sys
from hashlib import sha256
from pathlib import Path
from typing import Any

from swarm.board import envelope
from swarm.board.fold import BoardState
from swarm.board.identity import source_key
from swarm.board.noise import NoiseSettings
from swarm.board.packing import FOLDING_PACKAGE, PROTOCOL, pack, unpack
from swarm.board.store import Board

CHECKPOINT_FILE = "state.checkpoint"
KIND = "checkpoint"  # its envelope's kind (swarm.board.envelope)
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
    board directory (a sandboxed agent), lacks a signed board's key, or the board is gone. Call it after
    refresh()."""
    board = state.board
    fields = {"noise": noise_key(state.noise)}
    return envelope.write(
        board.directory,
        CHECKPOINT_FILE,
        KIND,
        format_key(),
        state.reader.offset,
        fields,
        lambda: pack(state),
        board.signing_key(),
    )


def noise_key(noise: NoiseSettings) -> str:
    """The noise settings a state was folded with ([noise] in swarm.toml): statuses, bands and bests follow
    from them, so a checkpoint is only restored under the same ones."""
    return sha256(repr(noise).encode()).hexdigest()[:16]


def restore(board: Board, noise: NoiseSettings | None = None) -> BoardState | None:
    """The state saved in the board's checkpoint, its reader at the checkpoint's offset (call refresh() to
    fold what came after), or None when there is no checkpoint this process can trust to be this board's
    (or one folded under other noise settings)."""
    found = envelope.read(
        board.directory, CHECKPOINT_FILE, KIND, format_key(), board.signing_key(), exact=False
    )
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
