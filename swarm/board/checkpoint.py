"""A checkpoint of the folded board, so that a new process folds only what was appended since it was saved.

Folding a long run's board costs every new process the same work: ~0.7 s at 100,000 records on an idle
machine, paid by each `swarm best` an agent runs all night, and seconds by `swarm watch`. A checkpoint (`<board>/state.checkpoint`)
holds a BoardState as of a board offset; `open_state()` restores it, folds the records after that offset, and
saves a new one when it had much to fold. The coordinator saves one as the board grows (CheckpointKeeper).

    state = open_state(board, noise)       # restored (or folded from scratch), refreshed, maybe saved
    restore(board, noise) -> BoardState | None;  save(state) -> bool

What is saved: every field of the state (BoardState.NOT_CHECKPOINTED names the exceptions), except that an
experiment is stored as the position of its latest record's line on the board: the board already holds the
records, so the checkpoint stays a few MB and a restored state reads a record only when it is asked for
(`swarm best` reads a handful; a display that wants them all gets them in one sequential pass).

A checkpoint is a cache, never a source of truth. It is used only when all of these hold, else the board is
folded from scratch (and the checkpoint replaced when this process may write it):
- its format is this code's: the key hashes the source of every module of the folding package, so any change
  to how the board is folded (a new status, a new field) invalidates old checkpoints without a version to bump;
- the board file is the one it was taken from: same device and inode, at least as long as the offset, and the
  same bytes at its start and just before the offset (a board truncated, replaced or rewritten is caught);
- its payload is whole: its length and CRC-32 match the header (a torn or corrupted file is caught);
- it unpickles with a restricted unpickler into exactly the fields a fresh state has, of the same types.

Trust. Pickle is used because it saves any field the fold gains without code here, and restores several
times faster than the same objects rebuilt from JSON. Loading a pickle can run code, so two things keep a
forged file harmless:
the checkpoint sits in the board directory, which only the runners, the coordinator and the human's commands
may write (the agents' sandbox mounts the board read-only; an agent without a sandbox can append to the board
itself, so a checkpoint gives it nothing new), and the unpickler refuses every global but the classes of the
folding package and a few builtin containers, so a crafted file can build data, never call a function. The
runner, which decides every recorded status, never restores a checkpoint. A process that cannot write the
board directory (a sandboxed agent) just restores and folds.
"""

from __future__ import annotations

import collections
import gc
import io
import pickle
import sys
import zlib
from collections.abc import Iterator, MutableMapping
from hashlib import sha256
from pathlib import Path
from typing import Any

import orjson

from swarm.board.identity import mark, matches, source_key, write_whole
from swarm.board.noise import NoiseSettings
from swarm.board.signing import has_key, sign_checkpoint, signed_checkpoint
from swarm.board.state import SHARED_FIELDS, BoardState, PackedTable
from swarm.board.store import Board
from swarm.errors import BoardError

CHECKPOINT_FILE = "state.checkpoint"
MAGIC = b"swarm board checkpoint\n"
SAVE_AFTER_BYTES = 1 << 20  # a process that folded this much board past the checkpoint saves a new one
SAVED_TOP = 100  # contents of each group ranked before saving: `swarm board --top`, watch's leaderboard
READ_WINDOW_BYTES = 16 << 20  # how much board one sequential read of many records takes at once
PROTOCOL = 5
FOLDING_PACKAGE = __name__.rpartition(".")[0]  # the package whose classes a checkpoint may contain
# Builtin classes a state may hold besides dicts, lists, tuples and scalars (pickle builds those itself).
ALLOWED_GLOBALS = {
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "list"): list,
    ("builtins", "dict"): dict,
    ("builtins", "tuple"): tuple,
    ("collections", "Counter"): collections.Counter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("collections", "deque"): collections.deque,
}
# What a damaged or forged payload can raise while unpickling (the CRC catches damage first; these remain
# for a file written on purpose): any of them means "fold from scratch".
UNPICKLE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    AttributeError,
    OverflowError,
    RecursionError,
    MemoryError,
)


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


# ---------------------------------------------------------------------------------------------------------
# Experiments restored as positions on the board


class BoardRecords(MutableMapping):
    """The experiments of a restored state: id -> latest record, where a record still on the board is held as
    the (offset, length) of its line and read and parsed the first time it is asked for. Order and every
    dict operation the state uses behave as in the plain dict a fresh fold has."""

    def __init__(self, path: Path, table: dict[str, Any]):
        self._path = path
        self._table = table  # id -> record dict, or (offset, length) not read yet

    def __getitem__(self, eid: str) -> dict[str, Any]:
        value = self._table[eid]
        if type(value) is tuple:
            value = self._table[eid] = self._read_one(eid, value)
        return value

    def get(self, eid: str, default: Any = None) -> Any:
        return self[eid] if eid in self._table else default

    def __setitem__(self, eid: str, record: dict[str, Any]) -> None:
        self._table[eid] = record

    def __delitem__(self, eid: str) -> None:
        del self._table[eid]

    def __contains__(self, eid: object) -> bool:
        return eid in self._table

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def values(self):
        self._read_all()
        return self._table.values()

    def items(self):
        self._read_all()
        return self._table.items()

    def _read_one(self, eid: str, position: tuple[int, int]) -> dict[str, Any]:
        offset, length = position
        with open(self._path, "rb") as f:
            f.seek(offset)
            return _parse(eid, f.read(length))

    def _read_all(self) -> None:
        """Read every record not read yet, in board order, a window of the board at a time."""
        pending = sorted((v, k) for k, v in self._table.items() if type(v) is tuple)
        if not pending:
            return
        with open(self._path, "rb") as f:
            window, start = b"", 0
            for (offset, length), eid in pending:
                if offset + length > start + len(window) or offset < start:
                    f.seek(offset)
                    start, window = offset, f.read(max(READ_WINDOW_BYTES, length))
                line = memoryview(window)[offset - start : offset - start + length]
                self._table[eid] = _parse(eid, line)


def _parse(eid: str, line: bytes | memoryview) -> dict[str, Any]:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        record = None
    if not isinstance(record, dict) or record.get("id") != eid:
        # the board's identity was checked when the checkpoint was restored, and lines are never rewritten
        raise BoardError(f"the board changed under its checkpoint: no record of {eid} where one was")
    for name in SHARED_FIELDS:  # as the fold does: values thousands of records repeat, held once
        value = record.get(name)
        if type(value) is str:
            record[name] = sys.intern(value)
    return record


# ---------------------------------------------------------------------------------------------------------
# Saving and restoring


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
        payload = _payload(state)
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


def _payload(state: BoardState) -> bytes:
    # computed once here rather than in every process that restores this checkpoint: the bests, each
    # agent's best (at 100,000 experiments a scan of its results) and a top long enough for any display
    state.bests()
    state.agent_summaries()
    for group in state.groups.values():
        group.top(SAVED_TOP)
    fields = {k: v for k, v in vars(state).items() if k not in BoardState.NOT_CHECKPOINTED}
    # the two per-content tables, packed (as the groups pack their contents): see state.PackedTable
    fields["_content_agents"] = PackedTable.of("set", state._content_agents)
    fields["_agent_results"] = {
        agent: {group: PackedTable.of("ids", table) for group, table in groups.items()}
        for agent, groups in state._agent_results.items()
    }
    at = state.experiment_at
    experiments = {eid: at.get(eid, record) for eid, record in _raw_items(state.experiments)}
    return pickle.dumps({"fields": fields, "experiments": experiments}, protocol=PROTOCOL)


def _raw_items(experiments: MutableMapping) -> Iterator[tuple[str, Any]]:
    """(id, record) of every experiment, without reading the records a restored state has not read."""
    if isinstance(experiments, BoardRecords):
        return iter(experiments._table.items())
    return iter(experiments.items())


class _Unpickler(pickle.Unpickler):
    """Builds data only: the classes of the folding package and a few builtin containers, no other global."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = ALLOWED_GLOBALS.get((module, name))
        if allowed is not None:
            return allowed
        if module == FOLDING_PACKAGE or module.startswith(FOLDING_PACKAGE + "."):
            found = getattr(sys.modules.get(module), name, None)
            if isinstance(found, type) and found.__module__ == module:
                return found
        raise pickle.UnpicklingError(f"{module}.{name} has no place in a board checkpoint")


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
    # a restored state is a few hundred thousand small objects: collecting while building them costs more
    # than building them, and none of them is garbage yet
    enabled = gc.isenabled()
    gc.disable()
    try:
        saved = _Unpickler(io.BytesIO(payload)).load()
    except UNPICKLE_ERRORS:
        return None
    finally:
        # and promote them to the oldest generation as they are (freeze, then unfreeze, moves every tracked
        # object there without traversing it): else the next young collection would walk all of them
        gc.freeze()
        gc.unfreeze()
        if enabled:
            gc.enable()
    if not _fits(state, saved):
        return None
    vars(state).update(saved["fields"])
    table = saved["experiments"]
    state.experiments = BoardRecords(board.path, dict(table))  # a copy: reading a record replaces its entry
    # the positions to save again (an entry that is a record, not a position, is saved as it is again)
    state.experiment_at = table
    state.reader.offset = header["offset"]
    return state


def _fits(state: BoardState, saved: Any) -> bool:
    """The payload has exactly the fields a fresh state has, each of the same type (None where the fresh one
    is None), and an experiments table of ids to records or positions."""
    if not isinstance(saved, dict) or set(saved) != {"fields", "experiments"}:
        return False
    fields, table = saved["fields"], saved["experiments"]
    fresh = {k: v for k, v in vars(state).items() if k not in BoardState.NOT_CHECKPOINTED}
    if not isinstance(fields, dict) or set(fields) != set(fresh):
        return False
    if any(v is not None and not _same_type(fields[k], v) for k, v in fresh.items()):
        return False
    return isinstance(table, dict)


def _same_type(saved: Any, fresh: Any) -> bool:
    """A saved field has the type of the fresh one; a packed table stands for a dict."""
    return type(saved) is type(fresh) or (type(fresh) is dict and type(saved) is PackedTable)


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
