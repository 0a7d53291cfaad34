"""Optional `swarm.toml` at the repository root: one table per concern, each read into a frozen dataclass.

Each module that has settings declares its own dataclass with defaults and reads its table with
`load_section(repo, "runner", RunnerSettings)`; a typo in a key (with the key it meant), a wrong type or a
negative number is one clear error. No setting is a negative number (a count, seconds, sigmas, a size),
except a field whose metadata says `signed` (e.g. a search range). swarm.orchestration.settings_check
checks every section this way before a run starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from swarm.errors import SwarmError

CONFIG_FILE = "swarm.toml"
T = TypeVar("T")


def read_config(repo: Path) -> dict[str, Any]:
    """The parsed swarm.toml of a repository, or {} when it has none."""
    path = Path(repo) / CONFIG_FILE
    if not path.exists():
        return {}
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise SwarmError(f"{path}: {e}") from None
    except OSError as e:
        raise SwarmError(f"{path}: {e.strerror}") from None


def load_section(repo: Path, name: str, cls: type[T]) -> T:
    """Build the dataclass `cls` from the `[name]` table of swarm.toml, defaults for what it leaves out."""
    table = read_config(repo).get(name, {})
    return from_table(table, cls, where=f"{CONFIG_FILE} [{name}]")


def from_table(table: Any, cls: type[T], where: str) -> T:
    if not isinstance(table, dict):
        raise SwarmError(f"{where}: expected a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise SwarmError(
            f"{where}: unknown key {unknown[0]!r}{did_you_mean(unknown[0], fields)} "
            f"(known: {', '.join(sorted(fields))})"
        )
    values = {}
    for key, value in table.items():
        if not _matches(value, hints[key]):
            raise SwarmError(f"{where}: {key} = {value!r} is not of type {_describe(hints[key])}")
        if not fields[key].metadata.get("signed") and _negative(value):
            raise SwarmError(f"{where}: {key} = {value!r} must not be negative")
        values[key] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


def did_you_mean(word: str, known) -> str:
    """' (did you mean X?)' for the closest known word, or '' when none is close."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _negative(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_negative(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_negative(v) for v in value)
    return isinstance(value, int | float) and not isinstance(value, bool) and value < 0


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin in (tuple, list):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return isinstance(value, list | tuple) and all(_matches(v, args[0]) for v in value) if args else True
    if origin is dict:
        key_t, value_t = typing.get_args(hint) or (Any, Any)
        return isinstance(value, dict) and all(
            _matches(k, key_t) and _matches(v, value_t) for k, v in value.items()
        )
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
