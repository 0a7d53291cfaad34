"""Which board file, how far into it, and which code read it: the marks a cache of the folded board is keyed
on (the state checkpoint, swarm.board.checkpoint; the saved answers of queries, swarm.results.answers).

A board is only ever appended to, so a cache taken at offset N is valid for the same file (device and
inode) as long as the bytes at its start and just before N are those it saw: a board truncated, replaced
or rewritten in place is caught. These marks catch accidents, not forgers (whoever may rewrite the board
may rewrite its caches), so CRC-32 serves: this module imports nothing heavy (no hashlib, which loads
OpenSSL), so that a command that only checks a cache starts fast.
"""

from __future__ import annotations

import os
import sys
import zlib
from pathlib import Path

RECORDS_FILE = "board.jsonl"
EDGE_BYTES = 4096  # the bytes at the start of the board and just before the offset that identify it


def edges(path: Path, offset: int) -> tuple[int, int]:
    """Checksums of the board's first bytes and of the bytes just before `offset`."""
    with open(path, "rb") as f:
        head = f.read(min(EDGE_BYTES, offset))
        f.seek(max(0, offset - EDGE_BYTES))
        tail = f.read(offset - max(0, offset - EDGE_BYTES))
    return zlib.crc32(head), zlib.crc32(tail)


def mark(path: Path, offset: int) -> dict | None:
    """The identity of the board file at `offset`, or None when it is gone or shorter."""
    try:
        stat = os.stat(path)
        if offset <= 0 or stat.st_size < offset:
            return None
        head, tail = edges(path, offset)
    except OSError:
        return None
    return {"offset": offset, "device": stat.st_dev, "inode": stat.st_ino, "head": head, "tail": tail}


def matches(path: Path, saved: dict, exact: bool) -> bool:
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
    key = f"{sys.version_info[:2]}/{salt}"
    for directory in directories:
        for source in sorted(Path(directory).glob("*.py")):
            data = source.read_bytes()
            key += f" {directory.name}/{source.name}:{len(data)}:{zlib.crc32(data):08x}"
    return f"{zlib.crc32(key.encode()):08x}-{len(key)}"
