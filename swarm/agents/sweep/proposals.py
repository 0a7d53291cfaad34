"""What the sweep agent tries next: one-factor moves around its best config, then small factorial waves.

Moves follow what published swarms found worth moving (docs/agents.md): batch size in powers of two,
learning rates and weight decay multiplicatively, schedule fractions additively, betas and momenta
relative to 1, depth by one layer. A pass tries both directions of every knob in priority order (each
agent starts the rotation at its own place, so a swarm covers different knobs first); a move that
helped is pushed further; when a pass is done the best few single changes are combined in pairs
(a 2x2 factorial wave around the best) and the step shrinks for the next pass.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# Tried first (what mattered in the public runs), then every other knob in file order.
PRIORITY = (
    "TOTAL_BATCH_SIZE", "MATRIX_LR", "EMBEDDING_LR", "UNEMBEDDING_LR", "SCALAR_LR", "WEIGHT_DECAY",
    "WARMDOWN_RATIO", "FINAL_LR_FRAC", "ADAM_BETAS", "MUON_BETA2", "MUON_MOMENTUM", "SOFTCAP", "DEPTH",
    "ASPECT_RATIO", "WARMUP_RATIO", "Q_SCALE", "ROPE_BASE", "WINDOW_PATTERN", "SHORT_WINDOW",
)  # fmt: skip
# What the sweep tries first on a profile where what mattered differs from the published GPU runs, and the
# knobs it moves up before down there. The tiny profile (15 s of training on a CPU): on a real demo board
# (docs/report-sample) Q_SCALE 1 -> 1.43 gained 0.30 val_bpb and a ROPE_BASE move 0.19, each in one run,
# against a noise floor of 0.02, while halving or doubling TOTAL_BATCH_SIZE lost 0.06; a 3-minute demo
# has room for about one confirmed change, so its first proposal should be the likeliest.
PROFILE_FIRST = {"tiny": ("Q_SCALE", "ROPE_BASE")}
LARGER_FIRST = {"tiny": frozenset({"Q_SCALE"})}
# Knobs that change speed or memory, or are not model choices; moving them only costs runs.
SKIP = re.compile(r"SEED|DEVICE_BATCH|EVAL|LOG|PRINT|COMPILE|DTYPE|PATH|DIR|HEAD_DIM")
WINDOW_PATTERNS = ("L", "SL", "SSL", "SSSL")
SUMMARY_CHARS = 160  # a proposal's description on the board (the commit message has every change)


@dataclass(frozen=True)
class Change:
    name: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.name} {_show(self.old)} -> {_show(self.new)}"


@dataclass(frozen=True)
class Proposal:
    changes: tuple[Change, ...]
    kind: str = "one-factor"  # "baseline", "one-factor", "push", "wave"
    by: str = "sweep"  # the agent kind proposing it (the optuna agent reuses this class)

    @property
    def description(self) -> str:
        if not self.changes:
            return f"{self.by}: baseline (train.py unchanged)"
        return f"{self.by} {self.kind}: " + ", ".join(str(c) for c in self.changes)

    @property
    def summary(self) -> str:
        """The description, shortened to fit the board when it names many changes (an Optuna trial moves
        every knob): the first changes and a count of the rest; the commit message keeps them all."""
        if len(self.description) <= SUMMARY_CHARS:
            return self.description
        shown: list[str] = []
        head = f"{self.by} {self.kind}: {len(self.changes)} knobs: "
        for change in self.changes:
            rest = f" (+{len(self.changes) - len(shown) - 1} more)"
            if len(head + ", ".join([*shown, str(change)]) + rest) > SUMMARY_CHARS:
                break
            shown.append(str(change))
        return head + ", ".join(shown) + f" (+{len(self.changes) - len(shown)} more)"

    def apply(self, config: dict[str, Any]) -> dict[str, Any]:
        return {**config, **{c.name: c.new for c in self.changes}}


def moves(name: str, value: Any, scale: float = 1.0) -> list[Any]:
    """Candidate new values for one knob, smaller-direction first; [] for knobs not worth moving.
    `scale` < 1 makes the steps finer (later passes)."""
    if SKIP.search(name):
        return []
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return _int_moves(name, value, scale)
    if isinstance(value, float):
        return _float_moves(name, value, scale)
    if isinstance(value, str) and "WINDOW" in name and set(value) <= {"S", "L"}:
        return [p for p in WINDOW_PATTERNS if p != value]
    if isinstance(value, tuple) and value and all(isinstance(v, float) for v in value):
        out = []
        for i, v in enumerate(value):
            for new in _float_moves(name, v, scale):
                out.append(value[:i] + (new,) + value[i + 1 :])
        return out
    return []


def _int_moves(name: str, value: int, scale: float) -> list[int]:
    if value >= 1024 and value & (value - 1) == 0:  # powers of two (batch sizes, windows): halve, double
        return [value // 2, value * 2]
    if value >= 16:  # widths, windows: a quarter, in multiples of 8 where the value is one
        step = max(1, round(value * 0.25 * scale))
        if value % 8 == 0:
            step = max(8, round(step / 8) * 8)
        return [v for v in (value - step, value + step) if v > 0]
    return [v for v in (value - 1, value + 1) if v >= 1 or (value == 0 and v == 0)]


def _float_moves(name: str, value: float, scale: float) -> list[float]:
    fractional = re.search(r"RATIO|FRAC", name) and 0.0 <= value <= 1.0
    beta_like = re.search(r"BETA|MOMENTUM", name) and 0.0 < value < 1.0
    if fractional:
        step = 0.1 * scale
        return [v for v in (round(value - step, 4), round(value + step, 4)) if 0.0 <= v <= 1.0]
    if beta_like:
        gap = 1.0 - value  # move the distance to 1 by a factor: 0.95 -> 0.925 / 0.967
        factor = 1.5**scale
        return [round(1.0 - gap * factor, 4), round(1.0 - gap / factor, 4)]
    if value == 0.0:
        return [0.01] if "DECAY" in name else []
    factor = 0.7**scale
    return [value * factor, value / factor]


def rotation(names: list[str], agent: str, profile: str | None = None) -> list[str]:
    """Knobs in priority order (the profile's own first), rotated so that each agent of a swarm starts
    somewhere else."""
    first = PROFILE_FIRST.get(profile or "", ())
    priority = [*first, *(n for n in PRIORITY if n not in first)]
    ordered = [n for n in priority if n in names] + [n for n in names if n not in priority]
    if not ordered:
        return []
    start = rotation_offset(agent, len(ordered))
    return ordered[start:] + ordered[:start]


def rotation_offset(agent: str, n: int) -> int:
    """Where agent `gpuK` / `cpuK` starts among n knobs: K times the golden ratio, modulo 1, spreads the
    first knobs of any number of agents evenly (gpu0 and gpu1 start about 0.62 n apart, gpu2 fills the
    larger gap, ...) without knowing how many agents there are. Other names hash to a place."""
    digits = re.search(r"(\d+)$", agent)
    if digits is None:
        return zlib.crc32(agent.encode()) % n
    return int((int(digits.group(1)) * 0.6180339887) % 1.0 * n)


@dataclass
class Planner:
    """Proposes experiments from the current best config and learns from each result."""

    agent: str
    profile: str | None = None  # the run's profile: what to try first (PROFILE_FIRST, LARGER_FIRST)
    scale: float = 1.0
    results: dict[Change, float] = field(default_factory=dict)  # change -> val_bpb gain (positive: better)
    pending_push: list[Change] = field(default_factory=list)

    def __post_init__(self):
        self._random = random.Random(zlib.crc32(self.agent.encode()))

    def record(self, proposal: Proposal, gain: float | None, kept: bool) -> None:
        """What a finished proposal did: `gain` = reference val_bpb - its val_bpb (None: no result)."""
        if gain is None or len(proposal.changes) != 1:
            return
        change = proposal.changes[0]
        self.results[change] = gain
        if kept and isinstance(change.new, int | float) and not isinstance(change.new, bool):
            self.pending_push.append(change)

    def proposals(self, config: dict[str, Any]) -> Iterator[Proposal]:
        """An endless stream of proposals around `config` (read again at each step, so the caller can
        replace the dict's contents when its best changes)."""
        while True:
            for name in rotation(list(config), self.agent, self.profile):
                start = config.get(name)
                candidates = moves(name, start, self.scale)
                if name in LARGER_FIRST.get(self.profile or "", ()):
                    candidates.reverse()
                for new in candidates:
                    yield from self._pushes(config)
                    if config.get(name) != start:
                        break  # a move of this knob was kept meanwhile: pushes go on from there
                    yield Proposal((Change(name, start, new),))
            yield from self._pushes(config)
            yield from self._wave(config)
            # Finer steps each pass; once fine, steps of random size, so that later passes keep finding
            # contents nobody has measured instead of repeating the same grid.
            self.scale = self.scale * 0.5 if self.scale > 0.25 else self._random.uniform(0.2, 1.2)

    def _pushes(self, config: dict[str, Any]) -> Iterator[Proposal]:
        """After a kept move, one more step the same way (old -> new -> new + (new - old))."""
        while self.pending_push:
            change = self.pending_push.pop(0)
            current = config.get(change.name)
            if current != change.new:
                continue  # the best moved on (adopted another config) since
            further = _extend(change)
            if further is not None:
                yield Proposal((Change(change.name, current, further),), kind="push")

    def _wave(self, config: dict[str, Any]) -> Iterator[Proposal]:
        """The single changes that helped but are not in the best (marginal ones, or ones measured
        against an older best), applied to the current best in pairs; alone when there is only one."""
        helped = sorted((c for c, g in self.results.items() if g > 0), key=lambda c: -self.results[c])
        distinct: dict[str, Change] = {}
        for change in helped:
            if change.name in config and config[change.name] != change.new:
                distinct.setdefault(change.name, Change(change.name, config[change.name], change.new))
        top = list(distinct.values())[:3]
        if len(top) == 1:
            yield Proposal((top[0],), kind="wave")
        for a, b in itertools.combinations(top, 2):
            yield Proposal((a, b), kind="wave")


def _extend(change: Change) -> Any:
    old, new = change.old, change.new
    if isinstance(old, int) and isinstance(new, int):
        if old > 0 and new > 0 and (new / old) in (2.0, 0.5):
            return new * 2 if new > old else new // 2
        further = new + (new - old)
        return further if further > 0 else None
    if isinstance(old, float) and isinstance(new, float) and old > 0 and new > 0:
        if re.search(r"RATIO|FRAC|BETA|MOMENTUM", change.name) and old <= 1.0 and new <= 1.0:
            further = round(new + (new - old), 4)  # additive, and never past 1
            return further if 0.0 <= further < 1.0 or (further == 1.0 and "BETA" not in change.name) else None
        further = new * (new / old)
        return further if math.isfinite(further) else None
    return None


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    return repr(value) if isinstance(value, str) else str(value)
