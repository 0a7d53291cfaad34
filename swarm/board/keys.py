"""Where a signed board's key lives: `board/keys/board.key`, made by `swarm spawn` (swarm.board.signing says what
it signs). Apart from the MAC code, so that a command that only looks for the key (a saved answer's reader:
swarm.results.answers) does not load the hashing libraries."""

from __future__ import annotations

import os
from pathlib import Path

KEY_DIR = "keys"
KEY_FILE = "board.key"


def key_dir(board_dir: Path) -> Path:
    return Path(board_dir) / KEY_DIR


def key_path(board_dir: Path) -> Path:
    return key_dir(board_dir) / KEY_FILE


def create_key(board_dir: Path) -> Path:
    """Give a board its signing key (kept when it has one): from now on only signed lines count."""
    path = key_path(board_dir)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(os.urandom(32).hex())  # os, not secrets: that module loads hashlib
        os.replace(tmp, path)
    return path


def load_key(board_dir: Path) -> bytes | None:
    """The board's key, or None: no key (an unsigned board), or none visible (inside an agent's sandbox)."""
    try:
        text = key_path(board_dir).read_text().strip()
    except OSError:
        return None
    return bytes.fromhex(text) if text else None


def has_key(board_dir: Path) -> bool:
    """Whether the board is signed at all (the key exists, readable here or not)."""
    return key_dir(board_dir).is_dir() and any(key_dir(board_dir).iterdir())
