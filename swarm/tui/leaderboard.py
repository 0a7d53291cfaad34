"""The leaderboard: the best contents of each device class and profile, with their repeat statistics."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from swarm.tui.format import agent_text, value
from swarm.tui.messages import ExperimentSelected
from swarm.tui.model import LeaderRow, short_device

DESCRIPTION_WIDTH = 44
COLUMNS = ("#", "DEVICE", "VAL_BPB", "SIGMA", "N", "VER", "AGENT", "ID", "DESCRIPTION")


def row_cells(row: LeaderRow) -> tuple:
    e = row.record
    return (
        Text(str(row.rank), style="bold" if row.rank == 1 else "dim"),
        agent_text(f"{short_device(row.group[0])} {row.group[1]}", 18),
        Text(value(row.mean), style="bold green" if row.rank == 1 else "green"),
        Text(value(row.sigma) if row.sigma is not None else "-", style="dim"),
        Text(str(row.n)),
        Text("✓", style="bold green") if row.verified else Text("·", style="dim"),
        agent_text(e.get("agent"), 10),
        Text(str(e["id"])),
        agent_text(e.get("description"), DESCRIPTION_WIDTH),
    )


def matches(row: LeaderRow, needle: str) -> bool:
    if not needle:
        return True
    e = row.record
    haystack = " ".join(str(x) for x in (e["id"], e.get("agent"), e.get("description"), *row.group))
    return needle.lower() in haystack.lower()


class Leaderboard(DataTable):
    DEFAULT_CSS = """
    Leaderboard {
        height: 1fr;
        border: round $primary-darken-2;
        border-title-color: $text-muted;
    }
    Leaderboard:focus {
        border: round $primary;
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.records: list[dict] = []
        self._shown: tuple = ()

    def on_mount(self) -> None:
        self.border_title = "leaderboard"
        self.add_columns(*COLUMNS)

    def show(self, rows: tuple[LeaderRow, ...], needle: str = "") -> None:
        visible = [r for r in rows if matches(r, needle)]
        shown = tuple((r.group, r.record["id"], r.mean, r.sigma, r.n, r.verified) for r in visible)
        if shown == self._shown:
            return  # rebuilt only when a result changed it
        selected = self.selected_record
        self.clear()
        self.records = [r.record for r in visible]
        for row in visible:
            self.add_row(*row_cells(row), key=f"{row.group}|{row.record['id']}")
        ids = [r["id"] for r in self.records]
        if selected is not None and selected["id"] in ids:
            self.move_cursor(row=ids.index(selected["id"]))
        self._shown = shown
        self.border_title = "leaderboard: best per device class (mean of repeats)"

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
