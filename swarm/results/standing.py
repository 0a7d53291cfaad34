"""Where a run stands in one device class and profile: the board's one best against the baseline, and the
agents' experiments sorted by what the board decided about them.

Every output that says how a run went (the report, the demo's closing lines) reads it from here, so they
cannot disagree with each other or with `swarm best`:
- the best is swarm.board.fold's (the lowest confirmed mean, with n and sigma), never one lucky run;
- a *confirmed gain* is a best that is not the baseline's train.py, that an agent's change reached with a
  decided `keep` (screened, then confirmed by reruns), and whose mean is below the baseline's;
- the runs the swarm makes on its own behalf (each agent's baseline, calibration reruns of the baseline,
  confirmation reruns and their paired control runs) are counted apart from the agents' experiments, so
  that "kept" counts agents' improvements only.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from swarm.board.experiments import (
    CALIBRATION,
    CRASH,
    DISCARD,
    FAILED_STATUSES,
    INVALID,
    KEEP,
    MARGINAL,
    PENDING_STATUSES,
    PROMISING,
    PRUNED,
    TIMEOUT,
    GroupKey,
    group_of,
    has_result,
    is_control,
    is_measured,
    submitted,
)
from swarm.board.fold import BoardState
from swarm.board.stats import Best, ContentStats

# What a run of the board is, besides an agent's experiment (the swarm's own runs).
BASELINE = "baseline"  # an agent's first measured result: its reference, not an improvement
CALIBRATION_RUN = "calibration"  # a rerun of a baseline that calibrates the noise of the device class
CONTROL_RUN = "control"  # a rerun of the agent's reference beside a confirmation rerun
CONFIRMATION_RUN = "rerun"  # a rerun of a result (a confirmation's or `swarm verify`'s)
EXPERIMENT_RUN = "experiment"  # an agent's change


def kind_of(record: dict[str, Any]) -> str:
    """What a run is: an agent's experiment, or one of the runs the swarm makes on its own behalf."""
    if is_control(record):
        return CONTROL_RUN
    if record.get("verify_of"):
        return CALIBRATION_RUN if record.get("requested_by") == CALIBRATION else CONFIRMATION_RUN
    if (
        record.get("status") == KEEP
        and record.get("reference") is None
        and str(record.get("reason") or "").startswith(BASELINE)
    ):
        return BASELINE  # kept against nothing: the agent's first result (swarm.board.noise.decide says so)
    return EXPERIMENT_RUN


@dataclass
class Standing:
    """One group's state of affairs. Record lists hold the latest record of each agent experiment."""

    key: GroupKey
    best: Best | None  # swarm.board.fold.best: the lowest confirmed mean
    baseline: ContentStats | None  # the run's base train.py as measured in this group
    sigma: float  # single-run sigma the noise rule uses (the pooled one, bounded below by the floor)
    kept: list[dict[str, Any]] = field(default_factory=list)  # agents' changes decided keep
    marginal: list[dict[str, Any]] = field(default_factory=list)  # improved, inside the noise band
    promising: list[dict[str, Any]] = field(default_factory=list)  # awaiting confirmation reruns
    discarded: list[dict[str, Any]] = field(default_factory=list)  # no improvement, or stopped early
    # crash / timeout / invalid, with a reason: the agents' experiments and the swarm's own runs alike
    failed: list[dict[str, Any]] = field(default_factory=list)
    pending: int = 0  # agents' experiments queued or running
    own_runs: dict[str, int] = field(default_factory=dict)  # the swarm's own runs by kind (finished)

    def is_kept(self, train_sha256: str) -> bool:
        return any(e.get("train_sha256") == train_sha256 for e in self.kept)

    @property
    def confirmed_gain(self) -> tuple[float, float] | None:
        """(gain, its sigma) of a best an agent's change reached with a confirmed keep over the baseline;
        the sigma is that of a difference of the two means, sigma x sqrt(1/n + 1/n_baseline)."""
        best, baseline = self.best, self.baseline
        if best is None or baseline is None or best.train_sha256 == baseline.train_sha256:
            return None
        if not self.is_kept(best.train_sha256) or best.mean >= baseline.mean:
            return None
        return baseline.mean - best.mean, self.sigma * math.sqrt(1 / best.n + 1 / baseline.n)

    def in_words(self) -> str:
        """The one sentence on where the group stands (the demo's closing line)."""
        device, profile = self.key
        waiting = f"{len(self.promising)} promising awaiting confirmation"
        if self.best is None:
            return f"{device} / {profile}: no confirmed result yet (the baseline is still being measured); {waiting}"
        gain = self.confirmed_gain
        if gain is not None:
            return (
                f"{device} / {profile}: a confirmed gain of {gain[0]:.6f} ± {gain[1]:.6f} over the baseline "
                f"({self.baseline.mean:.6f} -> {self.best.mean:.6f}, mean of {self.best.n} runs); {waiting}"
            )
        return f"{device} / {profile}: no change beat the noise band yet; {waiting}"


def kept_changes(experiments: Iterable[dict[str, Any]]) -> Counter[str]:
    """By agent, how many of its own changes the board kept (what `swarm status` and the report count as
    keeps: an agent's baseline and the reruns made in its name are not among them)."""
    return Counter(
        e.get("agent") for e in experiments if e.get("status") == KEEP and kind_of(e) == EXPERIMENT_RUN
    )


FAILED_ORDER = (CRASH, TIMEOUT, INVALID)


def standing(state: BoardState, key: GroupKey, baseline_sha256: str | None = None) -> Standing:
    """Where group `key` stands; `baseline_sha256`: the run's base train.py (default: the content of the
    group's first agent baseline, else of its first measured result)."""
    group = state.group(key)
    out = Standing(
        key=key,
        best=state.best(key),
        baseline=None,
        sigma=state.noise.sigma_for(key[1], group.pooled_sigma if group else None),
    )
    first_baseline = first_measured = None
    for e in state.experiments.values():
        if group_of(e) != key:
            continue
        kind, status = kind_of(e), e.get("status")
        if status in PENDING_STATUSES:
            out.pending += kind == EXPERIMENT_RUN
            continue
        if is_measured(e) and (first_measured is None or submitted(e) < submitted(first_measured)):
            first_measured = e
        if kind != EXPERIMENT_RUN:
            out.own_runs[kind] = out.own_runs.get(kind, 0) + 1
            if status in FAILED_STATUSES:
                out.failed.append(e)  # a failed calibration or control run is a failure all the same
            if kind == BASELINE and (first_baseline is None or submitted(e) < submitted(first_baseline)):
                first_baseline = e
            continue
        bucket = {KEEP: out.kept, MARGINAL: out.marginal, PROMISING: out.promising}.get(status)
        if bucket is None:
            bucket = (
                out.failed
                if status in FAILED_STATUSES
                else out.discarded
                if status in (DISCARD, PRUNED)
                else None
            )
        if bucket is not None:
            bucket.append(e)
    candidates = [baseline_sha256] + [e["train_sha256"] for e in (first_baseline, first_measured) if e]
    out.baseline = next((c for c in (state.content(key, s) for s in candidates if s) if c), None)
    for records in (out.kept, out.marginal, out.promising, out.discarded):
        records.sort(key=lambda e: (float(e["val_bpb"]) if has_result(e) else math.inf, submitted(e)))
    out.failed.sort(key=lambda e: (FAILED_ORDER.index(e["status"]), submitted(e)))
    return out
