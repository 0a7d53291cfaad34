"""Small formatters shared by the TUI's widgets: durations, progress bars, values, and agent text as Text.

Agent text always becomes a rich `Text` built from `escape_text` (control characters spelled out), never a
string: Textual reads plain strings in tables as markup, so `[bold red]x[/]` would be drawn bold and red.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from swarm.results.display import escape_text


def agent_text(text: Any, width: int | None = None, style: str = "") -> Text:
    """Agent-provided text for display: control characters escaped, markup shown literally."""
    return Text(escape_text(text, width), style=style, no_wrap=True, overflow="ellipsis")


def duration(seconds: float | None) -> str:
    """3:07 for minutes, 5h02m for hours, 3d04h for days."""
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    if seconds < 3600:
        return f"{seconds // 60}:{seconds % 60:02d}"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def bar(fraction: float, width: int) -> Text:
    """A thin progress bar `width` cells wide filled to `fraction` (half-cell steps); full past 1."""
    halves = round(min(max(fraction, 0.0), 1.0) * width * 2)
    full, half = divmod(halves, 2)
    done = "━" * full + ("╸" if half else "")
    return Text.assemble((done, "cyan"), ("━" * (width - len(done)), "grey30"))


def value(v: float | None, digits: int = 6) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def signed(v: float | None, digits: int = 6) -> str:
    return "-" if v is None else f"{v:+.{digits}f}".replace("-", "−")


def mentions(needle: str, *fields: Any) -> bool:
    """Whether the filter text occurs (case-insensitively) in any of the fields; "" matches everything."""
    return not needle or needle.lower() in " ".join(str(f) for f in fields).lower()


def short_device(device: str | None) -> str:
    """ "NVIDIA H100 80GB HBM3" -> "H100 80GB"; "cpu" stays."""
    words = [w for w in str(device or "?").split() if w not in ("NVIDIA", "GeForce", "Tesla")]
    return " ".join(words[:2]) or "?"
