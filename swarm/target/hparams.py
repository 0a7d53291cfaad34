"""The hyperparameter block of train.py: read it with `ast`, change one value in place.

train.py keeps its knobs as top-level `NAME = literal  # comment` lines (the h100 values), followed by
one `if PROFILE == "tiny":` block of `NAME = literal` overrides. The value a profile runs with is the
override when that profile's block has one, else the top-level line; an edit goes to that same line,
so the file stays as a researcher would have written it (comment, alignment and all).
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass
from typing import Any

from swarm.errors import SwarmError

KNOB_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_INT_OPS = {ast.Pow: operator.pow, ast.Mult: operator.mul, ast.Add: operator.add, ast.Sub: operator.sub}


@dataclass(frozen=True)
class Knob:
    name: str
    value: Any  # int, float, bool, str, or a tuple of those
    line: int  # 1-based line of the assignment the active profile uses
    start: int  # byte offsets of the value expression within that line
    end: int
    text: str  # the value as written (e.g. "2**19")
    overridden: bool  # True when the line is in the profile's override block


def literal_value(node: ast.expr) -> Any:
    """The value of a literal expression, also small integer arithmetic such as `2**19` or `8 * 64`;
    raises ValueError for anything else."""
    if isinstance(node, ast.BinOp) and type(node.op) in _INT_OPS:
        left, right = literal_value(node.left), literal_value(node.right)
        if isinstance(left, int) and isinstance(right, int) and not isinstance(left | right, bool):
            if isinstance(node.op, ast.Pow) and not 0 <= right <= 64:
                raise ValueError("exponent out of range")
            return _INT_OPS[type(node.op)](left, right)
        raise ValueError("arithmetic on non-integers")
    value = ast.literal_eval(node)
    if isinstance(value, list):
        value = tuple(value)
    if not isinstance(value, int | float | bool | str | tuple):
        raise ValueError("not a scalar or tuple")
    return value


def _assignments(body: list[ast.stmt]) -> dict[str, ast.Assign]:
    found = {}
    for stmt in body:
        if (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and KNOB_NAME.match(stmt.targets[0].id)
            and stmt.value.lineno == stmt.value.end_lineno
        ):
            try:
                literal_value(stmt.value)
            except (ValueError, TypeError, SyntaxError):
                continue
            found[stmt.targets[0].id] = stmt
    return found


def _profile_of(test: ast.expr) -> str | None:
    """ "tiny" for `PROFILE == "tiny"` (either way round), else None."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return None
    sides = [test.left, test.comparators[0]]
    names = [s.id for s in sides if isinstance(s, ast.Name)]
    strings = [s.value for s in sides if isinstance(s, ast.Constant) and isinstance(s.value, str)]
    return strings[0] if names == ["PROFILE"] and len(strings) == 1 else None


def _profile_blocks(tree: ast.Module) -> dict[str, list[ast.stmt]]:
    blocks: dict[str, list[ast.stmt]] = {}
    for stmt in tree.body:
        node = stmt
        while isinstance(node, ast.If):
            profile = _profile_of(node.test)
            if profile is None:
                break
            blocks.setdefault(profile, node.body)
            node = node.orelse[0] if len(node.orelse) == 1 else None
    return blocks


def read_knobs(source: str, profile: str) -> dict[str, Knob]:
    """Every knob of train.py with the value `profile` runs with, in file order."""
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise SwarmError(f"train.py does not parse: {e.msg} (line {e.lineno})") from None
    lines = source.splitlines()
    top = _assignments(tree.body)
    overrides = _assignments(_profile_blocks(tree).get(profile, []))
    knobs = {}
    for name, stmt in top.items():
        chosen = overrides.get(name, stmt)
        value_node = chosen.value
        line = lines[value_node.lineno - 1].encode()
        knobs[name] = Knob(
            name=name,
            value=literal_value(value_node),
            line=value_node.lineno,
            start=value_node.col_offset,
            end=value_node.end_col_offset,
            text=line[value_node.col_offset : value_node.end_col_offset].decode(),
            overridden=name in overrides,
        )
    return knobs


def set_knob(source: str, profile: str, name: str, value: Any) -> str:
    """train.py with `name` set to `value` for `profile` (on its override line when it has one)."""
    knobs = read_knobs(source, profile)
    if name not in knobs:
        raise SwarmError(f"train.py has no hyperparameter {name}")
    knob = knobs[name]
    lines = source.splitlines(keepends=True)
    raw = lines[knob.line - 1].encode()
    lines[knob.line - 1] = (raw[: knob.start] + render(value, knob.text).encode() + raw[knob.end :]).decode()
    return "".join(lines)


def render(value: Any, previous: str = "") -> str:
    """Python source for a value, in the style of the text it replaces (`2**k` stays a power)."""
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        if "**" in previous and value > 0 and value & (value - 1) == 0:
            return f"2**{value.bit_length() - 1}"
        return repr(value)
    if isinstance(value, float):
        return repr(float(f"{value:.4g}"))
    if isinstance(value, str):
        return '"' + value + '"' if '"' not in value and "\\" not in value else repr(value)
    if isinstance(value, tuple):
        inner = ", ".join(render(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    raise SwarmError(f"cannot write {value!r} into train.py")
