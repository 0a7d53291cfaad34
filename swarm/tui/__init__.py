"""`swarm watch`: a Textual TUI over the discovery board and the run's tmux windows.

`model` folds the board on a worker into frozen snapshots, `control` is the seam to the run's processes,
`messages` declares what widgets tell the app, and each widget is a module with its CSS beside it; `app`
wires them together and stays small.

    app.py              `swarm watch`: the app wiring widgets, the board model and the run's processes
    model.py            what the TUI shows, folded off the UI loop into frozen snapshots
    sources.py          what the detail pane shows, read on a worker: diff, log, lineage
    control.py          the seam to the run's processes: liveness, panes, attach, stop, restart
    actions.py          what the keys do to the world, as plain functions
    messages.py         messages between the widgets and the app, declared in one place
    header.py           the header: run, agents alive, experiments, GPUs busy, the bests
    agents_table.py     one row per agent: state, counts, best, what it does now
    leaderboard.py      the best contents of each device class and profile
    progress_plot.py    the progress plot widget
    plot_text.py        the progress plot drawn as text, on the board worker
    detail.py           the detail pane: an agent's live pane, or an experiment's diff, log or fields
    filter_bar.py       the filter bar (`/`)
    dialogs.py          modal screens: confirmation and help
    fitted_table.py     a DataTable whose one free column takes the width left
    cells.py            small formatters shared by the widgets
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
