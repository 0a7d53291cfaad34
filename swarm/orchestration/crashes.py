"""Why a process died, in one line: the last thing it printed.

A crashed agent is useless to a human who only sees `crashed+9`: `swarm status`, watch, `swarm spawn`
and the coordinator's crash-loop verdict all show the last line the process wrote (for a Python crash,
the exception's line). It is read from the dead pane (tmux keeps it with remain-on-exit), else from the
end of the pane's log file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from swarm.board.store import PROCESS
from swarm.orchestration.tmux import RunTmux, TmuxError

REASON_CHARS = 200
CRASH_LOOP_EVENT = "crash_loop"  # the `process` record of a process the coordinator no longer restarts
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|[\x00-\x08\x0b-\x1f\x7f]")
# what tmux itself writes into a dead pane, and the launcher's banner: never the reason
_NOT_REASONS = re.compile(r"^(Pane is dead|\[exited\])")
LOG_TAIL_BYTES = 16384


def last_line(text: str) -> str | None:
    """The last non-empty line of a process's output, escapes removed, cut to REASON_CHARS."""
    for line in reversed(text.splitlines()):
        clean = _ESCAPES.sub("", line).strip()
        if clean and not _NOT_REASONS.match(clean):
            return clean[:REASON_CHARS]
    return None


def log_tail(log: Path) -> str:
    """The end of a pane's log file ('' when it does not exist yet)."""
    try:
        with open(log, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - LOG_TAIL_BYTES))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def last_output(tmux: RunTmux, window: str, log: Path) -> str | None:
    """The last line a window's process printed: from its pane, else from its log."""
    try:
        line = last_line(tmux.capture(window))
    except TmuxError:
        line = None
    return line or last_line(log_tail(log))


def crash_reason(last: str | None, records: list[dict[str, Any]], window: str, tag: str) -> str:
    """What `swarm status` and watch say of a crashed window: its last line, as "crash loop: <line>" once
    the coordinator's latest word on it is that it gave up (`records`: the board's process records)."""
    latest = next(
        (
            r
            for r in reversed(records)
            if r.get("type") == PROCESS and r.get("tag") == tag and r.get("window") == window
        ),
        {},
    )
    if latest.get("event") == CRASH_LOOP_EVENT:
        return f"crash loop: {latest.get('reason') or last or 'no output'}"
    return last or "no output"
