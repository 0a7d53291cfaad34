"""The detail pane: the selected agent's live tmux pane, or an experiment's diff, log or fields.

The app loads the text on a worker (git, files, tmux) and hands it here already escaped; this widget only
styles it (diff lines by their first character) as rich Text, which is never parsed as markup.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from swarm.tui.messages import DetailLoaded

PANE, DIFF, LOG, INFO = "pane", "diff", "log", "info"
DIFF_STYLES = (
    ("+++", "bold"),
    ("---", "bold"),
    ("+", "green"),
    ("-", "red"),
    ("@@", "cyan"),
    ("diff ", "bold"),
)


def styled(kind: str, text: str) -> Text:
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

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.kind: str | None = None
        self.subject: str | None = None  # the agent name or experiment id shown
        self.text = ""

    def compose(self) -> ComposeResult:
        yield Static(Text("select an agent or an experiment", style="dim"), id="detail-body")

    def on_mount(self) -> None:
        self.border_title = "detail"

    def on_detail_loaded(self, message: DetailLoaded) -> None:
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
