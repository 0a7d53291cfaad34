"""The filter bar: `/` opens it, typing narrows the agents table and the leaderboard, Esc clears it."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Input

from swarm.tui.messages import FilterChanged


class FilterBar(Input):
    DEFAULT_CSS = """
    FilterBar {
        dock: bottom;
        display: none;
        border: tall $accent;
        height: 3;
    }
    FilterBar.open {
        display: block;
    }
    """
    BINDINGS = [Binding("escape", "clear_and_close", "clear filter", show=False)]

    def __init__(self, **kwargs) -> None:
        super().__init__(
            placeholder="filter: agent, state, id or words of a description (Esc clears)", **kwargs
        )

    def open(self) -> None:
        self.add_class("open")
        self.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(FilterChanged(event.value.strip()))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.screen.focus_next()  # keep the filter, go back to the tables

    def action_clear_and_close(self) -> None:
        self.value = ""
        self.remove_class("open")
        self.screen.focus_next()
