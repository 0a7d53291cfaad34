"""The private holdout record: `board/private/holdout.jsonl`, the holdout bits per byte of every measured run.

The holdout rows (prepare.py) are never selected on: agents, optimisers and every keep / confirm decision
see val_bpb only, so the holdout can say, to the human, whether a gain found by thousands of selections on
the validation rows holds on rows nobody selected on. For that it must stay unread by agents: it is not on
the board (whose lines agents read), not in a run's log, and this directory is covered by an empty one in
every agent's sandbox (swarm.orchestration.sealing, like the board's key). The evaluator writes its result
file here too while a run is evaluated (swarm.runner.sealed), for the same reason.

Each line is {"id": experiment id, "holdout_bpb": float}; a reader gets {} where the file is absent or
hidden (inside an agent's sandbox), so every display simply shows no holdout there.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

PRIVATE_DIR = "private"
HOLDOUT_FILE = "holdout.jsonl"
HOLDOUT_FIELD = "holdout_bpb"  # the field the evaluator's result has, and that never reaches the board


def private_dir(board_dir: Path, create: bool = False) -> Path:
    """`board/private/`: made (owner-only) with `create`, before any agent sandbox starts, so that the
    sandbox can cover it (a directory made later would show through)."""
    path = Path(board_dir) / PRIVATE_DIR
    if create:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def record_holdout(board_dir: Path, experiment: str, value: float) -> None:
    """Append one run's holdout value: one whole line, one write, fsynced (a crash loses no earlier line).
    Called under the board lock, so lines never interleave."""
    line = json.dumps({"id": experiment, HOLDOUT_FIELD: float(value)}) + "\n"
    path = private_dir(board_dir, create=True) / HOLDOUT_FILE
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_holdout(board_dir: Path) -> dict[str, float]:
    """Experiment id -> holdout_bpb; {} when the file is absent or out of sight. A torn last line (a crash
    mid-write) is skipped."""
    try:
        text = (private_dir(board_dir) / HOLDOUT_FILE).read_text()
    except OSError:
        return {}
    values: dict[str, float] = {}
    for line in text.splitlines():
        try:
            entry: Any = json.loads(line)
        except ValueError:
            continue
        value = entry.get(HOLDOUT_FIELD) if isinstance(entry, dict) else None
        if isinstance(entry.get("id"), str) and isinstance(value, int | float) and math.isfinite(value):
            values[entry["id"]] = float(value)
    return values
