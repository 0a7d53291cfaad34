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

Trust is the checkpoint's, decided by the same rule (swarm.board.envelope): the file sits in the board
directory, which agents' sandboxes mount read-only, and on a signed board carries a MAC made with the board
key. An answer is text to print, never data to act on: no recorded result depends on it. This module
imports nothing heavy: the point is that a hit costs the interpreter's start and a few file reads.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from swarm.board import envelope
from swarm.board.identity import source_key
from swarm.board.keys import load_key

if TYPE_CHECKING:  # for annotations only: a hit must not load the fold
    from swarm.board.fold import BoardState

CONFIG_FILE = "swarm.toml"  # swarm.config's (a test keeps them equal): that module is too slow to load here
ANSWERS_FILE = "state.answers"
KIND = "answers"  # its envelope's kind (swarm.board.envelope)
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
    """(header, answers) of the saved answers when swarm.board.envelope trusts them as this board's, as long
    as it is now, and of this code, and they were saved under this context (None: the one they name, if it
    still holds); else None."""
    found = envelope.read(board_dir, ANSWERS_FILE, KIND, code_key(), load_key(board_dir), exact=True)
    if found is None:
        return None
    header, body = found
    saved = header.get("context")
    if not isinstance(saved, str) or (saved != context if context is not None else not _context_holds(saved)):
        return None
    try:
        answers = json.loads(body)
    except ValueError:
        return None
    return (header, answers) if isinstance(answers, dict) else None


def lookup(board_dir: Path, query: str, context: str | None = None) -> str | None:
    """The saved answer to `query` on the board as it is now, or None. `context`: this process's
    (context_key); None checks the one the answers were saved under against the files it names."""
    found = _read(board_dir, context)
    answer = found[1].get(query) if found else None
    return answer if isinstance(answer, str) else None


def remember(board_dir: Path, offset: int, context: str, answers: dict[str, str]) -> bool:
    """Save `answers` (query -> text), computed from the board folded up to `offset`, keeping the answers
    already saved for that same offset; False when this process may not (or could not) write them."""
    found = _read(board_dir, context)
    if found is not None and found[0].get("offset") == offset:
        answers = {**found[1], **answers}
    body = json.dumps(dict(list(answers.items())[-MAX_ANSWERS:])).encode()
    fields = {"context": context}
    return envelope.write(
        board_dir, ANSWERS_FILE, KIND, code_key(), offset, fields, lambda: body, load_key(board_dir)
    )


class AnswerKeeper:
    """For a process that keeps the board's folded state (the coordinator): save the common answers
    whenever the board changed, so that the agents' `swarm best` / `swarm board` find them. `render`
    gives them from the state (swarm.results.queries.common_answers: this module stays light to import)."""

    def __init__(self, state: BoardState, context: str, render: Callable[[BoardState], dict[str, str]]):
        self.state = state
        self.context = context  # context_key of the swarm.toml the state's noise settings came from
        self.render = render
        self.saved_at = 0

    def tick(self) -> bool:
        """Call after the state's refresh; True when answers were saved."""
        offset = self.state.reader.offset
        if offset == self.saved_at:
            return False
        self.saved_at = offset  # also when saving fails: no retry every tick
        return remember(self.state.board.directory, offset, self.context, self.render(self.state))


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
