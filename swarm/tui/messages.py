"""Messages between the TUI's widgets and the app, declared in one place."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class AgentSelected(Message):
    """The cursor of the agents table is on this agent."""

    def __init__(self, agent: str) -> None:
        super().__init__()
        self.agent = agent


class ExperimentSelected(Message):
    """The cursor of the leaderboard is on this experiment (its latest record)."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__()
        self.record = record


class FilterChanged(Message):
    """The filter text changed ("" shows everything)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


# Posted by the app's own workers (post_message is thread-safe and never blocks the worker).


class SnapshotReady(Message):
    """A board refresh finished on the worker: a snapshot to show, or the reason there is none."""

    def __init__(self, snapshot: Any | None, error: str | None = None) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.error = error


class DetailLoaded(Message):
    """Text for the detail pane (already escaped), loaded on a worker."""

    def __init__(self, kind: str, subject: str, title: str, text: str) -> None:
        super().__init__()
        self.kind = kind
        self.subject = subject
        self.title = title
        self.text = text


class LineageLoaded(Message):
    """An experiment's lineage, computed on a worker: the group's baseline mean and the steps (oldest first)."""

    def __init__(self, subject: str, baseline: float | None, steps: list[Any], holdout: Any = None) -> None:
        super().__init__()
        self.subject = subject
        self.baseline = baseline
        self.steps = steps
        self.holdout = holdout  # swarm.results.holdout.LineageHoldout, or None (no private values to read)


class ActionFinished(Message):
    """A pick / verify / stop / restart finished; `error` when it failed."""

    def __init__(self, text: str, error: bool = False) -> None:
        super().__init__()
        self.text = text
        self.error = error


class PlotResized(Message):
    """The progress plot's content area is now `width` x `height` cells (the next drawing fits it)."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__()
        self.width = width
        self.height = height
