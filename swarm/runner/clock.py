"""The runner's clock of a trainer: the training window timed from outside, and what can happen outside it.

    clock = TrainingClock(shards)           # before the trainer starts; clock.child_fd goes to the trainer
    ... trainer runs ...
    clock.close(); clock.window_s, clock.digest

The time train.py claims cannot be trusted (start-up, compile and export could all train), so the runner
time-stamps two events itself, over a socket pair: "start", when the trainer asks for its training data
(hidden until then, then handed over as read-only descriptors), and "commit <sha256>", the digest of the
model's tensors when training ends, which the evaluator checks against the handed-over program. The window
between them is the training time that counts; the rest costs only slot time. Long story: docs/trust.md.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import re
import socket
import threading
import time
from pathlib import Path

CLOCK_FD_ENV = "AUTORESEARCH_CLOCK_FD"  # the trainer's end of the pair (prepare.py reads it)
MESSAGE_BYTES = 4096  # longest message read; longer ones are truncated, hence not understood
MAX_MESSAGES = 64  # a trainer talking more than this is not the pinned prepare.py: stop listening
FDS_PER_MESSAGE = 200  # SCM_RIGHTS carries at most 253 descriptors per message
_DIGEST = re.compile(r"commit ([0-9a-f]{64})")


class TrainingClock:
    """The runner's end of one trainer's clock. `shards`: the training shard files handed out on "start"."""

    def __init__(self, shards: list[Path]):
        self.shards = list(shards)
        self._runner, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.child_fd = child.detach()  # inherited by the trainer (pass_fds); closed here once it runs
        self.started_at: float | None = None  # time.monotonic() of the first "start"
        self.committed_at: float | None = None  # ... of the first "commit"
        self.digest: str | None = None
        self._thread = threading.Thread(target=self._listen, name="trainer-clock", daemon=True)

    @property
    def environment(self) -> dict[str, str]:
        return {CLOCK_FD_ENV: str(self.child_fd)}

    def listen(self) -> None:
        """Once the trainer is started: close the runner's copy of its end, so that the trainer's exit ends
        the conversation, and serve it."""
        os.close(self.child_fd)
        self._thread.start()

    @property
    def window_s(self) -> float | None:
        """Seconds from the data handed out to the commit (0 when it never asked for data), or None."""
        if self.committed_at is None:
            return None
        return self.committed_at - (self.started_at if self.started_at is not None else self.committed_at)

    def close(self) -> None:
        """After the trainer's group ended: stop listening (a descendant still holding the socket no longer
        matters) and leave the recorded times as they are."""
        with contextlib.suppress(OSError):
            self._runner.shutdown(socket.SHUT_RDWR)
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self._runner.close()
        if not self._thread.ident:  # never started (the trainer failed to start)
            with contextlib.suppress(OSError):
                os.close(self.child_fd)

    def _listen(self) -> None:
        for _ in range(MAX_MESSAGES):
            try:
                message = self._runner.recv(MESSAGE_BYTES)
            except OSError:
                return
            now = time.monotonic()
            if not message:
                return  # every copy of the trainer's end is closed
            text = message.decode("ascii", "replace").strip()
            if text == "start" and self.started_at is None and self.committed_at is None:
                self.started_at = now
                self._hand_out()
            elif self.committed_at is None and (match := _DIGEST.fullmatch(text)):
                self.committed_at, self.digest = now, match.group(1)

    def _hand_out(self) -> None:
        """Send every shard as (names, descriptors) messages, then an empty end message."""
        opened: list[tuple[str, int]] = []
        try:
            for path in self.shards:
                try:
                    opened.append((path.name, os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)))
                except OSError:
                    continue  # the data check (manifest) is the runner's; a missing shard is just absent
            for i in range(0, len(opened), FDS_PER_MESSAGE):
                chunk = opened[i : i + FDS_PER_MESSAGE]
                names = json.dumps([name for name, _ in chunk]).encode()
                self._runner.sendmsg(
                    [names],
                    [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd for _, fd in chunk]))],
                )
            self._runner.send(b"[]")
        except OSError:
            pass  # the trainer is gone: nothing to hand out
        finally:
            for _, fd in opened:
                os.close(fd)


def training_shards(cache: Path) -> list[Path]:
    """The training shards of a cache, as prepare.list_parquet_files lists them (complete .parquet files of
    <cache>/data, by name)."""
    data = Path(cache) / "data"
    if not data.is_dir():
        return []
    return sorted(p for p in data.iterdir() if p.name.endswith(".parquet") and p.is_file())


def program_digest(program) -> str:
    """sha256 of every tensor of a loaded torch.export program, exactly as prepare.weights_digest computes it
    in the trainer when it commits (the evaluator cannot import the commit's prepare.py; a test holds the two
    equal)."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    tensors = {f"state:{k}": v for k, v in program.state_dict.items()}
    tensors.update({f"constant:{k}": v for k, v in program.constants.items() if isinstance(v, torch.Tensor)})
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
