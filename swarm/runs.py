"""A run as the coordinator sees it: the latest run record of its tag, and which agents are held down.

The run record itself (tag, base, profile, agents) is `swarm.run_record.RunRecord`; `swarm spawn` writes
it. What changes while a run lives is kept in `control` records, so the run record keeps its contract:
`{"type": "control", "tag": T, "agent": "gpu3", "action": "stop" | "resume"}`; the latest one of an agent
wins (`swarm stop gpu3` writes stop, `swarm spawn` / `swarm resume` write resume for every stopped agent).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from swarm.board import CONTROL, RUN, Board
from swarm.errors import SwarmError
from swarm.run_record import AgentSlot, RunRecord

TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")  # a branch component, a tmux session and socket name


def validate_tag(tag: str) -> str:
    if not TAG.match(tag):
        raise SwarmError(f"invalid tag {tag!r}: use letters, digits, '_' or '-' (max 32, no '/' or '.')")
    return tag


def is_cpu(slot: AgentSlot) -> bool:
    return slot.gpu.startswith("cpu")


def runner_window(agent: str) -> str:
    return f"runner-{agent}"


def runner_args(slot: AgentSlot) -> list[str]:
    """Arguments of `swarm runner` for an agent's slot: `--gpu 3` or `--cpu 0`."""
    return ["--cpu", slot.gpu[3:]] if is_cpu(slot) else ["--gpu", slot.gpu]


def require_agent(run: RunRecord, name: str) -> AgentSlot:
    slot = run.agent(name)
    if slot is None:
        known = ", ".join(a.name for a in run.agents)
        raise SwarmError(f"no agent {name!r} in run {run.tag} (agents: {known})")
    return slot


@dataclass
class RunView:
    """The latest run record of a tag and its stopped agents, folded from board records."""

    tag: str
    run: RunRecord | None = None
    stopped: set[str] = field(default_factory=set)

    def apply(self, records: list[dict[str, Any]]) -> RunView:
        for record in records:
            if record.get("tag") != self.tag:
                continue
            if record.get("type") == RUN:
                self.run = RunRecord.from_record(record)
            elif record.get("type") == CONTROL:
                agent = record.get("agent")
                if record.get("action") == "stop":
                    self.stopped.add(agent)
                elif record.get("action") == "resume":
                    self.stopped.discard(agent)
        return self


class RunFollower:
    """A RunView kept current by reading the board incrementally (cheap to ask every tick)."""

    def __init__(self, board: Board, tag: str):
        self.reader = board.reader()
        self.view = RunView(tag)

    def refresh(self) -> RunView:
        return self.view.apply(self.reader.read_new())


def read_view(board: Board, tag: str) -> RunView:
    return RunView(tag).apply(board.records())


def latest_tag(records: list[dict[str, Any]]) -> str | None:
    """The tag of the latest run record on a board, or None."""
    for record in reversed(records):
        if record.get("type") == RUN:
            return record.get("tag")
    return None


def set_stopped(board: Board, tag: str, agents: list[str], stopped: bool) -> None:
    action = "stop" if stopped else "resume"
    for agent in agents:
        board.append({"type": CONTROL, "tag": tag, "agent": agent, "action": action})


def open_run(board: Board, tag: str | None) -> RunView:
    """The run a command is about: `tag`, else $SWARM_TAG, else the latest run on the board."""
    board.require()
    records = board.records()
    tag = tag or os.environ.get("SWARM_TAG") or latest_tag(records)
    if not tag:
        raise SwarmError(f"no run on the board {board.directory} (start one with `swarm spawn`)")
    view = RunView(validate_tag(tag)).apply(records)
    if view.run is None:
        raise SwarmError(f"no run {tag!r} on the board {board.directory}")
    return view
