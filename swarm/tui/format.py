"""Small formatters shared by the TUI's widgets: durations, progress bars, values, and agent text as Text.

Agent text always becomes a rich `Text` built from `escape_text` (control characters spelled out), never a
string: Textual reads plain strings in tables as markup, so `[bold red]x[/]` would be drawn bold and red.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from swarm.display import escape_text

BAR_CELLS = " ▏▎▍▌▋▊▉█"


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


def bar(fraction: float, width: int) -> str:
    """A bar `width` cells wide filled to `fraction` (eighths of a cell); a full bar past 1."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (BAR_CELLS[part] if part else "")).ljust(width)


def value(v: float | None, digits: int = 6) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def signed(v: float | None, digits: int = 6) -> str:
    return "-" if v is None else f"{v:+.{digits}f}".replace("-", "−")
