"""The agents table: one row per agent with its state, counts, best and what it is doing now.

Rows are keyed by agent name and updated cell by cell, so a refresh of 64 agents only redraws what
changed and the cursor stays on its agent.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from swarm.tui import model
from swarm.tui.format import agent_text, bar, duration, value
from swarm.tui.messages import AgentSelected
from swarm.tui.model import AgentRow, short_device

COLUMNS = (
    ("agent", "AGENT"),
    ("kind", "KIND"),
    ("gpu", "GPU"),
    ("state", "STATE"),
    ("exps", "KEEP/DISC/CRASH"),
    ("best", "BEST"),
    ("doing", "LATEST"),
)
STATE_STYLE = {
    model.TRAINING: "bold cyan",
    model.QUEUED: "yellow",
    model.THINKING: "",
    model.CRASHED: "bold red",
    model.DEAD: "red",
    model.STOPPED: "dim",
}
BAR_WIDTH = 8
DESCRIPTION_WIDTH = 40  # so that the table fits beside the plot on a 160-column terminal


def state_cell(row: AgentRow) -> Text:
    text = Text(row.state, style=STATE_STYLE.get(row.state, ""))
    if row.state == model.TRAINING:
        text.append(f" {duration(row.elapsed)}")
        if row.budget:
            text.append(" ")
            text.append(bar((row.elapsed or 0.0) / row.budget, BAR_WIDTH), style="cyan on grey15")
    elif row.state == model.CRASHED and row.exit_status is not None:
        text.append(f" (exit {row.exit_status})")
    if row.queued and row.state != model.QUEUED:
        text.append(f" +{row.queued}q", style="yellow")
    elif row.state == model.QUEUED:
        text.append(f" {row.queued}")
    return text


def row_cells(row: AgentRow) -> tuple:
    return (
        agent_text(row.name, 12, "bold"),
        agent_text(row.kind, 8),
        agent_text(f"{row.gpu} {short_device(row.device)}", 16),
        state_cell(row),
        Text(f"{row.keep}/{row.discard}/{row.crash}"),
        Text(value(row.best), style="green" if row.best is not None else "dim"),
        agent_text(row.description, DESCRIPTION_WIDTH),
    )


def matches(row: AgentRow, needle: str) -> bool:
    if not needle:
        return True
    haystack = " ".join(str(x) for x in (row.name, row.kind, row.gpu, row.device, row.state, row.description))
    return needle.lower() in haystack.lower()


class AgentsTable(DataTable):
    DEFAULT_CSS = """
    AgentsTable {
        height: 1fr;
        border: round $primary-darken-2;
        border-title-color: $text-muted;
    }
    AgentsTable:focus {
        border: round $primary;
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.rows_by_name: dict[str, AgentRow] = {}
        self._cells: dict[str, tuple] = {}
        self._order: list[str] = []

    def on_mount(self) -> None:
        self.border_title = "agents"
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def show(self, rows: tuple[AgentRow, ...], needle: str = "") -> None:
        visible = [r for r in rows if matches(r, needle)]
        self.rows_by_name = {r.name: r for r in rows}
        order = [r.name for r in visible]
        cells = {r.name: row_cells(r) for r in visible}
        if order != self._order:
            selected = self.selected_agent
            self.clear()
            for name in order:
                self.add_row(*cells[name], key=name)
            if selected in order:
                self.move_cursor(row=order.index(selected))
        else:
            for name in order:
                old = self._cells.get(name)
                for (column, _), cell, before in zip(COLUMNS, cells[name], old or (), strict=False):
                    if cell != before:
                        self.update_cell(name, column, cell)
        self._order, self._cells = order, cells
        self.border_title = f"agents ({len(visible)}/{len(rows)})" if needle else f"agents ({len(rows)})"

    @property
    def selected_agent(self) -> str | None:
        if not self._order or self.cursor_row < 0 or self.cursor_row >= len(self._order):
            return None
        return self._order[self.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        # only the focused table drives the selection (rows added to the other one highlight too)
        if self.has_focus and event.row_key is not None and event.row_key.value is not None:
            self.post_message(AgentSelected(event.row_key.value))
