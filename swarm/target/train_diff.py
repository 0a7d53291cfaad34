"""What changed between two versions of train.py, in the words a reader of a report wants: knob changes read
from the hyperparameter block (`MATRIX_LR 0.04 -> 0.05`), and the other changed lines as they are.

Used by `swarm report` for each step of the best's lineage. Sources that do not parse are compared as lines
only. The lines are train.py's text, which an agent wrote: callers escape them before showing them.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from swarm.errors import SwarmError
from swarm.target.hparams import Knob, read_knobs


@dataclass(frozen=True)
class KnobChange:
    name: str
    old: str | None  # the value as written (None: the knob is new)
    new: str | None  # None: the knob was removed

    def __str__(self) -> str:
        return f"{self.name} {self.old if self.old is not None else '(new)'} -> {self.new or '(removed)'}"


@dataclass(frozen=True)
class TrainDiff:
    knobs: tuple[KnobChange, ...]
    lines: tuple[str, ...]  # other changed lines, "-old" / "+new", in file order
    added: int  # counts of the other changed lines
    removed: int


def _knobs(source: str, profile: str) -> dict[str, Knob] | None:
    try:
        return read_knobs(source, profile)
    except (SwarmError, ValueError):  # does not parse, or a knob is not a literal
        return None


def train_diff(old: str, new: str, profile: str) -> TrainDiff:
    """The knob changes (the values `profile` runs with) and every other changed line from `old` to `new`;
    when either side's knobs cannot be read, every changed line is shown as a line."""
    old_knobs, new_knobs = _knobs(old, profile), _knobs(new, profile)
    if old_knobs is None or new_knobs is None:
        old_knobs = new_knobs = {}
    changes = []
    for name in dict.fromkeys([*old_knobs, *new_knobs]):
        before, after = old_knobs.get(name), new_knobs.get(name)
        if before and after and before.value == after.value:
            continue
        changes.append(KnobChange(name, before.text if before else None, after.text if after else None))
    # lines that hold a knob's value are told by the knob changes above
    old_knob_lines = {k.line for k in old_knobs.values()}
    new_knob_lines = {k.line for k in new_knobs.values()}
    old_lines, new_lines = old.splitlines(), new.splitlines()
    lines, added, removed = [], 0, 0
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        for i in range(i1, i2):
            if i + 1 not in old_knob_lines:
                lines.append("-" + old_lines[i])
                removed += 1
        for j in range(j1, j2):
            if j + 1 not in new_knob_lines:
                lines.append("+" + new_lines[j])
                added += 1
    return TrainDiff(knobs=tuple(changes), lines=tuple(lines), added=added, removed=removed)
