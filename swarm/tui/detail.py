"""The detail pane: the selected agent's live tmux pane, or an experiment's diff, log or fields.

It loads its own text on a worker (git, files, tmux), escaped by swarm.tui.sources (the fields by
swarm.results.display), follows a live pane every `pane_interval` seconds, and styles what it shows (diff lines
by their first character) as rich Text, which is never parsed as markup.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from swarm.errors import SwarmError
from swarm.results.display import escape_text, result_block
from swarm.tui.control import RunControl
from swarm.tui.messages import DetailLoaded
from swarm.tui.sources import MARK, escaped_lines, experiment_diff, experiment_log

PANE, DIFF, LOG, INFO, LINEAGE = "pane", "diff", "log", "info", "lineage"
PANE_LINES = 300
DIFF_STYLES = (
    ("+++", "bold"),
    ("---", "bold"),
    ("+", "green"),
    ("-", "red"),
    ("@@", "cyan"),
    ("diff ", "bold"),
)
LABELS = {DIFF: "diff against its parent", LOG: "log", INFO: "fields", LINEAGE: "lineage"}


def styled(kind: str, text: str) -> Text:
    if kind == LINEAGE:
        out = Text(no_wrap=True)
        for line in text.split("\n"):
            out.append(line + "\n", style="reverse" if line.startswith(f"  {MARK}") else "")
        return out
    if kind != DIFF:
        return Text(text, no_wrap=kind == PANE)
    out = Text(no_wrap=True)
    for line in text.split("\n"):
        style = next((s for prefix, s in DIFF_STYLES if line.startswith(prefix)), "")
        out.append(line + "\n", style=style)
    return out


class DetailPane(VerticalScroll):
    DEFAULT_CSS = """
    DetailPane {
        height: 1fr;
        border: round $primary-darken-2;
        border-title-color: $text-muted;
        padding: 0 1;
    }
    DetailPane > Static {
        width: auto;
        min-width: 100%;
    }
    """

    def __init__(
        self,
        repo: Path | None,
        board_dir: Path,
        control: Callable[[], RunControl | None],
        pane_interval: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.repo = repo
        self.board_dir = board_dir
        self.control = control  # the run's processes, once the model knows the run
        self.pane_interval = pane_interval
        self.kind: str | None = None
        self.subject: str | None = None  # the agent name or experiment id shown
        # What was asked for last: loads run on a worker, so one started earlier (a pane refresh of the
        # previous selection, say) can finish after it; only the wanted one may be shown and followed.
        self.wanted: tuple[str, str] | None = None
        self.text = ""

    def compose(self) -> ComposeResult:
        yield Static(Text("select an agent or an experiment", style="dim"), id="detail-body")

    def on_mount(self) -> None:
        self.border_title = "detail"
        self.set_interval(self.pane_interval, self._follow)

    # ---------------------------------------------------------------------------------------------------
    # What to show (UI thread)

    def show_pane(self, agent: str) -> bool:
        """Follow `agent`'s live tmux pane; False when there is no run's tmux to read."""
        control = self.control()
        if control is None:
            return False
        self._request(
            PANE, agent, f"{agent}: live pane", lambda: escaped_lines(control.capture(agent, PANE_LINES))
        )
        return True

    def show_experiment(self, kind: str, record: dict[str, Any]) -> None:
        repo, board_dir = self.repo, self.board_dir
        loaders: dict[str, Callable[[], str]] = {
            DIFF: lambda: experiment_diff(repo, record) if repo else "(no repository)",
            LOG: lambda: experiment_log(board_dir, record),
            INFO: lambda: result_block(record, board_dir),  # escaped there, as `swarm wait` prints it
        }
        self._request(
            kind,
            record["id"],
            f"{escape_text(record['id'])} ({escape_text(record.get('agent'))}): {LABELS[kind]}",
            loaders[kind],
        )

    def show_lineage(self, subject: str, title: str, text: str) -> None:
        """Show a lineage the app computed (already escaped); `subject` is the experiment it leads to."""
        self.wanted = (LINEAGE, subject)
        self.show(LINEAGE, subject, title, text)

    def show_note(self, subject: str, text: str) -> None:
        self.wanted = (INFO, subject)
        self.show(INFO, subject, "detail", text)

    def _follow(self) -> None:
        if self.wanted and self.wanted[0] == PANE:
            self.show_pane(self.wanted[1])

    def _request(self, kind: str, subject: str, title: str, loader: Callable[[], str]) -> None:
        self.wanted = (kind, subject)
        self._load(kind, subject, title, loader)

    @work(thread=True, exclusive=True, group="detail")
    def _load(self, kind: str, subject: str, title: str, loader: Callable[[], str]) -> None:
        try:
            text = loader()
        except SwarmError as e:
            text = f"({e})"
        # a message, not a call: if the app closed meanwhile, it is dropped with this widget
        self.post_message(DetailLoaded(kind, subject, escape(title), text))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        if (message.kind, message.subject) != self.wanted:
            return  # loaded for an earlier selection
        self.show(message.kind, message.subject, message.title, message.text)

    def show(self, kind: str, subject: str, title: str, text: str) -> None:
        """Show `text` (already escaped); a live pane keeps following its bottom."""
        same = (kind, subject) == (self.kind, self.subject)
        at_bottom = self.scroll_y >= self.max_scroll_y
        self.kind, self.subject, self.text = kind, subject, text
        self.border_title = title
        self.query_one("#detail-body", Static).update(styled(kind, text))
        if kind == PANE and (at_bottom or not same):
            self.call_after_refresh(self.scroll_end, animate=False)
        elif not same:
            self.scroll_home(animate=False)
