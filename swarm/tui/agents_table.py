"""The agents table: one row per agent with its state, counts, best and what it is doing now.

Rows are keyed by agent name and updated cell by cell, so a refresh of 64 agents only redraws what
changed and the cursor stays on its agent.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from swarm.orchestration import agent_state
from swarm.tui.cells import agent_text, bar, duration, mentions, short_device, value
from swarm.tui.fitted_table import FittedTable
from swarm.tui.messages import AgentSelected
from swarm.tui.model import AgentRow

STATE_STYLE = {
    agent_state.TRAINING: "bold cyan",
    agent_state.WAITING: "yellow",
    agent_state.THINKING: "",
    agent_state.CRASHED: "bold red",
    agent_state.DEAD: "red",
    agent_state.STOPPED: "dim",
}
BAR_WIDTH = 6


def state_cell(row: AgentRow) -> Text:
    text = Text(row.state, style=STATE_STYLE.get(row.state, ""))
    if row.state == agent_state.TRAINING:
        text.append(f" {duration(row.elapsed)}")
        if row.budget:
            text.append(" ")
            text.append_text(bar((row.elapsed or 0.0) / row.budget, BAR_WIDTH))
    elif row.state == agent_state.CRASHED and row.exit_status is not None:
        text.append(f" (exit {row.exit_status})")
    if row.state == agent_state.WAITING:
        text.append(f" {row.queued}")
    elif row.queued:
        text.append(f" +{row.queued}q", style="yellow")
    return text


def gpu_cell(row: AgentRow) -> Text:
    device = short_device(row.device).split()[0]
    return agent_text(row.queue if device in ("cpu", "?") else f"{row.queue} {device}", 10)


def cost_cell(row: AgentRow) -> Text:
    """Dollars when the usage records know them, else the tokens (Codex reports no cost)."""
    if row.cost is not None:
        return Text(f"${row.cost:.2f}")
    if row.tokens:
        return Text(
            f"{row.tokens / 1e6:.1f}M tk" if row.tokens >= 1e6 else f"{row.tokens / 1e3:.0f}k tk", style="dim"
        )
    return Text("-", style="dim")


def matches(row: AgentRow, needle: str) -> bool:
    return mentions(needle, row.name, row.kind, row.queue, row.device, row.state, row.description)


class AgentsTable(FittedTable):
    COLUMNS = (
        ("agent", "AGENT", 6),
        ("kind", "KIND", 6),
        ("gpu", "GPU", 7),
        ("state", "STATE", 24),
        ("exps", "K/D/C", 11),
        ("best", "BEST", 8),
        ("cost", "COST", 8),  # shown once some agent has usage on the board (the cost ledger)
        ("doing", "LATEST", None),
    )

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.shown_rows: tuple[AgentRow, ...] = ()
        self.rows_by_name: dict[str, AgentRow] = {}
        self.needle = ""
        self._cells: dict[str, tuple] = {}
        self._order: list[str] = []

    def on_mount(self) -> None:
        self.border_title = "agents"
        self.reset_columns()

    def row_cells(self, row: AgentRow) -> tuple:
        cells = {
            "agent": agent_text(row.name, 6, "bold"),
            "kind": agent_text(row.kind, 6),
            "gpu": gpu_cell(row),
            "state": state_cell(row),
            "exps": exps_cell(row),
            "best": Text(value(row.best), style="green" if row.best is not None else "dim"),
            "cost": cost_cell(row),
            # a crashed agent: why (its last line), in place of its latest experiment
            "doing": agent_text(row.reason, self.flex, "red")
            if row.reason
            else agent_text(row.description, self.flex),
        }
        return tuple(cells[key] for key, _, _ in self._shown_columns())

    def show(self, rows: tuple[AgentRow, ...], needle: str = "", rebuild: bool = False) -> None:
        hidden = frozenset() if any(r.tokens for r in rows) else frozenset({"cost"})
        if hidden != self.hidden_columns:
            self.reset_columns(hidden)
            self._order = []  # the rows go with the columns: put them back
        self.shown_rows, self.needle = rows, needle
        visible = [r for r in rows if matches(r, needle)]
        self.rows_by_name = {r.name: r for r in rows}
        order = [r.name for r in visible]
        cells = {r.name: self.row_cells(r) for r in visible}
        if rebuild or order != self._order:
            selected = self.selected_agent
            self.clear()
            for name in order:
                self.add_row(*cells[name], key=name)
            if selected in order:
                self.move_cursor(row=order.index(selected))
        else:
            for name in order:
                for (column, _, _), cell, before in zip(
                    self._shown_columns(), cells[name], self._cells[name], strict=True
                ):
                    if cell != before:
                        self.update_cell(name, column, cell)
        self._order, self._cells = order, cells
        self.border_title = f"agents ({len(visible)}/{len(rows)})" if needle else f"agents ({len(rows)})"

    def redraw(self) -> None:
        self.reset_columns(self.hidden_columns)
        self._order = []
        self.show(self.shown_rows, self.needle, rebuild=True)

    @property
    def selected_agent(self) -> str | None:
        if not self._order or not 0 <= self.cursor_row < len(self._order):
            return None
        return self._order[self.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        # only the focused table drives the selection (rows added to the other one highlight too)
        if self.has_focus and event.row_key is not None and event.row_key.value is not None:
            self.post_message(AgentSelected(event.row_key.value))


def exps_cell(row: AgentRow) -> Text:
    """keep/discard/crash, then `N?` results awaiting confirmation and `Np` runs pruned, when there are any."""
    text = Text(f"{row.keep}/{row.discard}/{row.crash}")
    if row.promising:
        text.append(f" {row.promising}?", style="yellow")
    if row.pruned:
        text.append(f" {row.pruned}p", style="dim")
    return text
