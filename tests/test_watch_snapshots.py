"""SVG snapshots of `swarm watch` at a fixed size on a fixed board (fixed times; no live clock in a frame).

Update after an intended change of the look with `pytest tests/test_watch_snapshots.py --snapshot-update`
and review the SVGs in tests/__snapshots__/.
"""

from __future__ import annotations

from swarm.testing.synthetic import end_of, synthetic_run, write_board
from swarm.tui.detail import DetailPane
from swarm.tui.dialogs import ConfirmScreen
from swarm.tui.progress_plot import ProgressPlot
from tests.support.gitrepo import make_repo
from tests.support.watch import SIZE, app_for, wait_for

LOG = """\
step 00411 (43.2%) | loss: 3.4182 | lrm: 1.00 | dt: 312ms | tok/sec: 1,680,321 | mfu: 39.8% | remaining: 171s
step 00412 (43.3%) | loss: 3.4127 | lrm: 1.00 | dt: 311ms | tok/sec: 1,684,012 | mfu: 39.9% | remaining: 170s
step 00413 (43.4%) | loss: 3.4109 | lrm: 1.00 | dt: 312ms | tok/sec: 1,680,377 | mfu: 39.8% | remaining: 170s
"""


def realistic_app(tmp_path):
    """8 agents, 600 experiments: agents training or thinking, reruns verifying the best, logs in progress."""
    repo = make_repo(tmp_path / "repo")  # its prepare.py gives the h100 budget the progress bars use
    records = list(synthetic_run(agents=8, experiments=600, seed=7))
    board = write_board(repo / "board", records)
    for record in records:
        if record.get("status") == "running":  # jobs still training have a log in progress
            (board.directory / record["log"]).write_text(LOG)
    return app_for(board, repo=repo, now=end_of(records))


async def loaded(pilot) -> None:
    app = pilot.app
    plot = app.query_one(ProgressPlot)
    await wait_for(pilot, lambda: plot.drawn is not None, "the progress plot")
    await pilot.press("l")
    detail = app.query_one(DetailPane)
    await wait_for(pilot, lambda: detail.kind == "log" and "step 00413" in detail.text, "the log")
    await pilot.pause()


def test_main_screen(snap_compare, tmp_path):
    assert snap_compare(realistic_app(tmp_path), terminal_size=SIZE, run_before=loaded)


def test_pick_confirmation(snap_compare, tmp_path):
    async def asked(pilot) -> None:
        await loaded(pilot)
        await pilot.press("tab", "p")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the confirmation")
        await pilot.pause()

    assert snap_compare(realistic_app(tmp_path), terminal_size=SIZE, run_before=asked)
