"""`swarm watch` driven headless (Textual Pilot) on boards the tests write as real files."""

from __future__ import annotations

import pytest
from rich.text import Text

from swarm.board.run_record import AgentEntry
from swarm.orchestration.agent_state import CRASHED, DEAD, STOPPED, Liveness, process_state
from swarm.orchestration.tmux import Pane
from swarm.tui.agents_table import AgentsTable
from swarm.tui.detail import DetailPane
from swarm.tui.dialogs import ConfirmScreen
from swarm.tui.header import RunHeader
from swarm.tui.leaderboard import Leaderboard
from tests.support.gitrepo import commit_on, git, make_repo, repo_state
from tests.support.watch import (
    H100,
    SIZE,
    T0,
    app_for,
    experiment,
    finish,
    make_board,
    refreshed,
    run,
    screen_lines,
    start,
    wait_for,
)


def state_of(app, agent: str) -> str:
    return str(app.query_one(AgentsTable).get_cell(agent, "state"))


def test_rows_update_as_records_are_appended(tmp_path):
    board = make_board(tmp_path / "board")
    queued = board.append(experiment("gpu0", at=T0 + 3000))

    async def scenario():
        app = app_for(board, now=T0 + 3600)
        async with app.run_test(size=SIZE) as pilot:
            await refreshed(pilot, app)
            table = app.query_one(AgentsTable)
            assert table.row_count == 2
            assert state_of(app, "gpu0") == "waiting 1" and state_of(app, "gpu1") == "thinking"

            running = board.append(start(queued, at=T0 + 3600 - 187))
            await wait_for(pilot, lambda: state_of(app, "gpu0").startswith("training 3:07"), "gpu0 training")
            assert str(table.get_cell("gpu0", "doing")) == "wider model"

            board.append(finish(running, 0.991234, at=T0 + 3590))
            await wait_for(pilot, lambda: state_of(app, "gpu0") == "thinking", "gpu0 thinking")
            assert str(table.get_cell("gpu0", "best")) == "0.991234"
            assert str(table.get_cell("gpu0", "exps")) == "1/0/0"
            leaderboard = app.query_one(Leaderboard)
            assert leaderboard.row_count == 1 and leaderboard.records[0]["id"] == queued["id"]
            header = str(app.query_one(RunHeader).render())
            assert "swarm t1" in header and "experiments 1 (1/h)" in header and "best 0.991234" in header

            crashed = board.append(experiment("gpu1", status="crash", at=T0 + 3500))
            await wait_for(
                pilot, lambda: str(table.get_cell("gpu1", "exps")) == "0/0/1", "gpu1 crash counted"
            )
            assert crashed["id"] not in [r["id"] for r in leaderboard.records]

    run(scenario)


def test_selection_diff_log_and_fields(tmp_path):
    repo = make_repo(tmp_path / "repo")
    commit, parent = commit_on(repo, "swarm/t1/gpu0", "main", {"MATRIX_LR = 0.04": "MATRIX_LR = 0.03"}, "lr")
    board = make_board(repo / "board", base=git(repo, "rev-parse", "main"))
    (board.logs / "e1.log").write_text("step 00950 loss 3.21\n---\nval_bpb:          0.990000\n")
    record = experiment("gpu0", commit=commit, parent=parent, log="logs/e1.log", description="lower LR")
    board.append(finish(record, 0.99))

    async def scenario():
        app = app_for(board, repo=repo)
        async with app.run_test(size=SIZE) as pilot:
            await refreshed(pilot, app)
            detail = app.query_one(DetailPane)
            # an agent without tmux: its latest experiment's fields
            await wait_for(pilot, lambda: "lower LR" in detail.text, "the fields of gpu0's experiment")
            assert "status:           keep" in detail.text

            await pilot.press("tab")  # to the leaderboard: its selected experiment's diff
            await wait_for(pilot, lambda: detail.kind == "diff", "the diff view")
            assert "-MATRIX_LR = 0.04" in detail.text and "+MATRIX_LR = 0.03" in detail.text
            assert detail.border_title == f"{record['id']} (gpu0): diff against its parent"

            await pilot.press("l")
            await wait_for(pilot, lambda: detail.kind == "log", "the log view")
            assert "val_bpb:          0.990000" in detail.text

            await pilot.press("d")
            await wait_for(pilot, lambda: detail.kind == "diff", "back to the diff")

    run(scenario)


@pytest.mark.slow  # a headless app through two dialogs (pick itself: test_pick.py)
def test_pick_asks_first_and_commits_only_on_yes(tmp_path):
    repo = make_repo(tmp_path / "repo")
    commit, parent = commit_on(repo, "swarm/t1/gpu0", "main", {"DEPTH = 8": "DEPTH = 12"}, "deeper")
    board = make_board(repo / "board", base=git(repo, "rev-parse", "main"))
    record = board.append(
        finish(experiment("gpu0", commit=commit, parent=parent, description="deeper"), 0.98)
    )
    before = repo_state(repo)
    main_before = git(repo, "rev-parse", "main")

    async def scenario():
        app = app_for(board, repo=repo)
        async with app.run_test(size=SIZE) as pilot:
            await refreshed(pilot, app)
            await pilot.press("tab", "p")
            dialog = await wait_for(
                pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen, "the confirmation"
            )
            question = dialog.question.plain
            assert f"Pick experiment {record['id']} by gpu0, val_bpb 0.980000 (keep): deeper" in question
            assert "new commit on main" in question
            await pilot.press("enter")  # the focused button is cancel: Enter alone never picks
            await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen), "the dialog to close")
            await pilot.press("p")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation again")
            await pilot.press("n")
            await pilot.pause(0.2)
            assert repo_state(repo) == before

            await pilot.press("p")
            await wait_for(
                pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation, third time"
            )
            await pilot.press("y")
            await wait_for(pilot, lambda: git(repo, "rev-parse", "main") != main_before, "the pick")
            assert git(repo, "log", "-1", "--format=%s", "main") == f"pick {record['id']} (gpu0): deeper"
            assert "DEPTH = 12" in (repo / "train.py").read_text()

    run(scenario)


def test_agent_text_is_shown_literally(tmp_path):
    board = make_board(tmp_path / "board")
    log = board.logs / "x.log"
    log.write_text("plain\n\x1b[2J\x1b[31mred\x1b[0m\n[bold]not bold[/]\n")
    markup = "[bold red]x[/] \x1b[31mred\x1b[0m"
    board.append(finish(experiment("gpu0", description=markup, log="logs/x.log"), 0.99))
    board.append(experiment("gpu1", description="[link=http://x]click[/link]"))

    async def scenario():
        app = app_for(board)
        async with app.run_test(size=SIZE) as pilot:
            await refreshed(pilot, app)
            table = app.query_one(AgentsTable)
            cell = table.get_cell("gpu0", "doing")
            assert isinstance(cell, Text) and cell.plain == "[bold red]x[/] \\x1b[31mred\\x1b[0m"
            assert cell.spans == []  # no style came out of the description
            assert table.get_cell("gpu1", "doing").plain == "[link=http://x]click[/link]"
            leaders = app.query_one(Leaderboard)
            leader = leaders.get_cell_at((0, leaders.get_column_index("description")))
            assert leader.plain == "[bold red]x[/] \\x1b[31mred\\x1b[0m"
            # what reaches the screen: the characters themselves, nothing red, no escape byte
            screen = "\n".join(screen_lines(app))
            assert "[bold red]x[/] \\x1b[31mred\\x1b[0m" in screen
            assert "\x1b" not in app.export_screenshot()
            await pilot.press("l")
            detail = app.query_one(DetailPane)
            await wait_for(pilot, lambda: detail.kind == "log", "the log")
            assert "\\x1b[2J\\x1b[31mred\\x1b[0m" in detail.text and "[bold]not bold[/]" in detail.text

    run(scenario)


def test_filter_narrows_both_tables(tmp_path):
    board = make_board(tmp_path / "board", agents=3)
    board.append(finish(experiment("gpu0", description="wider model"), 0.99))
    board.append(finish(experiment("gpu2", description="softcap 10"), 0.98))

    async def scenario():
        app = app_for(board)
        async with app.run_test(size=SIZE) as pilot:
            await refreshed(pilot, app)
            agents, leaders = app.query_one(AgentsTable), app.query_one(Leaderboard)
            assert agents.row_count == 3 and leaders.row_count == 2
            await pilot.press("slash", *"softcap")
            await wait_for(pilot, lambda: agents.row_count == 1 and leaders.row_count == 1, "the filter")
            assert agents.selected_agent == "gpu2"
            await refreshed(pilot, app)  # refreshes keep the filter
            assert agents.row_count == 1
            await pilot.press("escape")
            await wait_for(
                pilot, lambda: agents.row_count == 3 and leaders.row_count == 2, "the filter cleared"
            )

    run(scenario)


def test_help_lists_the_keys(tmp_path):
    board = make_board(tmp_path / "board")

    async def scenario():
        app = app_for(board)
        async with app.run_test(size=SIZE) as pilot:
            await refreshed(pilot, app)
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: type(app.screen).__name__ == "HelpScreen", "help")
            await pilot.press("escape")
            await wait_for(pilot, lambda: type(app.screen).__name__ != "HelpScreen", "help closed")
            await pilot.press("q")
            await wait_for(pilot, lambda: not app.is_running, "quit")

    run(scenario)


def test_process_states_come_from_tmux_panes():
    """`swarm status` and `swarm watch` both ask agent_state, whose process part is this."""

    def pane(name, dead=False, status=None):
        return Pane("@1", name, "%1", 10, dead, status)

    slot = AgentEntry("gpu0", "claude", "0", H100, "/w", "b")
    stopped = AgentEntry("gpu0", "claude", "0", H100, "/w", "b", stopped=True)
    state = process_state
    assert state(slot, None) == (None, None)  # no tmux to ask: the board decides
    assert state(slot, Liveness(True, {"gpu0": pane("gpu0")})) == (None, None)  # alive: the board decides
    assert state(slot, Liveness(True, {"gpu0": pane("gpu0", True, 2)})) == (CRASHED, 2)
    assert state(slot, Liveness(True, {"gpu0": pane("gpu0", True, 0)})) == (DEAD, 0)
    assert state(slot, Liveness(True, {})) == (DEAD, None)
    assert state(slot, Liveness(False, {})) == (DEAD, None)
    assert state(stopped, Liveness(True, {})) == (STOPPED, None)


def test_closes_by_itself_when_asked(tmp_path):
    """`swarm demo` shows the TUI for a while: the app quits by itself after `close_after` seconds."""
    board = make_board(tmp_path / "board")

    async def scenario():
        app = app_for(board, close_after=0.3)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: not app.is_running, "the app to close itself")

    run(scenario)


def test_verify_asks_first_then_queues_a_rerun_on_another_gpu(tmp_path):
    board = make_board(tmp_path / "board", agents=2)
    record = board.append(finish(experiment("gpu0", commit="c" * 40, description="wider"), 0.98))

    def reruns():
        return [r for r in board.records() if r.get("verify_of") == record["id"]]

    async def scenario():
        app = app_for(board)
        async with app.run_test(size=SIZE) as pilot:
            await refreshed(pilot, app)
            await pilot.press("tab", "v")
            dialog = await wait_for(
                pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen, "the confirmation"
            )
            assert dialog.question.plain.startswith(f"Verify experiment {record['id']} by gpu0")
            await pilot.press("n")
            await pilot.pause(0.2)
            assert reruns() == []
            await pilot.press("v")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation again")
            await pilot.press("y")
            (rerun,) = await wait_for(pilot, reruns, "the rerun on the board")
            assert rerun["status"] == "queued" and rerun["gpu"] == "1"  # another GPU of the same class
            assert rerun["commit"] == record["commit"] and rerun["requested_by"] == "watch"
            await wait_for(
                pilot,
                lambda: str(app.query_one(AgentsTable).get_cell("gpu1", "state")) == "waiting 1",
                "gpu1 waiting",
            )

    run(scenario)


def test_watch_without_a_board_is_one_clear_line(tmp_path, monkeypatch, capsys):
    from swarm import cli
    from tests.support.gitrepo import make_repo

    repo = make_repo(tmp_path / "repo")
    monkeypatch.chdir(repo)
    monkeypatch.delenv("SWARM_BOARD", raising=False)
    assert cli.main(["watch"]) == 1
    assert capsys.readouterr().err.startswith(f"swarm: no board at {repo / 'board'}")


def test_cost_column_appears_with_the_first_usage_record(tmp_path):
    """The cost ledger in the agents table: no column while no agent has usage, then dollars (or tokens
    when the CLI reports no cost, as Codex does) per agent."""
    from swarm.board.ledger import Usage, usage_record

    board = make_board(tmp_path / "board")
    board.append(experiment("gpu0", at=T0 + 3000))

    async def scenario():
        app = app_for(board, now=T0 + 3600)
        async with app.run_test(size=SIZE) as pilot:
            await refreshed(pilot, app)
            table = app.query_one(AgentsTable)
            assert "cost" not in table.columns
            for cost, usage in ((0.25, Usage(1000, 100)), (0.5, Usage(2000, 200))):
                board.append(usage_record(agent="gpu0", tag="t1", gpu="0", kind="claude", model="m", usage=usage, requests=1, cost_usd=cost))  # fmt: skip
            board.append(usage_record(agent="gpu1", tag="t1", gpu="1", kind="codex", model=None, usage=Usage(41_000, 1000), requests=None, cost_usd=None))  # fmt: skip
            await wait_for(pilot, lambda: "cost" in table.columns, "cost column shown")
            await wait_for(pilot, lambda: str(table.get_cell("gpu0", "cost")) == "$0.75", "gpu0 dollars")
            assert str(table.get_cell("gpu1", "cost")) == "42k tk"
            assert str(table.get_cell("gpu0", "best")) == "-"  # the other columns stay in place

    run(scenario)


def test_a_crashed_agent_shows_why_in_place_of_its_latest_experiment(tmp_path):
    """The agents table's LATEST of a crashed agent is its last line (escapes removed), and once the
    coordinator gave up on it, `crash loop: <line>`, the same words as `swarm status`."""
    from swarm.board.store import PROCESS
    from swarm.tui.model import WatchModel

    class Crashed:
        def liveness(self):
            return Liveness(True, {"gpu0": Pane("@1", "gpu0", "%1", 10, True, 1)})

        def capture(self, window, lines=200):
            return "Traceback ...\n\x1b[31mValueError: dynamic value space\x1b[0m\nPane is dead (status 1)\n"

    board = make_board(tmp_path / "board", agents=1)
    board.append(experiment("gpu0", status="crash", at=T0 + 100))
    model = WatchModel(board.directory, None, control_for=lambda tag: Crashed(), clock=lambda: T0 + 3600)
    (row,) = model.refresh().agents
    assert row.state == CRASHED and row.reason == "ValueError: dynamic value space"
    board.append(
        {"type": PROCESS, "tag": "t1", "window": "gpu0", "event": "crash_loop", "reason": row.reason}
    )
    (row,) = model.refresh().agents
    assert row.reason == "crash loop: ValueError: dynamic value space"
    assert str(AgentsTable().row_cells(row)[-1]).startswith("crash loop:")  # cut to the column
