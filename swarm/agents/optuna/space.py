"""The search space of the Optuna agent: one Optuna distribution per knob of train.py's hyperparameter block.

Ranges come from each knob's value at the run's base commit (swarm.target.hparams), never from a worktree's
current train.py, so the space is the same on every restart (Optuna refuses a distribution that changed
under a stored study). Each kind of knob moves by the same kind of rule as the sweep agent's (betas inside
(0, 1), schedule fractions inside [0, 1], rates on a log scale, batch sizes in powers of two); seeds,
device batch, evaluation and paths are left alone. Long story: docs/agents.md.
"""

from __future__ import annotations

from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from swarm.agents.sweep.proposals import SKIP, WINDOW_PATTERNS
from swarm.errors import SwarmError

FRACTION = ("_RATIO", "_FRAC")
BETA = ("BETA", "MOMENTUM")  # decay rates in (0, 1): searched relative to 1


def _beta(value: float) -> FloatDistribution:
    """1 - beta from a third to three times its value (0.95: [0.85, 0.983]); never 0 or 1."""
    gap = 1.0 - value
    return FloatDistribution(max(0.0, 1.0 - 3 * gap), 1.0 - gap / 3)


def _fraction(name: str) -> FloatDistribution:
    if "WARMUP" in name:
        return FloatDistribution(0.0, 0.5)
    if "WARMDOWN" in name:
        return FloatDistribution(0.05, 1.0)
    return FloatDistribution(0.0, 1.0)


def knob_distributions(name: str, value: Any) -> dict[str, BaseDistribution]:
    """The distributions of one knob (one per element for a tuple); {} for a knob not searched."""
    if SKIP.search(name):
        return {}
    if isinstance(value, bool):
        return {name: CategoricalDistribution((False, True))}
    if isinstance(value, int):
        if value <= 0:
            return {}
        if "BATCH" in name and value & (value - 1) == 0:
            # integers: a float batch size (4096 * 2**-2 == 1024.0) is one train.py refuses
            sizes = (value >> 2, value >> 1, value, value << 1, value << 2)
            return {name: CategoricalDistribution(tuple(dict.fromkeys(s for s in sizes if s >= 1)))}
        low, high = max(1, value // 2), value * 2
        return {name: IntDistribution(low, high, log=True)} if high > low else {}
    if isinstance(value, float):
        if any(b in name for b in BETA) and 0.0 < value < 1.0:
            return {name: _beta(value)}
        if name.endswith(FRACTION) and 0.0 <= value <= 1.0:
            return {name: _fraction(name)}
        if value > 0:
            return {name: FloatDistribution(value / 4, value * 4, log=True)}
        return {}
    if isinstance(value, str) and "WINDOW" in name and set(value) <= {"S", "L"}:
        # a fixed order, the base's own pattern last when it is not a known one: a stored study refuses
        # choices that moved
        return {name: CategoricalDistribution(tuple(dict.fromkeys((*WINDOW_PATTERNS, value))))}
    if isinstance(value, tuple) and value and all(isinstance(v, float) and 0 < v < 1 for v in value):
        return {f"{name}[{i}]": _beta(v) for i, v in enumerate(value)}
    return {}


def search_space(
    config: dict[str, Any],
    knobs: list[str] | tuple[str, ...] | None = None,
    ranges: dict[str, list[float]] | None = None,
) -> dict[str, BaseDistribution]:
    """Distributions for the knobs of `config` (knob -> value at the base), narrowed by swarm.toml."""
    if knobs:
        unknown = sorted(set(knobs) - set(config))
        if unknown:
            raise SwarmError(f"swarm.toml [optuna] knobs: train.py has no hyperparameter {unknown[0]}")
    space: dict[str, BaseDistribution] = {}
    for name, value in config.items():
        if not knobs or name in knobs:
            space.update(knob_distributions(name, value))
    for param, bounds in (ranges or {}).items():
        space[param] = _override(param, bounds, space.get(param), config)
    return space


def _override(
    param: str, bounds: list[float], current: BaseDistribution | None, config: dict
) -> BaseDistribution:
    where = f"swarm.toml [optuna] ranges {param}"
    if len(bounds) != 2 or not bounds[0] < bounds[1]:
        raise SwarmError(f"{where}: give [low, high] with low < high")
    name = param.split("[")[0]
    if name not in config:
        raise SwarmError(f"{where}: train.py has no hyperparameter {name}")
    if isinstance(current, IntDistribution) or (current is None and type(config[name]) is int):
        return IntDistribution(int(bounds[0]), int(bounds[1]), log=bounds[0] > 0)
    log = isinstance(current, FloatDistribution) and current.log and bounds[0] > 0
    return FloatDistribution(float(bounds[0]), float(bounds[1]), log=log)


def to_knobs(params: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Knob values from a trial's parameters (tuple elements put back in place; floats rounded as train.py
    would show them, so equal configs give equal files)."""
    out: dict[str, Any] = {}
    for param, value in params.items():
        name, _, index = param.partition("[")
        if index:
            current = list(out.get(name, config[name]))
            current[int(index.rstrip("]"))] = round(float(value), 4)
            out[name] = tuple(current)
        else:
            out[name] = float(f"{value:.4g}") if isinstance(value, float) else value
    return out


def to_params(config: dict[str, Any], space: dict[str, BaseDistribution]) -> dict[str, Any]:
    """The parameters of the base config itself, for the study (clamped into each distribution)."""
    params = {}
    for param, dist in space.items():
        name, _, index = param.partition("[")
        value = config[name][int(index.rstrip("]"))] if index else config[name]
        if isinstance(dist, CategoricalDistribution):
            if value not in dist.choices:
                continue
        elif isinstance(dist, FloatDistribution | IntDistribution):
            value = min(max(value, dist.low), dist.high)
        params[param] = value
    return params
