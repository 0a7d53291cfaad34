"""Which board file, how far into it, and which code read it: the marks a cache of the folded board is keyed
on (the state checkpoint, swarm.board.checkpoint; the saved answers of queries, swarm.results.answers).

A board is only ever appended to, so a cache taken at offset N is valid for the same file (device and
inode) as long as the bytes at its start and just before N are those it saw: a board truncated, replaced
or rewritten in place is caught. This module imports nothing of the board's own, so that a command that
only checks a cache starts fast.
"""

from __future__ import annotations

import os
import sys
from hashlib import sha256
from pathlib import Path
from typing import Any

RECORDS_FILE = "board.jsonl"
EDGE_BYTES = 4096  # the bytes at the start of the board and just before the offset that identify it


def edges(path: Path, offset: int) -> tuple[str, str]:
    """Hashes of the board's first bytes and of the bytes just before `offset`."""
    with open(path, "rb") as f:
        head = f.read(min(EDGE_BYTES, offset))
        f.seek(max(0, offset - EDGE_BYTES))
        tail = f.read(offset - max(0, offset - EDGE_BYTES))
    return sha256(head).hexdigest(), sha256(tail).hexdigest()


def mark(path: Path, offset: int) -> dict[str, Any] | None:
    """The identity of the board file at `offset`, or None when it is gone or shorter."""
    try:
        stat = os.stat(path)
        if offset <= 0 or stat.st_size < offset:
            return None
        head, tail = edges(path, offset)
    except OSError:
        return None
    return {"offset": offset, "device": stat.st_dev, "inode": stat.st_ino, "head": head, "tail": tail}


def matches(path: Path, saved: dict[str, Any], exact: bool) -> bool:
    """Whether the board file is still the one `saved` (a `mark`) was taken of; `exact`: and ends there."""
    offset = saved.get("offset")
    try:
        stat = os.stat(path)
    except OSError:
        return False
    if type(offset) is not int or (stat.st_dev, stat.st_ino) != (saved.get("device"), saved.get("inode")):
        return False
    if not 0 < offset <= stat.st_size or (exact and stat.st_size != offset):
        return False
    try:
        return edges(path, offset) == (saved.get("head"), saved.get("tail"))
    except OSError:
        return False


def source_key(directories: list[Path], salt: str = "") -> str:
    """A hash of the Python version and the source of every module in `directories`: it changes whenever
    the code that wrote a cache does, so no format version has to be remembered and bumped."""
    digest = sha256(f"{sys.version_info[:2]}/{salt}".encode())
    for directory in directories:
        for source in sorted(Path(directory).glob("*.py")):
            digest.update(f"{directory.name}/{source.name}".encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()
