"""`swarm watch`: a Textual TUI over the discovery board and the run's tmux windows.

Layout of the package: `model` folds the board on a worker into frozen snapshots, `control` is the seam to
the run's processes, `messages` declares what widgets tell the app, and each widget is a module with its
CSS beside it; `app` wires them together and stays small.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from swarm.repo.paths import RunPaths


def watch_for(paths: RunPaths, seconds: float) -> None:
    """Show the run in `paths` for `seconds` (or until the user quits), then return: `swarm demo`'s view.
    Imported lazily so that importing this package does not load Textual."""
    from swarm.tui.app import watch

    watch(paths, seconds=seconds)
