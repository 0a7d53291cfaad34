"""A folded state as bytes and back: what a checkpoint (swarm.board.checkpoint) holds, packed so that
restoring a 100,000-experiment board is cheap.

    payload = pack(state)                  # after refresh(): the state's fields, pickled
    unpack(state, payload) -> bool         # a fresh BoardState given those fields (False: not a state)

What is saved: every field of the state (PROCESS_FIELDS names the exceptions), except that an experiment
is stored as the position of its latest record's line on the board: the board already holds the records,
so the payload stays a few MB and a restored state reads a record only when it is asked for (`swarm best`
reads a handful; a display that wants them all gets them in one sequential pass, BoardRecords). A group's
contents and the per-content tables are packed as plain tuples, built the first time they are asked for
(PackedTable).

Pickle is used because it saves any field the fold gains without code here, and restores several times
faster than the same objects rebuilt from JSON. Loading a pickle can run code, so the unpickler refuses
every global but the classes of the folding package (swarm.board) and a few builtin containers: a crafted
payload can build data, never call a function. Which payload is trusted at all is swarm.board.envelope's
rule.
"""

from __future__ import annotations

import collections
import gc
import io
import pickle
import sys
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import orjson

from swarm.board.experiments import GroupKey
from swarm.board.fold import SHARED_FIELDS, BoardState
from swarm.board.stats import ContentStats, GroupStats
from swarm.errors import BoardError

SAVED_TOP = 100  # contents of each group ranked before saving: `swarm board --top`, watch's leaderboard
READ_WINDOW_BYTES = 16 << 20  # how much board one sequential read of many records takes at once
PROTOCOL = 5
FOLDING_PACKAGE = __name__.rpartition(".")[0]  # the package whose classes a payload may contain
# What a payload leaves out: the process's own objects, and what it stores in its own way (experiments as
# board positions). Every other field of a BoardState is saved as it is.
PROCESS_FIELDS = ("board", "noise", "reader", "observers", "_run_parsed", "experiments", "experiment_at")
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


# ---------------------------------------------------------------------------------------------------------
# Values packed as plain tuples, built when first asked for


def _pack_content(content: ContentStats) -> tuple:
    stats = content.stats
    if stats.n == 1 and stats._sum == 0.0 and stats._sumsq == 0.0 and len(content.slots) == 1:
        # most contents were measured once: (its id, its value, its slot), a third of the objects
        ((eid, value),), ((slot, runs),) = stats.values.items(), content.slots.items()
        if value == stats._origin and runs == 1 and eid == content.first_id:
            return (eid, value, slot)
    return (
        content.first_id,
        tuple(stats.values),
        tuple(stats.values.values()),
        stats._origin,
        stats._sum,
        stats._sumsq,
        tuple(content.slots.items()),
    )


def _unpack_content(group: GroupKey, train_sha256: str, packed: tuple) -> ContentStats:
    if len(packed) == 3:  # measured once
        eid, value, slot = packed
        packed = (eid, (eid,), (value,), value, 0.0, 0.0, ((slot, 1),))
    first_id, ids, values, origin, total, squares, slots = packed
    content = ContentStats(group, train_sha256)
    content.first_id = first_id
    content.stats.values = dict(zip(ids, values, strict=True))
    content.stats._origin, content.stats._sum, content.stats._sumsq = origin, total, squares
    content.slots = dict(slots)
    return content


# How a PackedTable of each kind packs a value into a plain tuple and builds it back (context, key, tuple).
PACKERS: dict[str, Callable[[Any], tuple]] = {"content": _pack_content, "set": tuple, "ids": tuple}
BUILDERS: dict[str, Callable[[Any, Any, tuple], Any]] = {
    "content": _unpack_content,  # a group's contents: sha256 -> ContentStats
    "set": lambda context, key, packed: set(packed),  # (group, sha256) -> the agents that measured it
    "ids": lambda context, key, packed: dict.fromkeys(packed),  # sha256 -> an agent's experiment ids
}


class LazyTable(MutableMapping):
    """A dict whose values may still be tuples from the checkpoint, built into objects the first time they
    are asked for (`_build`); values() and items() build the rest at once (`_build_all`). The one piece
    both restored tables share: the fold's contents and groups, and its experiments."""

    _table: dict[Any, Any]

    def _build(self, key: Any, packed: tuple) -> Any:
        raise NotImplementedError

    def _build_all(self) -> None:
        raise NotImplementedError

    def __getitem__(self, key: Any) -> Any:
        value = self._table[key]
        if type(value) is tuple:
            value = self._table[key] = self._build(key, value)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key] if key in self._table else default

    def __setitem__(self, key: Any, value: Any) -> None:
        self._table[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._table[key]

    def __contains__(self, key: object) -> bool:
        return key in self._table

    def __iter__(self) -> Iterator[Any]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def values(self):
        self._build_all()
        return self._table.values()

    def items(self):
        self._build_all()
        return self._table.items()


class PackedTable(LazyTable):
    """A dict of the folded state as a checkpoint restores it (swarm.board.checkpoint): a value nobody
    asked for yet is still the plain tuple the checkpoint held, built the first time it is asked for.
    Restoring a 100,000-experiment board then builds 100,000 tuples instead of half a million objects, and
    a display that shows the top ten contents builds ten. Pickling packs whatever was built."""

    def __init__(self, kind: str, table: dict[Any, Any], context: Any = None):
        self.kind = kind
        self.context = context  # what building a value needs besides its key (a content: its group)
        self._table = table
        self._all_built = False  # after values() / items(): the table is a plain dict again, at C speed

    @classmethod
    def of(cls, kind: str, table: dict[Any, Any] | PackedTable, context: Any = None) -> PackedTable:
        return table if isinstance(table, PackedTable) else cls(kind, table, context)

    def _build(self, key: Any, packed: tuple) -> Any:
        return BUILDERS[self.kind](self.context, key, packed)

    def _build_all(self) -> None:
        if not self._all_built:
            for key in self._table:
                self[key]
            self._all_built = True

    def __getstate__(self) -> dict[str, Any]:
        pack = PACKERS[self.kind]
        table = {k: v if type(v) is tuple else pack(v) for k, v in self._table.items()}
        return {"kind": self.kind, "context": self.context, "_table": table}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state.get("kind") not in BUILDERS or not isinstance(state.get("_table"), dict):
            raise TypeError("not a packed table")  # a forged checkpoint: folded from scratch instead
        self.__dict__.update(state, _all_built=False)


def _pack_groups(groups: dict[GroupKey, GroupStats]) -> dict[GroupKey, dict[str, Any]]:
    """Each group's fields, its contents packed as plain tuples, without the heap of the best's candidates
    (rebuilt from the confirmed contents when first asked)."""
    return {
        key: {**vars(group), "contents": PackedTable.of("content", group.contents, key), "_best_heap": None}
        for key, group in groups.items()
    }


def _build_groups(packed: dict[Any, Any], best_runs: int) -> dict[GroupKey, GroupStats]:
    """The groups `_pack_groups` packed; TypeError when a saved group is not one."""
    groups = {}
    for key, fields in packed.items():
        group = GroupStats(key, best_runs)
        if not isinstance(fields, dict) or set(fields) != set(vars(group)):
            raise TypeError("not a packed group")
        contents = fields["contents"]
        if not isinstance(contents, PackedTable):
            raise TypeError("not a packed table")
        for content in fields.get("_top") or ():  # objects already: the table hands out these very ones
            contents[content.train_sha256] = content
        vars(group).update(fields)
        groups[key] = group
    return groups


# ---------------------------------------------------------------------------------------------------------
# Experiments restored as positions on the board


class BoardRecords(LazyTable):
    """The experiments of a restored state: id -> latest record, where a record still on the board is held as
    the (offset, length) of its line and read and parsed the first time it is asked for. Order and every
    dict operation the state uses behave as in the plain dict a fresh fold has."""

    def __init__(self, path: Path, table: dict[str, Any]):
        self._path = path
        self._table = table  # id -> record dict, or (offset, length) not read yet

    def _build(self, eid: str, position: tuple[int, int]) -> dict[str, Any]:
        offset, length = position
        with open(self._path, "rb") as f:
            f.seek(offset)
            return _parse(eid, f.read(length))

    def _build_all(self) -> None:
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
# Packing and unpacking


def pack(state: BoardState) -> bytes:
    """The fields of `state` (call refresh() first), packed and pickled: what `unpack` restores."""
    # computed once here rather than in every process that restores this checkpoint: the bests, each
    # agent's best (at 100,000 experiments a scan of its results) and a top long enough for any display
    state.bests()
    state.agent_summaries()
    for group in state.groups.values():
        group.top(SAVED_TOP)
    fields = {k: v for k, v in vars(state).items() if k not in PROCESS_FIELDS}
    fields["groups"] = _pack_groups(state.groups)
    # the two per-content tables, packed as the groups' contents are
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


def unpack(state: BoardState, payload: bytes) -> bool:
    """Give a fresh `state` the fields `pack` saved (its experiments read lazily from its board); False,
    leaving it as it was, when the payload is not a packed state of this code."""
    # a restored state is a few hundred thousand small objects: collecting while building them costs more
    # than building them, and none of them is garbage yet
    enabled = gc.isenabled()
    gc.disable()
    try:
        saved = _Unpickler(io.BytesIO(payload)).load()
        if not _fits(state, saved):
            return False
        fields = {
            **saved["fields"],
            "groups": _build_groups(saved["fields"]["groups"], state.noise.best_runs),
        }
    except UNPICKLE_ERRORS:
        return False
    finally:
        # and promote them to the oldest generation as they are (freeze, then unfreeze, moves every tracked
        # object there without traversing it): else the next young collection would walk all of them
        gc.freeze()
        gc.unfreeze()
        if enabled:
            gc.enable()
    vars(state).update(fields)
    table = saved["experiments"]
    state.experiments = BoardRecords(state.board.path, dict(table))  # a copy: reading replaces its entry
    # the positions to save again (an entry that is a record, not a position, is saved as it is again)
    state.experiment_at = table
    return True


def _fits(state: BoardState, saved: Any) -> bool:
    """The payload has exactly the fields a fresh state has, each of the same type (None where the fresh one
    is None), and an experiments table of ids to records or positions."""
    if not isinstance(saved, dict) or set(saved) != {"fields", "experiments"}:
        return False
    fields, table = saved["fields"], saved["experiments"]
    fresh = {k: v for k, v in vars(state).items() if k not in PROCESS_FIELDS}
    if not isinstance(fields, dict) or set(fields) != set(fresh):
        return False
    if any(v is not None and not _same_type(fields[k], v) for k, v in fresh.items()):
        return False
    return isinstance(table, dict)


def _same_type(saved: Any, fresh: Any) -> bool:
    """A saved field has the type of the fresh one; a packed table stands for a dict."""
    return type(saved) is type(fresh) or (type(fresh) is dict and type(saved) is PackedTable)
