"""Noise rules: repeat statistics of identical train.py content, the noise bands, and the decision of a result.

val_bpb from a fixed wall-clock budget varies run to run, so results are compared only within one device
class and profile (a group), against a band made of the group's pooled single-run sigma (runs of identical
train.py content measure it). `[noise] rule` picks `confirm` (the default: screen on one run, then judge
confirmation reruns against paired control runs) or `single` (one run decides). The per-profile `floor`
keeps the band from collapsing when a few repeats happen to agree. bench/noise_decisions.py measures both
rules' false keeps and power through this code. Long story: docs/noise.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from swarm.board.experiments import DISCARD, KEEP, MARGINAL, PROMISING
from swarm.errors import SwarmError

# Floors by profile. h100: observed run-to-run differences of a few 1e-4 in the published swarms.
# tiny: bench/noise_tiny.py measured sigma 0.039 over 6 runs of the same train.py on a shared 2-core CPU
# (25..40 steps in the 15 s budget: the step count drives val_bpb); the floor is about half of that, as a
# quiet machine varies less, and the pooled sigma of real repeats takes over as soon as there are some.
DEFAULT_FLOORS = {"h100": 3e-4, "tiny": 0.02}
FALLBACK_FLOOR = 3e-4
RULES = ("confirm", "single")


@dataclass(frozen=True)
class NoiseSettings:
    """`[noise]` in swarm.toml."""

    #: [advanced] per profile, the least noise assumed: bounds the single-run sigma below by floor / sigmas
    floor: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_FLOORS))
    #: [advanced] keep needs an improvement beyond this many sigma (of a difference, under confirm)
    sigmas: float = 2.0
    #: [advanced] content measured this many times on a device class is answered from the board
    reuse_runs: int = 3
    rule: str = "confirm"  #: "confirm": screen, then confirm; "single": one run decides (the old rule)
    screen_sigmas: float = 1.5  #: [advanced] a first run beyond this many sigma of a difference is promising
    confirm_runs: int = 2  #: reruns of a promising result on other slots of its class
    #: [advanced] each confirmation rerun runs beside a control: the agent's reference, rerun
    paired: bool = True
    #: [advanced] a paired verdict's keep band, in sigma of the reruns - controls difference
    confirm_sigmas: float = 1.2
    #: [advanced] runs of one content a class needs before a keep (pooled sigma: n - 1 df)
    calibration_runs: int = 3

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise SwarmError(f"swarm.toml [noise]: rule = {self.rule!r} (known: {', '.join(RULES)})")
        if self.confirm_runs < 1 or self.calibration_runs < 2 or self.reuse_runs < 1:
            raise SwarmError(
                "swarm.toml [noise]: confirm_runs >= 1, calibration_runs >= 2 and reuse_runs >= 1 please"
            )

    @property
    def confirms(self) -> bool:
        return self.rule == "confirm"

    @property
    def best_runs(self) -> int:
        """Runs a content needs to be a best: a confirmed mean (1 + confirm_runs) under `confirm`."""
        return 1 + self.confirm_runs if self.confirms else 1

    def floor_for(self, profile: str) -> float:
        return self.floor.get(profile, DEFAULT_FLOORS.get(profile, FALLBACK_FLOOR))

    def band(self, profile: str, pooled_sigma: float | None) -> float:
        """The single-run band, max(sigmas x pooled sigma, floor): the `single` rule's, and the tolerance a
        verification of a result is allowed."""
        floor = self.floor_for(profile)
        if pooled_sigma is None:
            return floor
        return max(self.sigmas * pooled_sigma, floor)

    def sigma_for(self, profile: str, pooled_sigma: float | None) -> float:
        """The single-run sigma the `confirm` rule uses: the pooled one, bounded below by floor / sigmas."""
        least = self.floor_for(profile) / self.sigmas
        return least if pooled_sigma is None else max(pooled_sigma, least)

    def difference_band(
        self, profile: str, pooled_sigma: float | None, n: int, n_ref: int, sigmas: float
    ) -> float:
        """`sigmas` sigma of the difference of a mean of n runs and a mean of n_ref runs."""
        return sigmas * self.sigma_for(profile, pooled_sigma) * math.sqrt(1 / n + 1 / max(n_ref, 1))


@dataclass(frozen=True)
class Evidence:
    """What a decision about one content in one group looks at."""

    mean: float  # mean val_bpb of the content's runs (this one included)
    n: int
    reference_mean: float | None  # the agent's reference content (None: this is its baseline)
    reference_n: int
    pooled_sigma: float | None  # the group's pooled single-run sigma (None before any repeat)
    calibrated: bool  # the group's repeats reach calibration_runs - 1 degrees of freedom
    final: bool  # a verdict (confirmation done, a rerun, an answer from the board), not a first screen


def decide(settings: NoiseSettings, profile: str, ev: Evidence) -> tuple[str, str, float]:
    """(status, reason, band) of a result; lower val_bpb is better."""
    runs = f" (mean of {ev.n} runs of this train.py)" if ev.n > 1 else ""
    if ev.reference_mean is None:
        band = settings.band(profile, ev.pooled_sigma)
        return KEEP, "baseline: the agent's first result on this device class and profile" + runs, band
    improvement = ev.reference_mean - ev.mean
    if not settings.confirms:
        band = settings.band(profile, ev.pooled_sigma)
        status, reason = decide_status(ev.mean, ev.reference_mean, band)
        return status, reason + runs, band
    if not ev.final and ev.n < settings.best_runs:
        band = settings.difference_band(
            profile, ev.pooled_sigma, ev.n, ev.reference_n, settings.screen_sigmas
        )
        if improvement > band:
            return (
                PROMISING,
                f"improved by {improvement:.6f}, beyond the screening band {band:.6f}: "
                f"{settings.confirm_runs} confirmation reruns"
                f"{' beside control runs of the reference' if settings.paired else ''} decide keep",
                band,
            )
        if improvement > 0:
            return MARGINAL, f"improved by {improvement:.6f}, inside the screening band {band:.6f}", band
        return DISCARD, f"no improvement ({-improvement:+.6f} vs the agent's best)", band
    band = settings.difference_band(profile, ev.pooled_sigma, ev.n, ev.reference_n, settings.sigmas)
    if improvement > band and not ev.calibrated:
        return (
            MARGINAL,
            f"improved by {improvement:.6f}, but the device class is not calibrated yet{runs}",
            band,
        )
    status, reason = decide_status(ev.mean, ev.reference_mean, band)
    if status == KEEP:
        reason = "confirmed: " + reason
    elif status == MARGINAL:
        reason = f"improved by {improvement:.6f}, inside the noise band {band:.6f}"
    return status, reason + runs, band


def decide_paired(
    settings: NoiseSettings,
    profile: str,
    reruns: list[float],
    controls: list[float],
    pooled_sigma: float | None,
    calibrated: bool,
) -> tuple[str, str, float]:
    """(status, reason, band) of a promising result from its confirmation reruns and the control runs of
    its reference beside them: the difference of the two means, judged at `confirm_sigmas`."""
    improvement = sum(controls) / len(controls) - sum(reruns) / len(reruns)
    band = settings.difference_band(
        profile, pooled_sigma, len(reruns), len(controls), settings.confirm_sigmas
    )
    runs = f" ({len(reruns)} reruns beside {len(controls)} control runs of the reference)"
    if improvement > band and not calibrated:
        return (
            MARGINAL,
            f"improved by {improvement:.6f}, but the device class is not calibrated yet{runs}",
            band,
        )
    if improvement > band:
        return (
            KEEP,
            f"confirmed: improved by {improvement:.6f}, beyond the paired band {band:.6f}{runs}",
            band,
        )
    if improvement > 0:
        return MARGINAL, f"improved by {improvement:.6f}, inside the paired band {band:.6f}{runs}", band
    return DISCARD, f"not confirmed: {-improvement:+.6f} against the control runs{runs}", band


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
