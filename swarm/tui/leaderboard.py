"""The leaderboard: the best contents of each device class and profile, with their repeat statistics."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from swarm.tui.cells import agent_text, mentions, short_device, value
from swarm.tui.fitted_table import FittedTable
from swarm.tui.messages import ExperimentSelected
from swarm.tui.model import LeaderRow


def matches(row: LeaderRow, needle: str) -> bool:
    e = row.record
    return mentions(needle, e["id"], e.get("agent"), e.get("description"), *row.group)


class Leaderboard(FittedTable):
    COLUMNS = (
        ("rank", "#", 2),
        ("device", "DEVICE", 16),  # shown only when the board has more than one device class or profile
        ("mean", "VAL_BPB", 8),
        ("sigma", "SIGMA", 8),
        ("n", "N", 3),
        ("verified", "VER", 3),
        ("agent", "AGENT", 6),
        ("id", "ID", 8),
        ("description", "DESCRIPTION", None),
    )

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.shown_rows: tuple[LeaderRow, ...] = ()
        self.records: list[dict] = []
        self.needle = ""
        self._shown: tuple = ()

    def on_mount(self) -> None:
        self.border_title = "leaderboard"
        self.reset_columns(frozenset({"device"}))

    def row_cells(self, row: LeaderRow) -> tuple:
        e = row.record
        cells = {
            "rank": Text(str(row.rank) if row.rank else "-", style="bold" if row.rank == 1 else "dim"),
            "device": agent_text(f"{short_device(row.group[0])} {row.group[1]}", 16),
            "mean": Text(value(row.mean), style="bold green" if row.rank == 1 else "green"),
            "sigma": Text("single" if row.n == 1 else value(row.sigma), style="dim"),
            "n": Text(str(row.n)),
            "verified": Text("✓", style="bold green") if row.verified else Text("·", style="dim"),
            "agent": agent_text(e.get("agent"), 6),
            "id": agent_text(e["id"]),
            "description": agent_text(e.get("description"), self.flex),
        }
        return tuple(cells[key] for key, _, _ in self._shown_columns())

    def show(self, rows: tuple[LeaderRow, ...], needle: str = "", rebuild: bool = False) -> None:
        self.shown_rows, self.needle = rows, needle
        groups = frozenset({r.group for r in rows})
        hidden = frozenset() if len(groups) > 1 else frozenset({"device"})
        if hidden != self.hidden_columns:
            self.reset_columns(hidden)
            rebuild = True
        visible = [r for r in rows if matches(r, needle)]
        shown = tuple((r.group, r.record["id"], r.mean, r.sigma, r.n, r.verified) for r in visible)
        if shown == self._shown and not rebuild:
            return  # rebuilt only when a result changed it
        selected = self.selected_record
        self.clear()
        self.records = [r.record for r in visible]
        for row in visible:
            self.add_row(*self.row_cells(row), key=f"{row.group}|{row.record['id']}")
        ids = [r["id"] for r in self.records]
        if selected is not None and selected["id"] in ids:
            self.move_cursor(row=ids.index(selected["id"]))
        self._shown = shown
        self.border_title = "leaderboard: confirmed means ranked, #1 the best; - not confirmed yet"

    def redraw(self) -> None:
        self.reset_columns(self.hidden_columns)
        self.show(self.shown_rows, self.needle, rebuild=True)

    @property
    def selected_record(self) -> dict | None:
        if not self.records or not 0 <= self.cursor_row < len(self.records):
            return None
        return self.records[self.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        record = self.selected_record
        if self.has_focus and record is not None:  # only the focused table drives the selection
            self.post_message(ExperimentSelected(record))
