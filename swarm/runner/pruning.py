"""Early stop of hopeless runs: compare a trainer's loss curve with the best's, stop it when clearly behind.

train.py prints progress lines `step 00042 ( 31.5%) loss 4.1234 ...`: the share of the time budget spent
and the smoothed training loss. While a trainer runs, the runner reads the new lines of its log; once the
run has spent `min_fraction` of the budget, a run whose loss is above the reference curve by more than
`margin` (relative) at `patience` progress points in a row is stopped and recorded as `pruned`, with
`saved_seconds`, the training time left in the budget.

The reference is the group's current best content (a confirmed mean, swarm.board.fold): the median, at
each point of the budget, of the curves its runs printed. A curve is what a trainer says about itself, so:
- it may only stop a run, never promote one: a pruned run has no val_bpb, and every number on the board
  stays the runner's measurement;
- a reference run is trusted only when its last printed loss agrees with its measured val_bpb as the
  group's other runs do (the ratio val_bpb / final loss within `trust_tolerance` of the group's median),
  so a train.py that prints a forged low curve cannot get everyone else's runs stopped.

Off by default (`[pruning] enabled = true` in swarm.toml turns it on); bench/pruning_replay.py measures
what it saves and which eventual winners it would have stopped, from the logs of a real board.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarm.board.experiments import PRUNED, GroupKey, group_of, is_measured
from swarm.board.fold import BoardState
from swarm.runner.process import kill_group, run_with_timeout

PROGRESS = re.compile(rb"^step \d+ \(\s*([0-9.]+)%\) loss ([0-9.]+(?:e[-+]?\d+)?)", re.MULTILINE)
TRUST_SAMPLE = 40  # recent measured runs of a group whose val_bpb / final loss ratio sets the median
Curve = list[tuple[float, float]]  # (fraction of the budget spent, smoothed training loss), in order


@dataclass(frozen=True)
class PruningSettings:
    """`[pruning]` in swarm.toml."""

    enabled: bool = False
    min_fraction: float = 0.3  # never stop a run before it spent this share of its budget
    margin: float = 0.05  # stop when the loss is above the reference's by more than this fraction
    patience: int = 2  # ... at this many progress points in a row
    poll_s: float = 0.5  # how often the runner reads the trainer's new log lines
    trust_tolerance: float = 0.1  # a reference run's val_bpb / final loss within this of the group median


def parse_curve(text: bytes) -> Curve:
    """The progress points of a trainer's output, as (fraction of the budget, loss)."""
    return [(float(m.group(1)) / 100.0, float(m.group(2))) for m in PROGRESS.finditer(text)]


def loss_at(curve: Curve, fraction: float) -> float | None:
    """The curve's loss at a point of the budget (linear between points), None outside what it covers."""
    if not curve or fraction < curve[0][0] or fraction > curve[-1][0]:
        return None
    for (f0, l0), (f1, l1) in zip(curve, curve[1:], strict=False):
        if f0 <= fraction <= f1:
            return l0 if f1 == f0 else l0 + (l1 - l0) * (fraction - f0) / (f1 - f0)
    return curve[-1][1]


class CurveCache:
    """Curves of finished runs read from their logs, once each (logs of finished runs do not change)."""

    def __init__(self, board_dir: Path):
        self.board_dir = Path(board_dir)
        self._curves: dict[str, Curve] = {}

    def of(self, record: dict[str, Any]) -> Curve:
        eid = record["id"]
        if eid not in self._curves:
            try:
                text = (self.board_dir / str(record.get("log"))).read_bytes() if record.get("log") else b""
            except OSError:
                text = b""
            self._curves[eid] = parse_curve(text)
        return self._curves[eid]


def _ratio(curve: Curve, record: dict[str, Any]) -> float | None:
    if not curve or curve[-1][1] <= 0:
        return None
    return float(record["val_bpb"]) / curve[-1][1]


def reference_curve(
    state: BoardState, key: GroupKey, curves: CurveCache, settings: PruningSettings
) -> Curve | None:
    """The pointwise median of the trusted curves of the group's best content, or None."""
    best = state.best(key)
    if best is None:
        return None
    group = state.groups[key]
    recent = sorted(
        (e for e in state.experiments.values() if is_measured(e) and group_of(e) == key),
        key=lambda e: e.get("finished_at") or 0.0,
    )[-TRUST_SAMPLE:]
    ratios = [r for e in recent if (r := _ratio(curves.of(e), e)) is not None]
    if len(ratios) < 3:
        return None  # too few runs to tell an honest curve from a forged one
    median = statistics.median(ratios)
    trusted = []
    for eid in group.contents[best.train_sha256].ids:
        record = state.experiments[eid]
        curve = curves.of(record)
        ratio = _ratio(curve, record)
        if ratio is not None and abs(ratio - median) <= settings.trust_tolerance * median:
            trusted.append(curve)
    if not trusted:
        return None
    points = sorted({f for curve in trusted for f, _ in curve})
    out = []
    for f in points:
        values = [v for curve in trusted if (v := loss_at(curve, f)) is not None]
        if values:
            out.append((f, statistics.median(values)))
    return out


class Monitor:
    """Follows one trainer's log and says when to stop it."""

    def __init__(self, log: Path, reference: Curve, settings: PruningSettings):
        self.log = Path(log)
        self.reference = reference
        self.settings = settings
        self.offset = self.log.stat().st_size if self.log.exists() else 0  # the runner's header is not output
        self.pending = b""
        self.behind = 0  # progress points in a row beyond the margin
        self.stopped_at: float | None = None  # the fraction of the budget when it was stopped
        self.detail = ""

    def check(self) -> bool:
        """Read what the trainer printed since the last call; True when the run should stop now."""
        try:
            with open(self.log, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return False
        self.offset += len(data)
        data = self.pending + data
        cut = data.rfind(b"\n") + 1
        self.pending = data[cut:]
        return any(self.observe(fraction, loss) for fraction, loss in parse_curve(data[:cut]))

    def observe(self, fraction: float, loss: float) -> bool:
        """Take one progress point; True when the run should stop now."""
        reference = loss_at(self.reference, fraction)
        if fraction < self.settings.min_fraction or reference is None:
            return False
        if loss > reference * (1 + self.settings.margin):
            self.behind += 1
        else:
            self.behind = 0
        if self.behind >= self.settings.patience:
            self.stopped_at = fraction
            self.detail = (
                f"loss {loss:.4f} vs the best's {reference:.4f} at {100 * fraction:.0f}% of the budget"
            )
            return True
        return False

    def wait(self, proc: subprocess.Popen, timeout_s: float, grace_s: float) -> tuple[int, bool]:
        """run_with_timeout, reading the log every poll_s; a run to prune has its group ended at once."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= self.settings.poll_s:
                return run_with_timeout(proc, max(left, 0.0), grace_s)
            try:
                proc.wait(timeout=self.settings.poll_s)
            except subprocess.TimeoutExpired:
                if self.check():
                    kill_group(proc.pid, grace_s, leader=proc)
                    return proc.wait(), False
                continue
            return run_with_timeout(proc, 0.0, grace_s)  # it exited: end what it left in its group

    def outcome(self, budget_s: float) -> dict[str, Any]:
        """The fields of a pruned run's record."""
        return {
            "status": PRUNED,
            "val_bpb": None,
            "reason": f"stopped early, clearly behind the best: {self.detail}",
            "saved_seconds": round(budget_s * (1.0 - (self.stopped_at or 0.0)), 1),
        }
