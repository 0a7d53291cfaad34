"""Where `plot`, `export` and `report --out` write: checked before anything is computed or written.

A path into a directory that does not exist (or is a file, or cannot be written) is a user mistake: one
line and a non-zero exit, and no half-written picture or report left behind.
"""

from __future__ import annotations

import os
from pathlib import Path

from swarm.errors import SwarmError


def output_file(path: str | Path) -> Path:
    """`path` as a file this process can create or replace; SwarmError (one line) when it cannot."""
    p = Path(path)
    if p.is_dir():
        raise SwarmError(f"cannot write {p}: it is a directory")
    _writable_directory(p.parent, p)
    return p


def output_directory(path: str | Path) -> Path:
    """`path` as a directory to write files into (made if its parent exists); SwarmError when it cannot."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise SwarmError(f"cannot write into {p}: it is a file, not a directory")
    _writable_directory(p if p.is_dir() else p.parent, p)
    return p


def _writable_directory(directory: Path, target: Path) -> None:
    where = directory if str(directory) else Path(".")
    if not where.is_dir():
        raise SwarmError(f"cannot write {target}: directory {where} does not exist")
    if not os.access(where, os.W_OK | os.X_OK):
        raise SwarmError(f"cannot write {target}: directory {where} is not writable")
