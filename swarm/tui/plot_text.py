"""The progress plot drawn as text, on the board worker: the best of the main device class over time (the
board's one best, a confirmed mean: swarm.board.fold) and each agent's lowest single run so far, with plotext (textual-plotext's Plot), at the size the widget reported.

Building a plot of 64 agents' step lines takes tens of milliseconds of Python; doing it here, once per
new result or resize, keeps it off the UI loop, which only shows the finished Text.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual_plotext.plot import Plot

from swarm.board.experiments import GroupKey
from swarm.board.progress import Step
from swarm.tui.cells import short_device

AGENT_COLOURS = ("gray", "blue", "magenta", "cyan", "yellow", "orange")
HOUR = 3600.0


@dataclass(frozen=True)
class PlotData:
    """What the plot shows: a device class's global best and each agent's running best over time."""

    group: GroupKey
    start: float
    now: float
    best: tuple[Step, ...]
    agents: tuple[tuple[str, tuple[Step, ...]], ...]  # the agents drawn: those leading now
    of_agents: int = 0  # how many agents have a running best (0: as many as drawn)


def step_line(steps: tuple[Step, ...], start: float, end: float) -> tuple[list[float], list[float]]:
    """x (hours since start) and y of a step line through `steps`, held flat until `end`."""
    xs: list[float] = []
    ys: list[float] = []
    for step, following in zip(steps, (*steps[1:], None), strict=True):
        until = following.at if following else max(end, step.at)
        xs += [(step.at - start) / HOUR, (until - start) / HOUR]
        ys += [step.value, step.value]
    return xs, ys


def plot_text(plot: PlotData, width: int, height: int) -> Text:
    figure = Plot()  # a figure of its own per drawing: plotext keeps state in the figure
    end = max(plot.now, plot.best[-1].at)
    for i, (_, steps) in enumerate(plot.agents):
        xs, ys = step_line(steps, plot.start, end)
        figure.plot(xs, ys, color=AGENT_COLOURS[i % len(AGENT_COLOURS)], marker="dot")
    xs, ys = step_line(plot.best, plot.start, end)
    figure.plot(xs, ys, color="green+", marker="braille", label="best (confirmed mean)")
    values = [s.value for s in plot.best] + [steps[-1].value for _, steps in plot.agents if steps]
    low, high = min(values), max(values)
    margin = max((high - low) * 0.05, 1e-4)
    figure.ylim(low - margin, high + margin)
    figure.xlim(0, max((end - plot.start) / HOUR, 1 / 60))  # from the run's start to now
    figure.xlabel("hours")
    shown = (
        f", the {len(plot.agents)} leading agents of {plot.of_agents}"
        if plot.of_agents > len(plot.agents)
        else ""
    )
    figure.title(
        f"{short_device(plot.group[0])} {plot.group[1]}: best {plot.best[-1].value:.6f} (confirmed mean); "
        f"agents' lowest single runs{shown}"
    )
    figure.theme("clear")  # the widget's own colours show through
    figure.plotsize(width, height)
    return Text.from_ansi(figure.build(), no_wrap=True)
