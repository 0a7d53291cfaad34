"""`swarm watch` on a real swarm: stand-in agents spawned in tmux on a private socket, a real coordinator.

The TUI reads liveness and live panes from the run's tmux server and stops / restarts agents through the
run's own stop and coordinator, as a user would from the keyboard.
"""

from __future__ import annotations

import pytest

from swarm.orchestration.spawn import SpawnRequest, spawn
from swarm.repo.paths import RunPaths
from swarm.tui.agents_table import AgentsTable
from swarm.tui.app import WatchApp
from swarm.tui.control import TmuxRunControl
from swarm.tui.detail import DetailPane
from swarm.tui.dialogs import ConfirmScreen
from swarm.tui.header import RunHeader
from swarm.tui.model import WatchModel
from tests.support.standins import (
    reports,
    wait_for_reports,
)
from tests.support.watch import SIZE, refreshed, run, wait_for

pytestmark = pytest.mark.slow  # a real swarm spawned in tmux


@pytest.fixture
def repo(standin_repo, monkeypatch):
    monkeypatch.setenv("SWARM_FAKE_GPUS", "2:NVIDIA H100 80GB HBM3")
    return standin_repo


def test_live_pane_stop_and_restart_of_a_running_swarm(repo, tmp_path):
    spawn(SpawnRequest(gpus="2", agent="standin", tag="tw"), out=lambda line: None)
    wait_for_reports(tmp_path / "reports", ["gpu0", "gpu1"])
    paths = RunPaths.for_repo(repo)
    model = WatchModel(paths.board, paths.repo, control_for=lambda tag: TmuxRunControl(paths, tag, grace_s=3))
    app = WatchApp(model, paths.repo, paths.board, interval=0.1, pane_interval=0.2)

    def state(agent):
        return str(app.query_one(AgentsTable).get_cell(agent, "state"))

    def header():
        return str(app.query_one(RunHeader).render())

    async def confirm(pilot, key):
        await pilot.press(key)
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), f"the confirmation of {key}")
        await pilot.press("y")

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await refreshed(pilot, app)
            assert state("gpu0") == "thinking" and state("gpu1") == "thinking"
            assert "agents 2/2 alive" in header()
            detail = app.query_one(DetailPane)
            await wait_for(pilot, lambda: "stand-in agent gpu0 running" in detail.text, "gpu0's live pane")
            assert detail.kind == "pane" and detail.border_title == "gpu0: live pane"

            await confirm(pilot, "s")
            await wait_for(pilot, lambda: state("gpu0") == "stopped", "gpu0 stopped", timeout=30)
            assert "agents 1/2 alive" in header()

            await confirm(pilot, "r")  # lifts the stop: the coordinator starts it with a resume prompt
            await wait_for(
                pilot, lambda: len(reports(tmp_path / "reports", "gpu0")) == 2, "gpu0 started again"
            )
            await wait_for(pilot, lambda: state("gpu0") == "thinking", "gpu0 alive again", timeout=30)

            await pilot.press("down")  # gpu1: its own pane, and a restart of a live agent
            await wait_for(
                pilot,
                lambda: "stand-in agent gpu1 running" in detail.text,
                lambda: (
                    f"gpu1's live pane (selected {app.query_one(AgentsTable).selected_agent}, "
                    f"detail {detail.kind} {detail.border_title!r}: {detail.text[-300:]!r})"
                ),
            )
            await confirm(pilot, "r")
            await wait_for(pilot, lambda: len(reports(tmp_path / "reports", "gpu1")) == 2, "gpu1 restarted")
            assert "resume" in reports(tmp_path / "reports", "gpu1")[-1]["prompt"].lower()

            await pilot.press("a")  # a headless terminal cannot be handed over: a clear note, no crash
            await pilot.pause(0.2)
            assert app.is_running

            TmuxRunControl(paths, "tw").tmux.kill_server()
            await wait_for(pilot, lambda: state("gpu0") == "dead" and state("gpu1") == "dead", "both dead")
            assert "agents 0/2 alive" in header()

    run(scenario)
