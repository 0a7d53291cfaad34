"""The task prompts an LLM agent starts with: the first one, and the resume prompt after a restart.

Both are short and point at program.md, which holds the protocol. Board text written by agents
(descriptions) is quoted as JSON strings and cut short: it is data for the model, not instructions.
"""

from __future__ import annotations

import json
from typing import Any

from swarm.board.run_record import AgentEntry, SwarmRecord
from swarm.board.slots import is_class_queue, is_cpu_slot
from swarm.results.display import mean_text

DESCRIPTION_CHARS = 100
LAST_RESULTS = 8


def where_it_trains(run: SwarmRecord, entry: AgentEntry) -> str:
    """Where an agent's commits train, said so that it can plan: its own slot (a run from before), or its
    device class's slots, shared by the class's agents (how many of each), with where to see the queue."""
    if not is_class_queue(entry.queue):
        device = "a CPU worker" if is_cpu_slot(entry.queue) else f"GPU {entry.queue} ({entry.device})"
        return f"with {device} to yourself (the swarm's runner trains your commits there"
    slots = len(run.runners_of(entry.queue)) if not run.cluster else None
    sharing = sum(1 for a in run.agents if a.queue == entry.queue)
    kind = "CPU workers" if entry.device == "cpu" else f"{entry.device} GPUs"
    count = f"the {slots} {kind}" if slots is not None else f"the {kind} of the cluster"
    return (
        f"and {count} of the run shared by its {sharing} agent(s) of that class: any free one trains your next"
        " queued commit (`swarm queue` shows how many slots are idle and how deep the queue is; when slots"
        " would idle, submit a wave of several commits: program.md says how"
    )


def initial_prompt(run: SwarmRecord, entry: AgentEntry) -> str:
    return (
        f"You are {entry.name}, one of {len(run.agents)} agents of the autoresearch swarm {run.tag!r}. "
        f"You work in the git worktree {entry.worktree} on branch {entry.branch}, {where_it_trains(run, entry)}"
        "; never run train.py yourself). "
        "Read program.md in this directory now and follow it: edit train.py, commit, `swarm run -m DESC`, "
        "keep or reset by the status it reports, check `swarm best` and `swarm board` every few experiments, "
        "`swarm adopt` when another agent is ahead, `swarm note` what you learn (negative results too). "
        "Never edit prepare.py. NEVER STOP: keep experimenting until you are stopped."
    )


def resume_prompt(
    run: SwarmRecord, entry: AgentEntry, head: str, mine: list[dict[str, Any]], best: dict[str, Any] | None
) -> str:
    """`mine`: this agent's latest experiment states, oldest first; `best`: the global best, if any."""
    lines = [
        initial_prompt(run, entry),
        "",
        "You are being resumed: your previous session ended. Your worktree and branch are as you left "
        f"them (HEAD {head}); do not redo experiments already on the board.",
    ]
    if mine:
        lines += ["", f"Your last {min(len(mine), LAST_RESULTS)} experiments (of {len(mine)}):"]
        lines += [f"- {_describe(e)}" for e in mine[-LAST_RESULTS:]]
    else:
        lines += [
            "",
            "You have no experiments on the board yet: start with the baseline (train.py unchanged).",
        ]
    if any(e.get("status") == "promising" for e in mine[-LAST_RESULTS:]):
        lines += [
            "",
            "`promising` experiments are being confirmed by reruns on other slots: "
            "`swarm wait ID --verdict` gives their keep / marginal / discard.",
        ]
    if best:
        # the board's one best (swarm.board.fold), with n and sigma, as `swarm best` shows it
        value = mean_text(best["mean"], best.get("sigma"), best.get("n") or 1)
        text = json.dumps(str(best.get("description") or "")[:DESCRIPTION_CHARS], ensure_ascii=False)
        lines += [
            "",
            f"Global best: {best.get('id')} val_bpb {value} {text} by {best.get('agent')} "
            f"(commit {best.get('commit')}).",
        ]
    lines += ["", "Go on with the loop from program.md now."]
    return "\n".join(lines)


def _describe(experiment: dict[str, Any]) -> str:
    bpb = experiment.get("val_bpb")
    value = f"val_bpb {bpb:.6f}" if isinstance(bpb, int | float) else "no val_bpb"
    text = str(experiment.get("description") or "")[:DESCRIPTION_CHARS]
    return f"{experiment.get('id')} {experiment.get('status')} {value} {json.dumps(text, ensure_ascii=False)}"
