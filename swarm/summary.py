"""Parse the summary block train.py prints at the end of a run (`---` then `key: value` lines)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

INT_FIELDS = frozenset({"num_steps", "depth"})
FLOAT_FIELDS = frozenset(
    {
        "val_bpb",
        "training_seconds",
        "total_seconds",
        "peak_vram_mb",
        "mfu_percent",
        "total_tokens_M",
        "num_params_M",
    }
)
TEXT_FIELDS = frozenset({"device", "profile"})
TAIL_BYTES = 64 * 1024  # the block is the last thing a run prints; logs of long runs can be large


def parse_summary(text: str) -> dict[str, Any] | None:
    """The fields of the last summary block in `text`, or None when there is none.

    Numbers are parsed as floats (ints for num_steps and depth); a value that does not parse is left out,
    so a missing or garbled val_bpb reads the same as none. `nan` / `inf` parse (and are judged later).
    """
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "---"]
    if not starts:
        return None
    summary: dict[str, Any] = {}
    for line in lines[starts[-1] + 1 :]:
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep:
            continue
        try:
            if key in FLOAT_FIELDS:
                summary[key] = float(value)
            elif key in INT_FIELDS:
                summary[key] = int(float(value))
            elif key in TEXT_FIELDS:
                summary[key] = value
        except ValueError:
            continue
    return summary


def read_summary(log: Path) -> dict[str, Any] | None:
    """The summary block at the end of a run's log."""
    try:
        with open(log, "rb") as f:
            f.seek(max(f.seek(0, 2) - TAIL_BYTES, 0))
            tail = f.read().decode(errors="replace")
    except FileNotFoundError:
        return None
    return parse_summary(tail)


def is_finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def last_line(log: Path, limit: int = 200) -> str:
    """The last non-empty line of a log (for a crash's reason), shortened."""
    try:
        with open(log, "rb") as f:
            f.seek(max(f.seek(0, 2) - 4096, 0))
            lines = [line.strip() for line in f.read().decode(errors="replace").splitlines() if line.strip()]
    except FileNotFoundError:
        return ""
    return lines[-1][:limit] if lines else ""
