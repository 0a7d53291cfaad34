"""The progress plot: the global best of the main device class over time, and each agent's running best."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from swarm.progress import Step
from swarm.tui.model import PlotData, short_device

AGENT_COLOURS = ("gray", "blue", "magenta", "cyan", "yellow", "orange")
HOUR = 3600.0


def step_line(steps: tuple[Step, ...], start: float, end: float) -> tuple[list[float], list[float]]:
    """x (hours since start) and y of a step line through `steps`, held flat until `end`."""
    xs: list[float] = []
    ys: list[float] = []
    for step, following in zip(steps, (*steps[1:], None), strict=True):
        until = following.at if following else max(end, step.at)
        xs += [(step.at - start) / HOUR, (until - start) / HOUR]
        ys += [step.value, step.value]
    return xs, ys


class ProgressPlot(PlotextPlot):
    DEFAULT_CSS = """
    ProgressPlot {
        height: 1fr;
        border: round $primary-darken-2;
        border-title-color: $text-muted;
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._shown: PlotData | None = None

    def on_mount(self) -> None:
        self.border_title = "progress"
        self.plt.title("no measured result yet")

    def show(self, plot: PlotData | None) -> None:
        if plot is None or plot is self._shown:
            return  # the model builds a new PlotData only when a result arrived
        self._shown = plot
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        end = max(plot.now, plot.best[-1].at)
        for i, (_, steps) in enumerate(plot.agents):
            xs, ys = step_line(steps, plot.start, end)
            plt.plot(xs, ys, color=AGENT_COLOURS[i % len(AGENT_COLOURS)], marker="dot")
        xs, ys = step_line(plot.best, plot.start, end)
        plt.plot(xs, ys, color="green+", marker="braille", label="global best")
        low, high = plot.best[-1].value, plot.best[0].value
        margin = max((high - low) * 0.05, 1e-4)
        plt.ylim(low - margin, high + margin)
        plt.xlim(0, max((end - plot.start) / HOUR, 1 / 60))  # from the run's start to now
        plt.xlabel("hours")
        plt.title(
            f"{short_device(plot.group[0])} {plot.group[1]}: lowest single run {plot.best[-1].value:.6f}"
        )
        self.border_title = "progress: global best (green), each agent's running best"
        self.refresh()
