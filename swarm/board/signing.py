"""Signed board lines: each record a trusted writer appends carries a MAC of its bytes (keyed BLAKE2b:
three times faster than HMAC-SHA256 on a board line, so that checking a 100,000-line board stays cheap).

The board of a sealed run has a key, `board/keys/board.key`, made by `swarm spawn`. Runners, the
coordinator, the launcher and the user's own commands read it and sign every line they append; an agent's
sandbox has `board/keys/` covered by an empty directory and the board read-only, so it can neither append
a line nor sign one. Readers that hold the key skip every line whose signature is missing or wrong (a
forged result is never folded) and count them, so that `swarm doctor` and watch can say one appeared.

A signed line is the record's JSON with `"sig":"<hex>"` as its last field; the MAC covers the line up to
that field, so a reader checks it on the raw bytes, before (and without) parsing.
A board without a key (before this existed, or made by a test) is read as it always was.
"""

from __future__ import annotations

import hmac
from hashlib import blake2b

from swarm.board.keys import KEY_DIR, KEY_FILE, create_key, has_key, key_dir, key_path, load_key  # noqa: F401

SIG = "sig"
SIG_FIELD = b',"sig":"'
SIG_HEX = 32  # a 128-bit MAC, hex
_SUFFIX = len(SIG_FIELD) + SIG_HEX + 2  # ,"sig":"<hex>"}


def _mac(key: bytes, data: bytes | memoryview) -> bytes:
    return blake2b(data, key=key, digest_size=SIG_HEX // 2).hexdigest().encode()


def sign_line(key: bytes, data: bytes) -> bytes:
    """`data` (one JSON object, no newline) with its signature as the last field."""
    prefix = data[:-1]  # without the closing brace: what the MAC covers
    return prefix + SIG_FIELD + _mac(key, prefix) + b'"}'


def is_signed(key: bytes, line: bytes) -> bool:
    """Whether a line (no newline) carries a valid signature."""
    if len(line) <= _SUFFIX or line[-_SUFFIX : -SIG_HEX - 2] != SIG_FIELD or line[-2:] != b'"}':
        return False
    return hmac.compare_digest(line[-SIG_HEX - 2 : -2], _mac(key, memoryview(line)[:-_SUFFIX]))


def sign_file(key: bytes, header: bytes, body: bytes) -> str:
    """The MAC of a trusted file beside the board (swarm.board.envelope): its header and body together."""
    return blake2b(header + b"\0" + body, key=key, digest_size=32).hexdigest()


def signed_file(key: bytes, header: bytes, body: bytes, mac: str) -> bool:
    return hmac.compare_digest(mac, sign_file(key, header, body))
