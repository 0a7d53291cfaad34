"""The progress plot widget: shows the plot the board worker drew (swarm.tui.plot_text) and tells the app
its size, so the next drawing fits. Drawing never happens on the UI loop."""

from __future__ import annotations

from rich.text import Text
from textual.events import Resize
from textual.widgets import Static

from swarm.tui.messages import PlotResized


class ProgressPlot(Static):
    DEFAULT_CSS = """
    ProgressPlot {
        height: 1fr;
        border: round $primary-darken-2;
        border-title-color: $text-muted;
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(Text("no measured result yet", style="dim"), **kwargs)
        self.drawn: Text | None = None  # the drawing shown, once there is one

    def on_mount(self) -> None:
        self.border_title = "progress: the best, a confirmed mean (green); each agent's lowest single run"

    def on_resize(self, event: Resize) -> None:
        self.post_message(PlotResized(self.size.width, self.size.height))  # inside the border

    def show(self, text: Text | None) -> None:
        if text is not None and text is not self.drawn:  # a new drawing: a result arrived or a resize
            self.drawn = text
            self.update(text)
