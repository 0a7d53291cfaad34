"""A shell that no swarm set up, for tests that start swarms: the swarm identity variables unset, tmux servers
on a socket directory of the test's own, and every server started there killed afterwards.

A test run inside an agent's pane (or beside a user's swarm) inherits SWARM_BOARD, SWARM_AGENT, TMUX, ...;
left set, a spawned swarm would take the test for an agent of that swarm, or talk to the user's tmux server.
The `swarm_shell` fixture (tests/conftest.py) applies this to the test process; `outside_environ` gives the
same environment to a subprocess.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

# What makes a process part of a swarm: its agent identity, and the tmux server it runs in.
IDENTITY = ("SWARM_BOARD", "SWARM_TAG", "SWARM_AGENT", "SWARM_GPU", "TMUX")


def clear_identity(monkeypatch: pytest.MonkeyPatch, *extra: str) -> None:
    """Unset the swarm identity (and `extra` variables) in this process for the rest of the test."""
    for name in (*IDENTITY, *extra):
        monkeypatch.delenv(name, raising=False)


def outside_environ(prefixes: tuple[str, ...] = ("SWARM_", "TMUX"), **extra: str) -> dict[str, str]:
    """This process's environment without any variable starting with one of `prefixes`, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return env | extra


def kill_tmux_servers(socket_dir: Path) -> None:
    """Kill every tmux server whose socket is in `socket_dir` (each test has its own)."""
    if not socket_dir.exists():
        return
    for socket in socket_dir.iterdir():
        if socket.is_socket():
            subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True)


@contextlib.contextmanager
def tmux_servers(socket_dir: Path) -> Iterator[Path]:
    """A socket directory for SWARM_TMUX_DIR; the tmux servers started in it are killed on the way out,
    whatever happened inside (their agents with them)."""
    try:
        yield socket_dir
    finally:
        kill_tmux_servers(socket_dir)
