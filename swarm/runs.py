"""A run as its commands see it: which run a command is about, the latest record of it, who is held down.

The run record (tag, base, profile, agents) is `swarm.run_record.RunRecord`; `swarm spawn` writes it, and
`swarm stop AGENT` / `swarm resume` write it again with agents' `stopped` flags changed: the latest one is
the run's desired state, which the coordinator reconciles the tmux windows against.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from typing import Any

from swarm.board import RUN, Board
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


def latest_run(records: list[dict[str, Any]], tag: str | None = None) -> RunRecord | None:
    """The latest run record (of `tag`, when given) among board records."""
    for record in reversed(records):
        if record.get("type") == RUN and (tag is None or record.get("tag") == tag):
            return RunRecord.from_record(record)
    return None


class RunFollower:
    """The latest run record of a tag, following the board incrementally (cheap to ask every tick)."""

    def __init__(self, board: Board, tag: str):
        self.tag = tag
        self.reader = board.reader()
        self.run: RunRecord | None = None

    def refresh(self) -> RunRecord | None:
        self.run = latest_run(self.reader.read_new(), self.tag) or self.run
        return self.run


def open_run(board: Board, tag: str | None, records: list[dict[str, Any]] | None = None) -> RunRecord:
    """The run a command is about: `tag`, else $SWARM_TAG, else the latest run on the board (`records`:
    the board's records, when the caller has read them already)."""
    board.require()
    if records is None:
        records = board.records()
    latest = latest_run(records)
    tag = tag or os.environ.get("SWARM_TAG") or (latest.tag if latest else None)
    if not tag:
        raise SwarmError(f"no run on the board {board.directory} (start one with `swarm spawn`)")
    run = latest_run(records, validate_tag(tag))
    if run is None:
        raise SwarmError(f"no run {tag!r} on the board {board.directory}")
    return run


def set_stopped(board: Board, tag: str, agents: set[str] | None, stopped: bool) -> RunRecord:
    """Write the run record again with these agents' (None: all) `stopped` flag set; read and append under
    the board lock, so two `swarm stop AGENT` at once cannot undo each other."""
    with board.locked() as writer:
        run = latest_run(board.records(), tag)
        if run is None:
            raise SwarmError(f"no run {tag!r} on the board {board.directory}")
        names = {a.name for a in run.agents} if agents is None else agents
        changed = replace(
            run, agents=tuple(replace(a, stopped=stopped) if a.name in names else a for a in run.agents)
        )
        if changed != run:
            writer.append(changed.to_record())
        return changed
