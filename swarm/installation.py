"""How a child process runs this installation's `swarm`: one definition for every launcher, agent and tool.

`-P` keeps the working directory off sys.path: the repository and every worktree hold a copy of `swarm/`
that an agent may have edited, and a swarm process must never import that copy instead of the installed
package (whose code an agent's edits cannot change).
"""

from __future__ import annotations

import sys

SWARM_MODULE_ARGS = ("-P", "-m", "swarm")  # after the interpreter: `python -P -m swarm ...`


def swarm_argv(*args: str) -> list[str]:
    """A command line running this installation's `swarm` with these arguments."""
    return [sys.executable, *SWARM_MODULE_ARGS, *args]
