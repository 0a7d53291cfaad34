"""Processes on this machine as /proc shows them: for tests that check what an agent or a trainer left
running, or that no command line carries a secret."""

from __future__ import annotations

from pathlib import Path


def command_lines() -> dict[int, bytes]:
    """Every readable process's command line, its arguments joined by spaces."""
    found = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            found[int(cmdline.parent.name)] = cmdline.read_bytes().replace(b"\0", b" ")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # gone between the listing and the read, or not ours to read
    return found


def processes_with(text: str | bytes) -> list[int]:
    """Pids of the processes whose command line contains `text`."""
    needle = text.encode() if isinstance(text, str) else text
    return [pid for pid, line in command_lines().items() if needle in line]
