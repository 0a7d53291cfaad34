"""What the detail pane shows, read on a worker: an experiment's diff against its parent, its log and its lineage
(its fields are swarm.results.display's result block, as `swarm wait` prints them).

All of it is agent-made text (train.py, its output), so every line goes through `escape_text` before it
reaches a widget.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swarm.errors import GitError
from swarm.repo.git import first_parent, git
from swarm.results.display import escape_text, format_number
from swarm.results.holdout import LineageHoldout
from swarm.results.lineage import LineageStep

MAX_LINES = 400
MARK = "▶"  # the lineage step the selection is on
LOG_TAIL_BYTES = 64 * 1024


def escaped_lines(text: str, keep_last: int = MAX_LINES) -> str:
    """Each line with its control characters escaped (tabs kept as spaces); the last `keep_last` lines."""
    lines = text.splitlines()
    cut = len(lines) - keep_last
    shown = [escape_text(line.replace("\t", "    ")) for line in lines[max(cut, 0) :]]
    if cut > 0:
        shown.insert(0, f"... {cut} earlier lines not shown")
    return "\n".join(shown)


def experiment_diff(repo: Path, record: dict[str, Any]) -> str:
    """`git diff parent commit` of the experiment (its own change), escaped."""
    commit = record.get("commit")
    if not commit:
        return "(no commit recorded)"
    try:
        parent = record.get("parent") or first_parent(repo, commit)
        if parent is None:
            return f"(commit {commit[:12]} has no parent)"
        out = git(repo, "diff", "--stat", "--patch", parent, commit).decode(errors="replace")
    except GitError as e:
        return f"(no diff: {e})"
    return escaped_lines(out, keep_last=10_000) or "(no change against its parent)"


def experiment_log(board_dir: Path, record: dict[str, Any]) -> str:
    """The tail of the experiment's run log, escaped."""
    log = record.get("log")
    if not log:
        return "(no log recorded yet)"
    path = Path(board_dir) / log
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - LOG_TAIL_BYTES))
            data = f.read()
    except FileNotFoundError:
        return f"(log not found: {path})"
    except OSError as e:
        return f"(log unreadable: {path}: {e.strerror})"
    text = data.decode(errors="replace")
    if size > LOG_TAIL_BYTES:
        text = text.split("\n", 1)[-1]  # drop the partial first line
    return escaped_lines(text)


def lineage_text(
    baseline: float | None, steps: list[LineageStep], at: int, holdout: LineageHoldout | None = None
) -> str:
    """The lineage as a table, oldest first, from the run's base; the step at index `at` marked. With
    `holdout` (the human's watch, where the private values can be read) a holdout column and the gap."""
    head = steps[-1].record
    held = (f"  {'holdout':>9}",) if holdout else ("",)
    lines = [
        f"lineage of {escape_text(head['id'])}: {len(steps)} step(s) from the run's base "
        "([ and ] move along it; d, l, i, p, v act on the marked step)",
        "",
        f"    {'#':>2}  {'experiment':10}  {'agent':22}  {'val_bpb':>9}{held[0]}  {'change':>9}  description",
        f"    {0:>2}  {'base':10}  {'':22}  {format_number(baseline):>9}"
        + (f"  {format_number(holdout.baseline):>9}" if holdout else "")
        + f"  {'':>9}  baseline",
    ]
    previous = baseline
    for n, step in enumerate(steps):
        delta = step.delta
        if n == 0 and step.mean is not None and previous is not None:
            delta = step.mean - previous
        agent = escape_text(step.record.get("agent"), 10)
        if step.adopted_from:
            agent += f" < {escape_text(step.adopted_from, 10)}"
        mark = MARK if n == at else " "
        column = f"  {format_number(holdout.steps[n]):>9}" if holdout else ""
        lines.append(
            f"  {mark} {n + 1:>2}  {escape_text(step.record['id'], 10):10}  {agent:22}  "
            f"{format_number(step.mean):>9}{column}  {format_number(delta, '{:+.6f}'):>9}  "
            f"{escape_text(step.record.get('description'), 80)}"
        )
    lines += ["", "agent < other: the step's agent adopted the other agent's commit to build on it"]
    if holdout and holdout.gap:
        lines.append(f"holdout (private, never selected on): {holdout.gap.verdict()}")
    return "\n".join(lines)
