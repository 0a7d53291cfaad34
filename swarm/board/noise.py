"""Noise rules: repeat statistics of identical train.py content, the noise band, and keep / marginal / discard.

val_bpb from a fixed wall-clock budget varies run to run. Results are compared only within one device class
and profile. Runs of identical `train.py` content (same sha256) measure the noise; the band is
max(SIGMAS x pooled sigma, a per-profile floor). A result whose improvement over the agent's current best
exceeds the band is `keep`; an improvement inside the band is `marginal` (worth a rerun); no improvement is
`discard`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from swarm.board.experiments import DISCARD, KEEP, MARGINAL

# Floors by profile. h100: observed run-to-run differences of a few 1e-4 in the published swarms.
# tiny: bench/noise_tiny.py measured sigma 0.039 over 6 runs of the same train.py on a shared 2-core CPU
# (25..40 steps in the 15 s budget: the step count drives val_bpb); the floor is about half of that, as a
# quiet machine varies less, and the pooled sigma of real repeats takes over as soon as there are some.
DEFAULT_FLOORS = {"h100": 3e-4, "tiny": 0.02}
FALLBACK_FLOOR = 3e-4


@dataclass(frozen=True)
class NoiseSettings:
    """`[noise]` in swarm.toml."""

    floor: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_FLOORS))
    sigmas: float = 2.0  # keep needs an improvement beyond this many sigma
    reuse_runs: int = 2  # content measured this many times on a device class is answered from the board

    def floor_for(self, profile: str) -> float:
        return self.floor.get(profile, DEFAULT_FLOORS.get(profile, FALLBACK_FLOOR))

    def band(self, profile: str, pooled_sigma: float | None) -> float:
        floor = self.floor_for(profile)
        if pooled_sigma is None:
            return floor
        return max(self.sigmas * pooled_sigma, floor)


class RunningStats:
    """n, mean and sum of squared deviations of values that can be added and removed by key, in O(1).

    Values are accumulated as offsets from the first one seen, so the variance of numbers like 0.9979
    with differences of 1e-4 keeps its precision.
    """

    __slots__ = ("values", "_origin", "_sum", "_sumsq")

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self._origin: float | None = None
        self._sum = 0.0
        self._sumsq = 0.0

    def add(self, key: str, value: float) -> None:
        if key in self.values:
            self.remove(key)
        if self._origin is None:
            self._origin = value
        d = value - self._origin
        self.values[key] = value
        self._sum += d
        self._sumsq += d * d

    def remove(self, key: str) -> None:
        value = self.values.pop(key)
        d = value - self._origin
        self._sum -= d
        self._sumsq -= d * d
        if not self.values:
            self._origin, self._sum, self._sumsq = None, 0.0, 0.0

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        if not self.values:
            return None
        return self._origin + self._sum / len(self.values)

    @property
    def squared_deviations(self) -> float:
        """Sum of (x - mean)^2; 0 for fewer than two values."""
        n = len(self.values)
        if n < 2:
            return 0.0
        return max(self._sumsq - self._sum * self._sum / n, 0.0)

    @property
    def sigma(self) -> float | None:
        """Sample standard deviation, None for fewer than two values."""
        n = len(self.values)
        if n < 2:
            return None
        return math.sqrt(self.squared_deviations / (n - 1))


def decide_status(value: float, reference: float | None, band: float) -> tuple[str, str]:
    """keep / marginal / discard for a (mean) val_bpb against the agent's current best; lower is better.

    Without a reference the result is the agent's baseline, which is kept.
    """
    if reference is None:
        return KEEP, "baseline: the agent's first result on this device class and profile"
    improvement = reference - value
    if improvement > band:
        return KEEP, f"improved by {improvement:.6f}, beyond the noise band {band:.6f}"
    if improvement > 0:
        return MARGINAL, f"improved by {improvement:.6f}, inside the noise band {band:.6f}: rerun to confirm"
    return DISCARD, f"no improvement ({-improvement:+.6f} vs the agent's best)"
