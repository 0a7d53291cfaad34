"""One format for every trusted file beside the board, and the one rule that says whether such a file may
be used: the folded state's checkpoint (swarm.board.checkpoint) and the saved answers of queries
(swarm.results.answers) are both caches of what the board says, written and checked here.

    write(board_dir, name, kind, fmt, offset, fields, produce, key) -> bool   # atomically, or False
    read(board_dir, name, kind, fmt, key, exact) -> (header, body) | None     # None: not to be trusted

A file is `magic(kind)`, a JSON header on one line, then the body. The header holds the caller's `fields`,
the code's format key (`fmt`: a hash of the source that wrote it), the board's identity at the offset the
file was computed at (swarm.board.identity.mark), the body's length and CRC-32, and on a signed board a MAC
of header and body made with the board's key (swarm.board.signing).

A file is trusted only when all of these hold, else it is ignored and rebuilt from the board:
- its magic is this kind's (a file of the format before this one, or of another kind, never is);
- its header is a JSON object whose format key is the reader's: any change to the code that wrote it
  invalidates it without a version to bump;
- its body is whole: length and CRC-32 match (a torn or corrupted file is caught);
- on a signed board: a reader holding the key checks the MAC; a reader without it (an agent's sandbox, where
  the key is hidden) accepts only a file that carries one, as only a key holder writes one;
- the board file is the one it was taken of: same device and inode, at least as long as the offset (`exact`:
  exactly as long), the same bytes at its start and just before the offset.

Beyond that the file's place keeps it honest: the board directory may be written only by the runners, the
coordinator and the human's commands (agents' sandboxes mount it read-only). A process without the key on a
signed board never writes one: it folded unsigned lines as records, so its cache is not the runners' board.
This module imports nothing heavy (the MAC's hashing is loaded only where a key is): a saved answer's reader
pays for little more than the interpreter's start.
"""

from __future__ import annotations

import contextlib
import json
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from swarm.board.identity import RECORDS_FILE, mark, matches
from swarm.board.keys import has_key

MAC = "mac"
# What the envelope itself puts in a header: a caller's fields may not take these names.
ENVELOPE_FIELDS = frozenset(
    {"format", "offset", "device", "inode", "head", "tail", "body_bytes", "body_crc32", MAC}
)


def magic(kind: str) -> bytes:
    """The first line of a file of this kind ("checkpoint", "answers")."""
    return f"swarm board {kind} envelope\n".encode()


def seal(kind: str, header: dict[str, Any], body: bytes, key: bytes | None) -> bytes:
    """The bytes of a file: `header` completed with the body's length and CRC-32 and, with a key, the MAC."""
    header = {**header, "body_bytes": len(body), "body_crc32": zlib.crc32(body)}
    if key is not None:
        header[MAC] = _sign(key, header, body)
    return magic(kind) + json.dumps(header).encode() + b"\n" + body


def open_envelope(kind: str, data: bytes) -> tuple[dict[str, Any], bytes] | None:
    """(header, body) of a file's bytes when they have this kind's layout and a whole body; None else.
    Says nothing about trust: `read` decides that."""
    start = magic(kind)
    end = data.find(b"\n", len(start))
    if not data.startswith(start) or end < 0:
        return None
    try:
        header = json.loads(data[len(start) : end])
    except ValueError:
        return None
    body = data[end + 1 :]
    if not isinstance(header, dict):
        return None
    if header.get("body_bytes") != len(body) or header.get("body_crc32") != zlib.crc32(body):
        return None
    return header, body


def write(
    board_dir: Path,
    name: str,
    kind: str,
    fmt: str,
    offset: int,
    fields: dict[str, Any],
    produce: Callable[[], bytes],
    key: bytes | None,
) -> bool:
    """Write `<board_dir>/<name>`: the body `produce()` returns, computed from the board folded up to
    `offset`, with `fields` in its header. False when this process may not write it: a board whose key it
    cannot read, a board that is gone or shorter than `offset`, a directory it may not write (found out
    before `produce()` does its work). `key`: the board's, when this process holds it."""
    if ENVELOPE_FIELDS & set(fields):
        raise ValueError(f"header fields the envelope owns: {sorted(ENVELOPE_FIELDS & set(fields))}")
    if key is None and has_key(board_dir):
        return False
    where = mark(Path(board_dir) / RECORDS_FILE, offset)
    if where is None:
        return False
    header = {**fields, "format": fmt, **where}
    return write_whole(Path(board_dir) / name, lambda: seal(kind, header, produce(), key))


def read(
    board_dir: Path, name: str, kind: str, fmt: str, key: bytes | None, exact: bool
) -> tuple[dict[str, Any], bytes] | None:
    """(header, body) of `<board_dir>/<name>` when it may be trusted (the rule in this module's docstring),
    else None. `exact`: the board must end where the file was computed (no record since)."""
    try:
        data = (Path(board_dir) / name).read_bytes()
    except OSError:
        return None
    found = open_envelope(kind, data)
    if found is None:
        return None
    header, body = found
    if header.get("format") != fmt:
        return None
    mac = header.get(MAC)
    if key is not None:
        if not isinstance(mac, str) or not _signed(key, header, body, mac):
            return None
    elif mac is None and has_key(board_dir):
        return None  # a signed board's file that no key holder wrote
    if not matches(Path(board_dir) / RECORDS_FILE, header, exact=exact):
        return None
    return header, body


def _header_bytes(header: dict[str, Any]) -> bytes:
    """What the MAC covers of a header: every field but the MAC, in one order whoever wrote them."""
    return json.dumps({k: v for k, v in header.items() if k != MAC}, sort_keys=True).encode()


def _sign(key: bytes, header: dict[str, Any], body: bytes) -> str:
    from swarm.board.signing import sign_file  # only where the key is: hashlib is slow to load

    return sign_file(key, _header_bytes(header), body)


def _signed(key: bytes, header: dict[str, Any], body: bytes, mac: str) -> bool:
    from swarm.board.signing import signed_file

    return signed_file(key, _header_bytes(header), body, mac)


def write_whole(target: Path, produce: Callable[[], bytes]) -> bool:
    """Write the bytes `produce()` returns to `target` (a cache beside the board) so that readers see the
    old file or the new one, whole. False when this process may not write there: a sandboxed agent, whose
    board is mounted read-only, finds out before `produce()` does its work, and nothing is left behind."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}")
    try:
        with open(temporary, "xb") as f:
            f.write(produce())
        os.replace(temporary, target)
    except OSError:
        with contextlib.suppress(OSError):  # never created (a read-only board): nothing to clean
            temporary.unlink()
        return False
    return True
