"""The discovery board: an append-only JSON Lines file of a run's records under a file lock.

Writers take the lock, append one whole line with one write, fsync, and release. Readers take no lock:
they read from a remembered byte offset, use only complete lines, and skip a line that does not parse
(what a writer killed mid-append leaves behind). Nothing is rewritten; a correction is a new record.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock, Timeout

from swarm.board.identity import RECORDS_FILE
from swarm.board.signing import SIG, is_signed, load_key, sign_line
from swarm.errors import BoardError

LOCK_FILE = "board.lock"
LOCK_TIMEOUT_S = 60.0
FORGED_KEPT = 3  # unsigned lines a reader keeps (their beginnings), to show where they came from
FORGED_CHARS = 160

# Record types. Experiments go through several records with the same id (queued, running, a final
# status); each is written whole, so the latest record of an id is the experiment's state (fields in
# swarm.board.experiments). Readers keep record types they do not know, so new types can be added.
EXPERIMENT = "experiment"
NOTE = "note"  # {agent, id, text}: an insight an agent shares; shown by `swarm board`
RUN = "run"  # the run's definition, written by `swarm spawn` (swarm.board.run_record); the latest wins
USAGE = "usage"  # {agent, tag, kind, model, requests, *_tokens, cost_usd}: usage deltas (swarm.board.ledger)
VERIFICATION = "verification"  # {id, device, profile, train_sha256, held, mean, band, reruns}: verify outcome
ADOPT = "adopt"  # {agent, id, commit, train_sha256, device, profile}: an agent moved its branch to a commit
RUNNER = "runner"  # {slot, pid, event: start | stop}: a runner's lifecycle, for status displays
PROCESS = "process"  # {tag, window, event: started | exited, pid, ...}: a supervised tmux window (swarm.orchestration.launch)


def new_id() -> str:
    """A short random id for an experiment or note; unique enough for a run and easy to type."""
    return secrets.token_hex(4)


def now() -> float:
    """Timestamps on the board are Unix seconds (float, millisecond precision)."""
    return round(time.time(), 3)


class Board:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.path = self.directory / RECORDS_FILE
        self._lock = FileLock(str(self.directory / LOCK_FILE), timeout=LOCK_TIMEOUT_S)
        self._key: bytes | None = None

    def signing_key(self) -> bytes | None:
        """The board's key when this process can read it (swarm.board.signing); None otherwise."""
        if self._key is None:
            self._key = load_key(self.directory)
        return self._key

    def exists(self) -> bool:
        return self.path.exists()

    def create(self) -> Board:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "logs").mkdir(exist_ok=True)
        self.path.touch(exist_ok=True)
        return self

    def require(self) -> Board:
        """Fail with one clear line when this board does not exist or cannot be read."""
        if not self.path.exists():
            raise BoardError(f"no board at {self.directory} (is a swarm running here? try `swarm spawn`)")
        if not os.access(self.path, os.R_OK):
            raise BoardError(f"board unreadable: {self.path}")
        return self

    @property
    def logs(self) -> Path:
        return self.directory / "logs"

    @contextlib.contextmanager
    def locked(self) -> Iterator[BoardWriter]:
        """Hold the board lock for a read-check-append sequence (e.g. claiming a queued job)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            with self._lock:
                yield BoardWriter(self.path, self.signing_key())
        except Timeout:
            raise BoardError(
                f"board lock held for over {LOCK_TIMEOUT_S:.0f} s: {self.directory / LOCK_FILE}"
            ) from None

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append one record durably; returns it (with `ts` set) once it is on disk."""
        with self.locked() as writer:
            return writer.append(record)

    def reader(self, offset: int = 0) -> BoardReader:
        return BoardReader(self.path, offset, self.signing_key())

    def records(self) -> list[dict[str, Any]]:
        """Every record on the board, oldest first."""
        return self.reader().read_new()


class BoardWriter:
    """Appends records; only exists while the board lock is held."""

    def __init__(self, path: Path, key: bytes | None = None):
        self.path = path
        self.key = key

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        record = {k: v for k, v in record.items() if k != SIG}
        record.setdefault("ts", now())
        data = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        data = (sign_line(self.key, data) if self.key else data) + b"\n"
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            # A writer killed mid-append leaves a line without its newline: end it here so that this record
            # starts on a line of its own (the torn fragment becomes one unparseable line readers skip).
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        return record


class BoardReader:
    """Reads records incrementally: each call returns only what was appended since the last one."""

    def __init__(self, path: Path, offset: int = 0, key: bytes | None = None):
        self.path = Path(path)
        self.offset = offset
        self.skipped = 0  # lines that did not parse (torn writes)
        # With the board's key, a line without a valid signature is not a record (swarm.board.signing):
        # counted here, its beginning kept for `swarm doctor` and watch to show.
        self.key = key
        self.forged = 0
        self.forged_lines: list[bytes] = []

    def read_new(
        self, max_bytes: int | None = None, positions: list[tuple[int, int]] | None = None
    ) -> list[dict[str, Any]]:
        """Records appended since the last call; with `max_bytes`, only about that much of them (at least
        one whole line), so that a follower can fold a large board a piece at a time. With `positions`,
        the (byte offset, length) of each returned record's line is appended to it (a checkpoint of the
        folded state points at records instead of copying them: swarm.board.checkpoint)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read(-1 if max_bytes is None else max_bytes)
                while max_bytes is not None and b"\n" not in chunk:  # a line longer than max_bytes
                    more = f.read(max_bytes)
                    if not more:
                        break
                    chunk += more
        except FileNotFoundError:
            return []
        except OSError as e:
            raise BoardError(f"board unreadable: {self.path}: {e.strerror}") from None
        end = chunk.rfind(b"\n")
        if end < 0:
            return []  # nothing complete yet; a line in progress stays for the next call
        at = self.offset
        self.offset += end + 1
        records = []
        for line in chunk[:end].split(b"\n"):
            start, at = at, at + len(line) + 1
            if not line.strip():
                continue
            if self.key is not None and not is_signed(self.key, line):
                self._forged(line)
                continue
            try:
                # several times faster than json: a 100,000-record board in ~0.3 s
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                self.skipped += 1
                continue
            if isinstance(record, dict):
                record.pop(SIG, None)
                records.append(record)
                if positions is not None:
                    positions.append((start, len(line)))
            else:
                self.skipped += 1
        return records

    def _forged(self, line: bytes) -> None:
        self.forged += 1
        self.forged_lines = [*self.forged_lines[-(FORGED_KEPT - 1) :], line[:FORGED_CHARS]]
