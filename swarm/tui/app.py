"""`swarm watch`: the app that wires the widgets, the board model and the run's processes together.

The board is read on a thread worker; each refresh schedules the next one only after its snapshot was
applied, so a slow read can never pile up refreshes or block a keypress. Details (git, logs, tmux) are
loaded on workers too; the UI thread only applies results.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import Footer

from swarm.board.store import Board
from swarm.errors import SwarmError
from swarm.orchestration.agent_state import DEAD, STOPPED
from swarm.repo.paths import RunPaths, run_paths
from swarm.results.display import escape_text
from swarm.tui import actions
from swarm.tui.agents_table import AgentsTable
from swarm.tui.control import TmuxRunControl
from swarm.tui.detail import DIFF, INFO, LINEAGE, LOG, PANE, DetailPane
from swarm.tui.dialogs import ConfirmScreen, HelpScreen
from swarm.tui.filter_bar import FilterBar
from swarm.tui.header import RunHeader
from swarm.tui.leaderboard import Leaderboard
from swarm.tui.messages import (
    ActionFinished,
    AgentSelected,
    ExperimentSelected,
    FilterChanged,
    LineageLoaded,
    PlotResized,
    SnapshotReady,
)
from swarm.tui.model import AgentRow, Snapshot, WatchModel
from swarm.tui.progress_plot import ProgressPlot
from swarm.tui.sources import lineage_text


class WatchApp(App):
    TITLE = "swarm watch"
    CSS = """
    #main { height: 1fr; }
    #left { width: 3fr; }
    #right { width: 2fr; }
    #plot { height: 2fr; }
    #detail { height: 3fr; }
    #leaderboard { height: 2fr; }
    #agents { height: 3fr; }
    """
    BINDINGS = [
        Binding("a", "attach", "attach"),
        Binding("o", "pane", "pane"),
        Binding("d", "diff", "diff"),
        Binding("l", "log", "log"),
        Binding("i", "info", "info", show=False),
        Binding("g", "lineage", "lineage"),
        Binding("left_square_bracket", "lineage_step(-1)", "parent", show=False),
        Binding("right_square_bracket", "lineage_step(1)", "child", show=False),
        Binding("p", "pick", "pick"),
        Binding("v", "verify", "verify"),
        Binding("r", "restart", "restart"),
        Binding("s", "stop", "stop"),
        Binding("slash", "filter", "filter"),
        Binding("question_mark", "help", "help"),
        Binding("q", "quit", "quit"),
    ]
    KEYS_HELP = [
        ("a", "attach to the agent's tmux window (detach with Ctrl-b d to come back)"),
        ("o", "the agent's live tmux pane"),
        ("d", "the experiment's diff against its parent"),
        ("l", "the experiment's log"),
        ("i", "the experiment's fields"),
        ("g", "the experiment's lineage: the kept and adopted steps it was built on, across agents"),
        ("[ / ]", "along the lineage: select the step before / after (then d, l, i, p, v act on it)"),
        ("p", "pick: commit the experiment's train.py onto the main branch (asks first)"),
        ("v", "verify: queue a rerun on another GPU (asks first)"),
        ("r / s", "restart / stop the agent (asks first)"),
        ("/", "filter agents and leaderboard; Esc clears"),
        ("Tab", "switch between the agents table and the leaderboard"),
        ("?", "this help"),
        ("q", "quit (the swarm keeps running)"),
    ]

    def __init__(
        self,
        model: WatchModel,
        repo: Path | None,
        board_dir: Path,
        interval: float = 1.0,
        pane_interval: float = 1.0,
        pick_onto: str | None = None,
        close_after: float | None = None,
    ):
        super().__init__()
        self.close_after = close_after  # seconds until the app closes by itself (`swarm demo`), or never
        self.model = model
        self.repo = repo
        self.board_dir = Path(board_dir)
        self.interval = interval
        self.pane_interval = pane_interval
        self.pick_onto = pick_onto
        self.snapshot: Snapshot | None = None
        self.refreshes = 0  # snapshots applied (tests wait on this)
        self.needle = ""
        self.selected_agent: str | None = None
        self.selected_record: dict[str, Any] | None = None  # an experiment picked in the leaderboard
        self.lineage: LineageLoaded | None = None  # the lineage last shown, and the step selected on it
        self.lineage_at = 0
        self._last_error: str | None = None

    def compose(self) -> ComposeResult:
        yield RunHeader(Text("reading the board ...", style="dim"), id="header")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield AgentsTable(id="agents")
                yield Leaderboard(id="leaderboard")
            with Vertical(id="right"):
                yield ProgressPlot(id="plot")
                yield DetailPane(
                    self.repo, self.board_dir, lambda: self.model.control, self.pane_interval, id="detail"
                )
        yield FilterBar(id="filter")
        yield Footer()

    def on_mount(self) -> None:
        self.detail = self.query_one(DetailPane)
        self.query_one(AgentsTable).focus()
        self.refresh_board()
        if self.close_after is not None:
            self.set_timer(self.close_after, self.exit)

    # ---------------------------------------------------------------------------------------------------
    # The board

    @work(thread=True, exclusive=True, group="board")
    def refresh_board(self) -> None:
        try:
            self.post_message(SnapshotReady(self.model.refresh()))
        except SwarmError as e:  # the board went missing or unreadable: say so, keep trying
            self.post_message(SnapshotReady(None, str(e)))

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        if message.snapshot is not None:
            try:
                self._show(message.snapshot)
            except NoMatches:
                return  # the app is shutting down and its widgets are gone: no next refresh either
            self._last_error = None
        elif message.error != self._last_error:
            self._last_error = message.error
            self.notify(message.error or "board unreadable", severity="error", markup=False)
        self.set_timer(self.interval, self.refresh_board)

    def _show(self, snapshot: Snapshot) -> None:
        first = self.snapshot is None
        self.snapshot = snapshot
        self.query_one(RunHeader).show(snapshot.header)
        self.query_one(AgentsTable).show(snapshot.agents, self.needle)
        self.query_one(Leaderboard).show(snapshot.leaders, self.needle)
        self.query_one(ProgressPlot).show(snapshot.plot_text)
        self.refreshes += 1
        if first and self.selected_agent is None and snapshot.agents:
            self._select_agent(self.query_one(AgentsTable).selected_agent)

    def on_plot_resized(self, message: PlotResized) -> None:
        self.model.plot_size = (message.width, message.height)  # the worker redraws at its next refresh

    def on_filter_changed(self, message: FilterChanged) -> None:
        self.needle = message.text
        if self.snapshot is not None:
            self.query_one(AgentsTable).show(self.snapshot.agents, self.needle)
            self.query_one(Leaderboard).show(self.snapshot.leaders, self.needle)

    # ---------------------------------------------------------------------------------------------------
    # Selection and the detail pane

    def on_agent_selected(self, message: AgentSelected) -> None:
        self._select_agent(message.agent)

    def on_experiment_selected(self, message: ExperimentSelected) -> None:
        self.selected_agent, self.selected_record = None, message.record
        self._load_detail(DIFF)

    def on_descendant_focus(self, event) -> None:
        # moving focus between the tables moves the selection to that table's cursor row
        if isinstance(event.widget, AgentsTable) and event.widget.selected_agent:
            self._select_agent(event.widget.selected_agent)
        elif isinstance(event.widget, Leaderboard) and event.widget.selected_record:
            self.selected_agent, self.selected_record = None, event.widget.selected_record
            self._load_detail(DIFF)

    def _select_agent(self, agent: str | None) -> None:
        if agent is None:
            return
        self.selected_agent, self.selected_record = agent, None
        row = self._agent_row()
        # a live (or crashed: its last output stays) tmux pane when there is one, else the latest experiment
        has_pane = self.model.control is not None and row is not None and row.state not in (DEAD, STOPPED)
        self._load_detail(PANE if has_pane else INFO)

    def _agent_row(self) -> AgentRow | None:
        rows = self.query_one(AgentsTable).rows_by_name
        return rows.get(self.selected_agent) if self.selected_agent else None

    def _experiment(self, best: bool) -> dict[str, Any] | None:
        """The selected experiment; on an agent, its best (`best`) or its latest one."""
        if self.selected_record is not None:
            return self.selected_record
        row = self._agent_row()
        if row is None:
            return None
        return row.best_record if best else (row.latest_record or row.best_record)

    def _load_detail(self, kind: str) -> None:
        if kind == PANE:
            agent = self.selected_agent or (self.selected_record or {}).get("agent")
            if not agent or not self.detail.show_pane(agent):
                self.notify("no live pane: this board's run has no tmux session to read", markup=False)
            return
        record = self._experiment(best=False)
        if record is None:
            what = (
                f"{self.selected_agent} has no experiment yet" if self.selected_agent else "nothing selected"
            )
            self.detail.show_note(str(self.selected_agent), what)
        else:
            self.detail.show_experiment(kind, record)

    # ---------------------------------------------------------------------------------------------------
    # Keys

    def action_pane(self) -> None:
        self._load_detail(PANE)

    def action_diff(self) -> None:
        self._load_detail(DIFF)

    def action_log(self) -> None:
        self._load_detail(LOG)

    def action_info(self) -> None:
        self._load_detail(INFO)

    def action_lineage(self) -> None:
        record = self._experiment(best=False)
        if record is None:
            self.notify("select an experiment (or an agent with one) to see its lineage", markup=False)
            return
        if self.lineage is not None:
            ids = [step.record["id"] for step in self.lineage.steps]
            if self.detail.kind != LINEAGE and record["id"] in ids:
                self.lineage_at = ids.index(record["id"])  # back to the lineage the step was selected on
                self._show_lineage()
                return
        self._load_lineage(record)

    @work(thread=True, exclusive=True, group="lineage")
    def _load_lineage(self, record: dict[str, Any]) -> None:
        baseline, steps = self.model.lineage(record)
        self.post_message(LineageLoaded(record["id"], baseline, steps, self.model.holdout(steps)))

    def on_lineage_loaded(self, message: LineageLoaded) -> None:
        self.lineage, self.lineage_at = message, len(message.steps) - 1
        self._show_lineage()

    def action_lineage_step(self, step: int) -> None:
        if self.lineage is None or self.detail.kind != LINEAGE:
            self.notify("press g first: the selected experiment's lineage", markup=False)
            return
        self.lineage_at = min(max(self.lineage_at + step, 0), len(self.lineage.steps) - 1)
        self._show_lineage()

    def _show_lineage(self) -> None:
        lineage = self.lineage
        step = lineage.steps[self.lineage_at]
        self.selected_agent, self.selected_record = None, step.record
        record = step.record
        title = (
            f"{lineage.subject}: lineage, at {escape_text(record['id'])} ({escape_text(record.get('agent'))})"
        )
        self.detail.show_lineage(
            lineage.subject,
            escape(title),
            lineage_text(lineage.baseline, lineage.steps, self.lineage_at, lineage.holdout),
        )

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.KEYS_HELP))

    def action_attach(self) -> None:
        agent = self.selected_agent or (self.selected_record or {}).get("agent")
        if not agent or self.model.control is None:
            self.notify("nothing to attach to: select an agent of a running swarm", markup=False)
            return
        try:
            argv, env = self.model.control.attach_argv(agent)
            with self.suspend():
                subprocess.run(argv, env=env)
        except SwarmError as e:
            self.notify(str(e), severity="error", markup=False)
        except SuspendNotSupported:
            self.notify(f"this terminal cannot hand over: run `swarm attach {agent}`", markup=False)

    def action_pick(self) -> None:
        record = self._experiment(best=True)
        if record is None or self.repo is None:
            self.notify("select an experiment with a result to pick", markup=False)
            return
        try:
            question = actions.pick_question(self.repo, record, self.pick_onto)
        except SwarmError as e:
            self.notify(str(e), severity="error", markup=False)
            return
        repo, onto, model = self.repo, self.pick_onto, self.model
        self._confirm(question, "pick", lambda: actions.do_pick(repo, record, onto, model.content_of(record)))

    def action_verify(self) -> None:
        record = self._experiment(best=True)
        if record is None:
            self.notify("select an experiment with a result to verify", markup=False)
            return
        model = self.model
        self._confirm(actions.verify_question(record), "verify", lambda: actions.do_verify(model, record))

    def action_restart(self) -> None:
        self._agent_action("restart")

    def action_stop(self) -> None:
        self._agent_action("stop")

    def _agent_action(self, verb: str) -> None:
        agent, control = self.selected_agent, self.model.control
        if agent is None or control is None:
            self.notify(f"select an agent of a running swarm to {verb}", markup=False)
            return
        self._confirm(
            actions.agent_question(verb, agent), verb, lambda: actions.do_agent(control, verb, agent)
        )

    def _confirm(self, question: Text, verb: str, act: Callable[[], str]) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.notify(f"{verb}: working ...", markup=False, timeout=2)
                self._run_action(act)

        self.push_screen(ConfirmScreen(question, verb), answered)

    @work(thread=True, group="actions")
    def _run_action(self, act: Callable[[], str]) -> None:
        try:
            self.post_message(ActionFinished(act()))
        except SwarmError as e:
            self.post_message(ActionFinished(str(e), error=True))

    def on_action_finished(self, message: ActionFinished) -> None:
        self.notify(
            message.text, severity="error" if message.error else "information", markup=False, timeout=8
        )


def watch(paths: RunPaths, interval: float = 1.0, seconds: float | None = None) -> None:
    """Run the TUI on the run in `paths` until the user quits, or for `seconds` at most."""
    Board(paths.board).require()
    model = WatchModel(paths.board, paths.repo, control_for=lambda tag: TmuxRunControl(paths, tag))
    WatchApp(model, paths.repo, paths.board, interval=interval, close_after=seconds).run()


def cmd_watch(args) -> int:
    paths = run_paths()
    Board(paths.board).require()
    if not (sys.stdin.isatty() and sys.stdout.isatty()):  # else it would write escape codes into a pipe
        raise SwarmError("swarm watch needs a terminal; without one, use `swarm status` or `swarm board`")
    watch(paths, args.interval)
    return 0
