"""Agent-provided text made safe to show: control characters become visible escapes, never effects.

Descriptions, notes, logs and pane captures come from agents (or from programs agents wrote). Shown on a
terminal, an ANSI escape in them would recolour or move the cursor, and in a Textual widget a string is
read as markup; both are interpretation of data. `visible` turns every control character (other than
newline and tab) into its `\\xNN` spelling, so `\\x1b[31m` is shown as those seven characters. Markup is
not this module's concern: displays wrap the result in a rich `Text`, which is never parsed as markup.
"""

from __future__ import annotations

import re

# C0 controls except \t and \n, DEL, and C1 controls (U+0080..U+009F: 8-bit CSI and friends).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _spell(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def visible(text: object) -> str:
    """`text` with each control character (except newline and tab) spelled out as `\\xNN`."""
    return _CONTROL.sub(_spell, "" if text is None else str(text))


def one_line(text: object, width: int | None = None) -> str:
    """The first line of `text`, made visible, cut to `width` characters with an ellipsis."""
    line = visible(text).strip().split("\n", 1)[0].replace("\t", " ")
    if width is not None and len(line) > width:
        return line[: max(width - 1, 0)] + "…"
    return line
