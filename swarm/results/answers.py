"""Saved answers of the read-only queries agents repeat all night (`swarm best`, `swarm board`), so that a
new process answers them without restoring or folding the board.

The checkpoint (swarm.board.checkpoint) spares a new process the fold, but restoring a 100,000-record
state still costs a few hundred ms, plus the imports, for every `swarm best` an agent runs. Yet between
two results the answer does not change. So the exact text a query printed is saved beside the board,
keyed by:
- the query: the command and the arguments that change its output;
- the board: its file (device, inode, the bytes at its start and just before the end) and its exact
  length: one more line on the board and the saved answer is not used;
- the code: a hash of the source of the board and results packages, which fold and render it;
- the context: swarm.toml (its [noise] table decides statuses, bands and bests) and the time zone.

`swarm best` and `swarm board` look here first (`lookup`) and import the board state only on a miss; a
miss computes the answer and saves it (`remember`) when this process may write the board directory. The
coordinator saves the common ones after every change of the board (`AnswerKeeper`), so agents rarely miss.

Trust is the checkpoint's: the file sits in the board directory, which agents' sandboxes mount read-only;
on a signed board it carries a MAC made with the board key, and a reader holding the key checks it, while
a reader without the key (a sandboxed agent) accepts only a file that has one. An answer is text to print,
never data to act on: no recorded result depends on it. This module imports nothing heavy: the point is
that a hit costs the interpreter's start and a few file reads.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

from swarm.board.identity import RECORDS_FILE, mark, matches, source_key, write_whole
from swarm.board.keys import has_key, load_key

CONFIG_FILE = "swarm.toml"  # swarm.config's (a test keeps them equal): that module is too slow to load here
ANSWERS_FILE = "state.answers"
MAGIC = b"swarm board answers\n"
MAX_ANSWERS = 64  # distinct queries saved for one board length; more are dropped, oldest first

_code_key: str | None = None


def code_key() -> str:
    """The hash of the code that folds the board and renders answers (computed once per process)."""
    global _code_key
    if _code_key is None:
        package = Path(__file__).resolve().parent.parent
        _code_key = source_key([package / "board", package / "results"], salt="answers")
    return _code_key


def context_key(repo: Path) -> str:
    """What an answer depends on besides the board and the code: the repository's swarm.toml (its path and
    bytes) and the time zone. A reader checks the file named in the saved answers (`_context_holds`), so a
    hit needs no repository lookup when SWARM_BOARD names the board, as it does for every agent."""
    path = Path(repo).resolve() / CONFIG_FILE
    return f"{path}\0{_checksum(path)}\0{os.environ.get('TZ', '')}"


def _checksum(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return "none"
    return f"{zlib.crc32(data):08x}:{len(data)}"


def _context_holds(context: str) -> bool:
    """The swarm.toml and time zone a saved context names are those this process would read."""
    path, checksum, zone = (context.split("\0") + ["", "", ""])[:3]
    return bool(path) and _checksum(Path(path)) == checksum and zone == os.environ.get("TZ", "")


def answers_path(board_dir: Path) -> Path:
    return Path(board_dir) / ANSWERS_FILE


def _read(board_dir: Path, context: str | None) -> tuple[dict, dict[str, str]] | None:
    """(header, answers) of the saved answers when they are this board's, as long as it is now, and of this
    code and context (None: the one they name, if it still holds); else None."""
    try:
        data = answers_path(board_dir).read_bytes()
    except OSError:
        return None
    if not data.startswith(MAGIC):
        return None
    end = data.find(b"\n", len(MAGIC))
    body = data[end + 1 :]
    try:
        header = json.loads(data[len(MAGIC) : end])
        answers = json.loads(body)
    except ValueError:
        return None
    if not isinstance(header, dict) or not isinstance(answers, dict) or header.get("format") != code_key():
        return None
    saved = header.get("context")
    if not isinstance(saved, str) or (saved != context if context is not None else not _context_holds(saved)):
        return None
    key = load_key(board_dir)
    mac = header.pop("mac", None)
    if key is not None:
        from swarm.board.signing import signed_checkpoint  # only where the key is: hashlib is slow to load

        if not isinstance(mac, str) or not signed_checkpoint(key, _header_bytes(header), body, mac):
            return None
    elif mac is None and has_key(board_dir):
        return None  # a signed board's answers that no key holder wrote
    if not matches(Path(board_dir) / RECORDS_FILE, header, exact=True):
        return None
    return header, answers


def _header_bytes(header: dict) -> bytes:
    return json.dumps(header, sort_keys=True).encode()


def lookup(board_dir: Path, query: str, context: str | None = None) -> str | None:
    """The saved answer to `query` on the board as it is now, or None. `context`: this process's
    (context_key); None checks the one the answers were saved under against the files it names."""
    found = _read(board_dir, context)
    answer = found[1].get(query) if found else None
    return answer if isinstance(answer, str) else None


def remember(board_dir: Path, offset: int, context: str, answers: dict[str, str]) -> bool:
    """Save `answers` (query -> text), computed from the board folded up to `offset`, keeping the answers
    already saved for that same offset; False when this process may not (or could not) write them."""
    board_dir = Path(board_dir)
    key = load_key(board_dir)
    if key is None and has_key(board_dir):
        return False  # folded without the key: unsigned lines counted, not the runners' board
    where = mark(board_dir / RECORDS_FILE, offset)
    if where is None:
        return False
    found = _read(board_dir, context)
    if found is not None and found[0].get("offset") == offset:
        answers = {**found[1], **answers}
    answers = dict(list(answers.items())[-MAX_ANSWERS:])
    header = {"format": code_key(), "context": context, **where}
    body = json.dumps(answers).encode()
    if key is not None:
        from swarm.board.signing import sign_checkpoint

        header["mac"] = sign_checkpoint(key, _header_bytes(header), body)
    record = MAGIC + json.dumps(header).encode() + b"\n" + body
    return write_whole(answers_path(board_dir), lambda: record)


# The queries a process that keeps the board's state saves after every change (the coordinator): what agents
# run all night, with the command line's defaults (`swarm board` shows the top 10).
COMMON_QUERIES = (
    ("best", {"json": False}),
    ("best", {"json": True}),
    ("board", {"top": 10, "agent": None, "json": False}),
    ("board", {"top": 10, "agent": None, "json": True}),
)


def query_key(command: str, options: dict) -> str:
    """The key of a query's answer: the command and the options that change its output."""
    return command + " " + json.dumps(options, sort_keys=True)
