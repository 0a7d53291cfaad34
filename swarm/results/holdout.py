"""Holdout beside val, and the selection gap: does the best's gain hold on rows nobody selected on?

Every keep, confirmation and best is chosen on val_bpb, thousands of times over one set of rows; the
holdout rows (prepare.py) are never chosen on, and their values sit in a private file agents cannot read
(swarm.board.holdout). Along the best's lineage, from the baseline's train.py to the best's:

    val gain       = baseline val mean      - best val mean        (lower bits per byte is better)
    holdout gain   = baseline holdout mean  - best holdout mean
    selection gap  = val gain - holdout gain

A gap inside its noise band says the gain holds on the holdout; a gap above it says part of the gain fits
the validation rows (the winner's curse, or a change that fits those rows) and will not carry over. The
band is two standard errors of the gap, from each content's spread of val_bpb over its runs (the
holdout's own run-to-run spread is not known from one run; with n = 1 a content borrows the group's
noise band / 2 as its sigma).

Shown to the human only: `swarm best` (outside an agent's sandbox, where the file is there to read) and
`swarm report`. Where the file is hidden these functions see no values and show nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from swarm.board.experiments import group_of, is_measured
from swarm.board.fold import BoardState
from swarm.board.holdout import read_holdout
from swarm.board.stats import ContentStats
from swarm.repo.git import file_at
from swarm.target.data import sha256_bytes


@dataclass(frozen=True)
class HoldoutMean:
    mean: float
    n: int  # runs of the content with a holdout value


@dataclass(frozen=True)
class SelectionGap:
    val_gain: float
    holdout_gain: float
    gap: float
    band: float | None  # two standard errors of the gap; None when no sigma is known

    @property
    def holds(self) -> bool:
        """The best's gain holds on the holdout: the gap is within its noise band (or negative)."""
        return self.gap <= (self.band or 0.0)

    def verdict(self) -> str:
        band = f" ± {self.band:.4f}" if self.band is not None else ""
        head = (
            f"selection gap {self.gap:+.4f}{band} (val gain {self.val_gain:+.4f}, "
            f"holdout gain {self.holdout_gain:+.4f})"
        )
        if self.holds:
            return f"{head}: the gain holds on the holdout"
        return f"{head}: the gain does NOT hold on the holdout (part of it fits the validation rows)"


def holdout_mean(content: ContentStats | None, values: dict[str, float]) -> HoldoutMean | None:
    """The mean holdout value over a content's runs that have one."""
    if content is None:
        return None
    found = [values[eid] for eid in content.ids if eid in values]
    return HoldoutMean(sum(found) / len(found), len(found)) if found else None


def selection_gap(
    baseline: ContentStats | None, best: ContentStats | None, values: dict[str, float], noise_band: float
) -> SelectionGap | None:
    """The gap between the baseline's content and the best's, or None without holdout values for both."""
    before, after = holdout_mean(baseline, values), holdout_mean(best, values)
    if baseline is None or best is None or before is None or after is None:
        return None
    if baseline.mean is None or best.mean is None:
        return None
    val_gain = baseline.mean - best.mean
    holdout_gain = before.mean - after.mean
    variance = 0.0
    for content, held in ((baseline, before), (best, after)):
        sigma = content.sigma if content.sigma is not None else (noise_band / 2 if noise_band else None)
        if sigma is None:
            return SelectionGap(val_gain, holdout_gain, val_gain - holdout_gain, None)
        variance += sigma**2 / content.n + sigma**2 / held.n  # its val mean and its holdout mean
    return SelectionGap(val_gain, holdout_gain, val_gain - holdout_gain, 2 * math.sqrt(variance))


def best_holdout_lines(state: BoardState, board_dir: Path, baseline_sha: str | None) -> list[str]:
    """For each best: its holdout beside its val, and the selection gap from the baseline's train.py.
    Empty where no holdout value can be read (inside an agent's sandbox, or a run without one)."""
    values = read_holdout(board_dir)
    if not values:
        return []
    lines = []
    for key, best in state.bests().items():
        content = state.content(key, best.train_sha256)
        held = holdout_mean(content, values)
        if held is None:
            continue
        lines.append(
            f"  {key[0]} / {key[1]}: holdout_bpb {held.mean:.6f} (n={held.n}) beside val_bpb {best.mean:.6f} "
            f"(n={best.n})"
        )
        baseline = baseline_content(state, key, baseline_sha)
        gap = selection_gap(baseline, content, values, best.band)
        if gap is not None and baseline is not content:
            lines.append(f"    from the baseline: {gap.verdict()}")
    return ["holdout (private: never shown to agents, never selected on):", *lines] if lines else []


def baseline_sha(repo: Path | None, state: BoardState) -> str | None:
    """The sha256 of the run's base train.py: the content every lineage starts from."""
    if repo is None or state.run is None:
        return None
    source = file_at(repo, state.run.base, "train.py")
    return sha256_bytes(source) if source is not None else None


def holdout_section(
    state: BoardState, key: tuple[str, str], steps: list, baseline_sha: str | None, values: dict[str, float]
) -> str:
    """The report's part for one best: each lineage step's val and holdout means side by side, and, said
    plainly, whether the best's gain over the baseline holds on the holdout. Empty without holdout values."""
    if not values or not steps:
        return ""
    baseline = baseline_content(state, key, baseline_sha)
    rows = [("baseline", baseline)]
    rows += [
        (step.record.get("id"), state.content(key, step.record.get("train_sha256") or "")) for step in steps
    ]
    lines = [
        f"## Does the gain hold on the holdout? {key[0]} / {key[1]}\n",
        "The holdout rows are never selected on (agents never see them); each train.py's mean over its runs:\n",
        "| step | val_bpb | holdout_bpb | n (val / holdout) |",
        "|---|---|---|---|",
    ]
    for name, content in rows:
        held = holdout_mean(content, values)
        val = f"{content.mean:.6f}" if content is not None and content.mean is not None else "-"
        hold = f"{held.mean:.6f}" if held else "-"
        counts = f"{content.n if content else 0} / {held.n if held else 0}"
        lines.append(f"| {name} | {val} | {hold} | {counts} |")
    best_content = rows[-1][1]
    noise_band = next((b.band for k, b in state.bests().items() if k == key), 0.0)
    gap = selection_gap(baseline, best_content, values, noise_band)
    if gap is None:
        lines.append("\nNo selection gap: the baseline or the best has no holdout value.")
    else:
        lines.append(f"\n**{gap.verdict()[0].upper()}{gap.verdict()[1:]}.**")
    return "\n".join(lines) + "\n"


def baseline_content(state: BoardState, key: tuple[str, str], sha: str | None) -> ContentStats | None:
    """The content a lineage's gain is counted from: the base's train.py in this group, else (as the
    report's baseline) the group's first measured content."""
    content = state.content(key, sha) if sha else None
    if content is not None:
        return content
    first = min(
        (e for e in state.experiments.values() if is_measured(e) and group_of(e) == key),
        key=lambda e: e.get("submitted_at") or 0.0,
        default=None,
    )
    return state.content(key, first["train_sha256"]) if first else None


@dataclass(frozen=True)
class LineageHoldout:
    """Holdout means along a lineage, for `swarm watch`: the baseline's, each step's, and the gap."""

    baseline: float | None
    steps: tuple[float | None, ...]
    gap: SelectionGap | None


def lineage_holdout(
    state: BoardState, steps: list, repo: Path | None, board_dir: Path
) -> LineageHoldout | None:
    """The holdout along a lineage, or None where no holdout value can be read (an agent's sandbox)."""
    values = read_holdout(board_dir)
    if not values or not steps:
        return None
    key = group_of(steps[-1].record)
    baseline = baseline_content(state, key, baseline_sha(repo, state))
    contents = [state.content(key, step.record.get("train_sha256") or "") for step in steps]
    means = tuple(m.mean if (m := holdout_mean(c, values)) else None for c in contents)
    base = holdout_mean(baseline, values)
    band = state.bests().get(key).band if state.bests().get(key) else 0.0
    gap = selection_gap(baseline, contents[-1], values, band)
    return LineageHoldout(base.mean if base else None, means, gap)
