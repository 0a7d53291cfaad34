"""What the detail pane shows, read on a worker: an experiment's diff against its parent and its log (its
fields are swarm.results.display's result block, as `swarm wait` prints them).

All of it is agent-made text (train.py, its output), so every line goes through `escape_text` before it
reaches a widget.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swarm.errors import GitError
from swarm.repo.git import first_parent, git
from swarm.results.display import escape_text

MAX_LINES = 400
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
