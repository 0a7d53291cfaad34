"""The tmux server of a run: a private socket per (repository, tag), one session, one window per process.

Why a private socket: a swarm must never share (or kill) the user's own tmux server, and the socket
directory is 0700 so that no other user can attach to agents that run with permissions bypassed.
The socket name is derived from the repository path and the tag, so `swarm spawn` run again finds the
same server. Every window runs one command under `exec` (its pane pid is the process itself) with
`remain-on-exit on`, so a process that dies leaves a dead pane the coordinator can see and respawn;
`respawn-window` without `-k` refuses a live pane, which makes a double restart impossible.

Secrets: the server takes its global environment from the process that starts it (`swarm spawn`), and
every window inherits that, so API keys reach agents without ever appearing on a tmux command line.
Only non-secret variables are passed with `-e`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import libtmux

from swarm.errors import SwarmError

SOCKET_DIR_ENV = "SWARM_TMUX_DIR"  # where sockets live (tests give each run its own directory)
HISTORY_LINES = 50000
# A detached session has no client to take its size from; agent CLIs wrap their output to this.
WINDOW_SIZE = ("220", "50")
PANE_FORMAT = "\t".join(
    ["#{window_id}", "#{window_name}", "#{pane_id}", "#{pane_pid}", "#{pane_dead}", "#{pane_dead_status}"]
)


class TmuxError(SwarmError):
    """tmux is missing, or a tmux command failed."""


@dataclass(frozen=True)
class Pane:
    """The single pane of a window, as tmux reports it."""

    window_id: str
    window: str
    pane_id: str
    pid: int
    dead: bool
    exit_status: int | None


def require_tmux() -> str:
    path = shutil.which("tmux")
    if not path:
        raise TmuxError("tmux not found: install it (apt-get install tmux, or brew install tmux)")
    return path


def socket_dir() -> Path:
    """The directory of swarm sockets, created 0700 and refused if anyone else could reach into it."""
    base = os.environ.get(SOCKET_DIR_ENV)
    if base:
        directory = Path(base)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        directory = Path(os.environ["XDG_RUNTIME_DIR"]) / "autoresearch-swarm"
    else:
        directory = Path("/tmp") / f"autoresearch-swarm-{os.getuid()}"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.stat()
    if info.st_uid != os.getuid():
        raise TmuxError(f"socket directory {directory} belongs to another user")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(directory, 0o700)
    return directory


def socket_name(repo: Path, tag: str) -> str:
    """Stable per repository and tag; short enough for the 108-byte limit of a Unix socket path."""
    repo = Path(repo).resolve()
    digest = hashlib.sha256(str(repo).encode()).hexdigest()[:10]
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", repo.name)[:24]
    return f"{stem}-{digest}-{tag}"


def window_command(argv: list[str]) -> str:
    """One shell command that becomes the program itself (`exec`), so the pane pid is the program's."""
    return "exec " + shlex.join(argv)


class RunTmux:
    """The tmux session `tag` of the run in `repo`, on the run's private socket."""

    def __init__(self, repo: Path, tag: str):
        require_tmux()
        self.session = tag
        self.socket = socket_dir() / socket_name(repo, tag)
        self.server = libtmux.Server(socket_path=self.socket)

    def cmd(self, *args: str) -> list[str]:
        """Run a tmux command (several, separated by ";" arguments) and return its output lines."""
        result = self.server.cmd(*args)
        if result.returncode != 0:
            raise TmuxError(f"tmux {args[0]}: {' '.join(result.stderr) or 'failed'}")
        return result.stdout

    def is_running(self) -> bool:
        if not self.socket.exists():
            return False
        return self.server.cmd("has-session", "-t", f"={self.session}").returncode == 0

    def start(self, window: str, argv: list[str], cwd: Path, log: Path, env: dict[str, str]) -> None:
        """Start the server and session with its first window; `env` (not secret) goes to every window."""
        env_args = [a for key, value in env.items() for a in ("-e", f"{key}={value}")]
        self.cmd(
            "new-session", "-d", "-s", self.session, "-n", window, "-c", str(cwd),
            "-x", WINDOW_SIZE[0], "-y", WINDOW_SIZE[1], *env_args, window_command(argv),
            ";", "set-option", "-g", "remain-on-exit", "on",
            ";", "set-option", "-g", "automatic-rename", "off",
            ";", "set-option", "-g", "history-limit", str(HISTORY_LINES),
            ";", *self._pipe_args(window, log),
        )  # fmt: skip

    def _pipe_args(self, window: str, log: Path) -> list[str]:
        # Chained after the command that (re)starts the window, so the pipe is open before tmux reads any
        # of the pane's output. No `-o`: with it, an existing pipe would be toggled off, not kept.
        log.parent.mkdir(parents=True, exist_ok=True)
        return ["pipe-pane", "-t", self._target(window), f"exec cat >> {shlex.quote(str(log))}"]

    def _target(self, window: str) -> str:
        return f"={self.session}:={window}"  # `=`: exact names (a plain name also matches as a prefix)

    def panes(self) -> dict[str, Pane]:
        """Every window of the session by name; {} when the server or session is gone."""
        if not self.socket.exists():
            return {}
        # No has-session first: list-panes fails just the same when the server or session is gone, and the
        # coordinator asks every tick.
        result = self.server.cmd("list-panes", "-s", "-t", f"={self.session}", "-F", PANE_FORMAT)
        if result.returncode != 0:
            return {}
        panes = {}
        for line in result.stdout:
            fields = line.split("\t")
            if len(fields) != 6:
                continue
            window_id, name, pane_id, pid, dead, status = fields
            panes[name] = Pane(window_id, name, pane_id, int(pid or 0), dead == "1", _int_or_none(status))
        return panes

    def new_window(self, window: str, argv: list[str], cwd: Path, log: Path) -> None:
        self.cmd(
            "new-window", "-d", "-t", f"={self.session}:", "-n", window, "-c", str(cwd), window_command(argv),
            ";", *self._pipe_args(window, log),
        )  # fmt: skip

    def respawn(self, window: str, argv: list[str], cwd: Path, log: Path) -> None:
        """Run the command again in a window whose process has exited (refused while it still runs)."""
        self.cmd(
            "respawn-window", "-t", self._target(window), "-c", str(cwd), window_command(argv),
            ";", *self._pipe_args(window, log),
        )  # fmt: skip

    def kill_window(self, window: str) -> None:
        self.cmd("kill-window", "-t", self._target(window))

    def kill_server(self) -> None:
        if self.socket.exists():
            self.server.cmd("kill-server")
        # A server killed with -9 leaves its socket behind; the next spawn must not find a stale one.
        if self.socket.exists() and not self.is_running():
            self.socket.unlink(missing_ok=True)

    def capture(self, window: str, lines: int = 200) -> str:
        """The last `lines` lines of a window's screen and history, as plain text (no escape sequences:
        what a program printed is shown, never replayed)."""
        out = self.cmd("capture-pane", "-p", "-J", "-S", f"-{int(lines)}", "-t", self._target(window))
        return "\n".join(out).rstrip("\n")

    def attach_argv(self, window: str) -> list[str]:
        """The tmux command line that shows `window` in the user's terminal."""
        return [
            require_tmux(), "-S", str(self.socket),
            "select-window", "-t", self._target(window), ";", "attach-session", "-t", f"={self.session}",
        ]  # fmt: skip


def _int_or_none(text: str) -> int | None:
    return int(text) if text.strip().lstrip("-").isdigit() else None
