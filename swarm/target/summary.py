"""The summary block train.py prints at the end of a run: its keys in order, and one parser for all readers."""

from __future__ import annotations

import math
from pathlib import Path

# The order train.py prints them in (upstream autoresearch's block, plus device and profile).
SUMMARY_KEYS = (
    "val_bpb",
    "training_seconds",
    "total_seconds",
    "startup_seconds",  # before the model is built and ready (imports, data, model)
    "compile_seconds",  # the compile warm-up before the training window (0 when nothing compiles)
    "peak_vram_mb",
    "mfu_percent",
    "total_tokens_M",
    "num_steps",
    "num_params_M",
    "depth",
    "device",
    "profile",
)
INTEGER_KEYS = frozenset({"num_steps", "depth"})
TEXT_KEYS = frozenset({"device", "profile"})


def parse_summary(output: str) -> dict[str, float | int | str]:
    """The `key: value` lines after the last `---` line of a run's output, numbers converted. Unknown keys
    are kept as text; a value that does not parse as its number stays text too, so a caller checking
    `isinstance(result.get("val_bpb"), float)` sees a torn or tampered line as missing. Returns {} when
    there is no block (a crash)."""
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "---"]
    if not starts:
        return {}
    summary: dict[str, float | int | str] = {}
    for line in lines[starts[-1] + 1 :]:
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or not key or " " in key:
            continue
        summary[key] = _convert(key, value)
    return summary


def _convert(key: str, value: str) -> float | int | str:
    if key in TEXT_KEYS or key not in SUMMARY_KEYS:
        return value
    try:
        return int(value) if key in INTEGER_KEYS else float(value)
    except ValueError:
        return value


# ---------------------------------------------------------------------------------------------------------
# Reading it from a run's log (the runner)

TAIL_BYTES = 64 * 1024  # the block is the last thing a run prints; logs of long runs can be large


def _tail(log: Path, size: int) -> str:
    """The last `size` bytes of a log as text ("" when there is no log)."""
    try:
        with open(log, "rb") as f:
            f.seek(max(f.seek(0, 2) - size, 0))
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def read_summary(log: Path) -> dict[str, float | int | str]:
    """The summary block at the end of a run's log ({} when there is none)."""
    return parse_summary(_tail(log, TAIL_BYTES))


def is_finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def last_line(log: Path, limit: int = 200) -> str:
    """The last non-empty line of a log (for a crash's reason), shortened."""
    lines = [line.strip() for line in _tail(log, 4096).splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""
