"""Start a trainer in its own process group and make sure the whole group ends: on exit, timeout or crash.

train.py may start workers (dataloaders, compile helpers); a hung run must not keep any of them on the GPU.
The trainer gets its own session (so one `killpg` reaches every descendant that did not escape with
`setsid`, and Ctrl-C in the runner's terminal does not reach it), and on Linux a parent-death signal so
that a runner killed with SIGKILL does not leave it training. The group id is written beside the run so a
restarted runner can end what its predecessor left.

With a size limit the output goes through a pipe that the runner copies into the log, up to the limit: a
run that prints more is killed at once and its log holds exactly the limit, so no run can fill the board's
disk. The trainer and the evaluator are started by the same function, so a sandbox wraps both in one place.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from swarm.runner.sandbox import Sandbox

PR_SET_PDEATHSIG = 1
GROUP_FILE = "trainer.pgid"


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: ask the kernel to SIGKILL us when the runner dies.
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def start_in_group(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    log: Path,
    limit_bytes: int | None = None,
    stdin: int = subprocess.DEVNULL,
    sandbox: Sandbox | None = None,
    pass_fds: tuple[int, ...] = (),
) -> subprocess.Popen:
    """Start argv (inside `sandbox` when given) in a new session with stdout and stderr going to `log` (at
    most `limit_bytes` more of it, see LogPump); records the group id in cwd. `stdin=subprocess.PIPE` lets
    the caller talk to it; `pass_fds` stay open in it (the runner's clock).

    In a sandbox the group is bwrap's: ending it ends bwrap, whose pid 1 then takes every process of the
    sandbox with it (a `setsid` one included), and the parent-death signal below does the same when the
    runner is killed."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            sandbox.wrap(argv) if sandbox is not None else argv,
            cwd=cwd,
            env=env,
            stdin=stdin,
            stdout=out if limit_bytes is None else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            pass_fds=pass_fds,
        )
    if limit_bytes is not None:
        proc.log_pump = LogPump(proc, log, limit_bytes)
        proc.log_pump.start()
    (Path(cwd) / GROUP_FILE).write_text(str(proc.pid))
    return proc


class LogPump(threading.Thread):
    """Copies a child's output into its log up to `limit` bytes; past that it kills the child's group and
    drops the rest (`overflowed` tells the runner why the run ended)."""

    def __init__(self, proc: subprocess.Popen, log: Path, limit: int):
        super().__init__(daemon=True, name=f"log-pump-{proc.pid}")
        self.proc, self.log, self.left = proc, log, limit
        self.overflowed = False

    def run(self) -> None:
        fd = self.proc.stdout.fileno()
        with open(self.log, "ab") as out:
            while chunk := os.read(fd, 1 << 16):
                if self.overflowed:
                    continue  # drain until every writer is gone
                out.write(chunk[: self.left])
                out.flush()
                if len(chunk) > self.left:
                    self.overflowed = True
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.proc.pid, signal.SIGKILL)
                self.left = max(self.left - len(chunk), 0)
        self.proc.stdout.close()


def output_overflowed(proc: subprocess.Popen) -> bool:
    """Whether a child started with a log limit printed more than it (and was killed for it)."""
    pump = getattr(proc, "log_pump", None)
    return bool(pump and pump.overflowed)


def _finish_log(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    pump = getattr(proc, "log_pump", None)
    if pump is not None:
        pump.join(timeout_s)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(pgid: int, grace_s: float, leader: subprocess.Popen | None = None) -> None:
    """SIGTERM the group, give it `grace_s` to go, then SIGKILL whatever is left.

    `leader` is reaped while waiting: an exited but unreaped leader would keep the group looking alive."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if leader is not None:
            leader.poll()
        if not group_alive(pgid):
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):  # gone between the check and the kill
        os.killpg(pgid, signal.SIGKILL)


def run_with_timeout(proc: subprocess.Popen, timeout_s: float, grace_s: float) -> tuple[int, bool]:
    """Wait for the trainer; past the timeout end its whole group. Returns (exit code, timed out).

    Members of the group still running after the leader exits (leaked workers) are killed as well."""
    timed_out = False
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_group(proc.pid, grace_s, leader=proc)
        code = proc.wait()
    else:
        if group_alive(proc.pid):
            kill_group(proc.pid, 0.0)
    _finish_log(proc)
    return code, timed_out


def end_stale_group(run_dir: Path, grace_s: float) -> bool:
    """End the trainer group a dead runner left in `run_dir`; True when one was found running.

    The group id is trusted only while a process of that group still works inside the run directory,
    so a recycled pid of an unrelated process is never signalled."""
    try:
        pgid = int((Path(run_dir) / GROUP_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return False
    if not group_alive(pgid) or not _group_works_in(pgid, Path(run_dir).resolve()):
        return False
    kill_group(pgid, grace_s)
    return True


def _group_works_in(pgid: int, run_dir: Path) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:  # the process ended, or is not ours to look into
            continue
        if cwd == run_dir or run_dir in cwd.parents:
            return True
    return False
