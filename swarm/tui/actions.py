"""What the TUI's keys do to the world, as plain functions: each returns the line to notify, or raises
SwarmError with the reason. The app asks for confirmation first and runs these on a worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text

from swarm.results.display import escape_text
from swarm.results.pick import default_target, pick
from swarm.tui.cells import agent_text, value
from swarm.tui.control import RunControl
from swarm.tui.model import WatchModel


def describe(record: dict[str, Any]) -> Text:
    return Text.assemble(
        (record["id"], "bold"),
        " by ",
        agent_text(record.get("agent"), 16, "bold"),
        f", val_bpb {value(record.get('val_bpb'))} ({record.get('status')}): ",
        agent_text(record.get("description"), 60, "italic"),
    )


def pick_question(repo: Path, record: dict[str, Any], onto: str | None) -> Text:
    branch = onto or default_target(repo)
    return Text.assemble(
        "Pick experiment ",
        describe(record),
        "\n\nIts train.py becomes one new commit on ",
        agent_text(branch, 40, "bold"),
        " (the worktree that has it checked out must be clean).",
    )


def do_pick(repo: Path, record: dict[str, Any], onto: str | None, content: Any = None) -> str:
    result = pick(repo, record, onto=onto, content=content)
    return f"picked {escape_text(record['id'])} onto {result.branch}: {result.previous[:10]} -> {result.commit[:10]}"


def verify_question(record: dict[str, Any]) -> Text:
    return Text.assemble(
        "Verify experiment ",
        describe(record),
        "\n\nQueues one rerun of its commit, on another GPU of the same device class when there is one.",
    )


def do_verify(model: WatchModel, record: dict[str, Any]) -> str:
    queued = model.verify(record["id"])
    slots = ", ".join(str(r.get("gpu")) for r in queued)
    return f"queued {len(queued)} verification rerun(s) of {escape_text(record['id'])} on slot {slots}"


def agent_question(verb: str, agent: str) -> Text:
    consequence = {
        "stop": "Its process ends and the coordinator leaves it down; worktree, branch and queued jobs stay.",
        "restart": "Its process ends and the coordinator starts it again with a resume prompt.",
    }[verb]
    return Text.assemble(f"{verb.capitalize()} agent ", agent_text(agent, 32, "bold"), "?\n\n", consequence)


def do_agent(control: RunControl, verb: str, agent: str) -> str:
    return control.stop(agent) if verb == "stop" else control.restart(agent)
