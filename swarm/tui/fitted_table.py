"""A DataTable whose columns have fixed widths except one, which takes what is left of the table's width.

Textual sizes table columns to their content; a long description would push the table wider than its
pane (and under a horizontal scrollbar). Here the flexible column (the description) gets exactly the rest,
recomputed when the table is resized, and its cells are cut to that width by the subclass.
"""

from __future__ import annotations

from textual.widgets import DataTable

MIN_FLEX = 12
SCROLLBAR = 2  # room kept for the vertical scrollbar


class FittedTable(DataTable):
    """Subclasses set COLUMNS = ((key, label, width or None for the flexible one), ...) and `redraw()`."""

    COLUMNS: tuple[tuple[str, str, int | None], ...] = ()
    DEFAULT_CSS = """
    FittedTable {
        height: 1fr;
        border: round $primary-darken-2;
        border-title-color: $text-muted;
        overflow-x: hidden;
    }
    FittedTable:focus {
        border: round $primary;
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.flex = MIN_FLEX
        self.hidden_columns: frozenset[str] = frozenset()

    def fitted_flex(self, width: int) -> int:
        fixed = sum(w + 2 * self.cell_padding for key, _, w in self._shown_columns() if w is not None)
        return max(MIN_FLEX, width - fixed - 2 * self.cell_padding - SCROLLBAR)

    def _shown_columns(self):
        return [c for c in self.COLUMNS if c[0] not in self.hidden_columns]

    def reset_columns(self, hidden: frozenset[str] = frozenset()) -> None:
        """Lay the columns out again (clears the rows) for the current width and hidden columns."""
        self.hidden_columns = hidden
        self.flex = self.fitted_flex(self.scrollable_content_region.width or self.size.width)
        self.clear(columns=True)
        for key, label, width in self._shown_columns():
            self.add_column(label, key=key, width=width if width is not None else self.flex)

    def on_resize(self) -> None:
        if self.fitted_flex(self.scrollable_content_region.width) != self.flex:
            self.redraw()

    def redraw(self) -> None:
        """Lay out the columns and put the rows back (subclasses know their rows)."""
        raise NotImplementedError
