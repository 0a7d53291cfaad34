"""How a child process runs this installation's `swarm`: one definition for every launcher, agent and tool.

`-P` keeps the working directory off sys.path: the repository and every worktree hold a copy of `swarm/`
that an agent may have edited, and a swarm process must never import that copy instead of the installed
package (whose code an agent's edits cannot change).
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

SWARM_MODULE_ARGS = ("-P", "-m", "swarm")  # after the interpreter: `python -P -m swarm ...`


def swarm_argv(*args: str) -> list[str]:
    """A command line running this installation's `swarm` with these arguments."""
    return [sys.executable, *SWARM_MODULE_ARGS, *args]


def swarm_command(*args: str) -> str:
    """The shell command a person can paste to run this installation's `swarm` from any directory: its
    console script by absolute path when one sits beside the interpreter (a venv's bin/, where README's setup
    puts it, so no activated venv or PATH entry is needed), else the interpreter with `-P -m swarm`."""
    script = Path(sys.executable).parent / "swarm"
    if script.is_file() and os.access(script, os.X_OK):
        return shlex.join([str(script), *args])
    return shlex.join(swarm_argv(*args))
