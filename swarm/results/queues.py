"""The class queues as agents and the user see them: per queue, how many slots serve it, how many are idle,
how deep it is and whose jobs wait; per slot, how busy it was over the run.

    swarm queue [--json]        (also in `swarm status`, the watch and the report)

A slot's busy fraction is the time its jobs trained (started_at to finished_at, the running one up to now)
over the time since the run began: what the scheduler is for is keeping this near 1.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from swarm.board.fold import BoardState
from swarm.board.run_record import SwarmRecord
from swarm.board.scheduling import order
from swarm.board.slots import is_class_queue, ray_queue


@dataclass(frozen=True)
class QueueView:
    queue: str  # "box:cpu", "ray:H100", or a slot's own ("3") when jobs are pinned there
    device: str
    slots: int  # slots that serve it (0: none known yet, e.g. a cluster's before its nodes join)
    idle: int  # of those, with nothing running
    depth: int  # jobs waiting
    by_agent: dict[str, int]  # whose jobs wait, in the order the scheduler hands them out
    next: list[str]  # ids of the first jobs it hands out


@dataclass(frozen=True)
class SlotBusy:
    slot: str
    device: str
    busy_fraction: float
    running: str | None  # id of its running job


def queue_views(state: BoardState, run: SwarmRecord) -> list[QueueView]:
    """Every queue of the run that slots serve or jobs wait in."""
    running = state.running_slots()
    classes: dict[str, tuple[str, list[str]]] = {}
    for agent in run.agents:
        if is_class_queue(agent.queue):
            classes.setdefault(agent.queue, (agent.device, []))
    for slot in run.slots():
        device = run.device_for_slot(slot)
        queue = run.class_queue(slot)
        if queue is not None:
            classes.setdefault(queue, (device, []))[1].append(slot)
    for queue in state.queued_counts():
        if queue not in classes:
            classes[queue] = (run.device_for_slot(queue), [] if is_class_queue(queue) else [queue])
    views = []
    for queue, (device, slots) in classes.items():
        if queue.startswith(ray_queue("")):  # a cluster's GPUs: the ones running a job of the class
            busy_here = [j for j in running.values() if j.get("node") and j.get("device") == device]
            slots_n, idle = len(busy_here), 0
        else:
            busy_here = [running[s] for s in slots if s in running]
            slots_n, idle = len(slots), len(slots) - len(busy_here)
        waiting = order(state.queue(queue), busy_here)
        views.append(
            QueueView(
                queue=queue,
                device=device,
                slots=slots_n,
                idle=idle,
                depth=len(waiting),
                by_agent=dict(Counter(str(j.get("agent")) for j in waiting)),
                next=[j["id"] for j in waiting[:5]],
            )
        )
    return sorted(views, key=lambda v: (not is_class_queue(v.queue), v.queue))


def busy_fractions(state: BoardState, run: SwarmRecord, now: float | None = None) -> list[SlotBusy]:
    """Each slot's share of the time since the run began that it spent running jobs."""
    now = time.time() if now is None else now
    start = run.created_at or now
    span = max(now - start, 1e-9)
    trained: dict[str, float] = {}
    for record in state.experiments.values():
        began = record.get("started_at")
        if not began or record.get("reused_from") or is_class_queue(str(record.get("gpu"))):
            continue
        ended = record.get("finished_at") or (now if record.get("status") == "running" else None)
        if ended is None:
            continue
        slot = str(record.get("gpu"))
        trained[slot] = trained.get(slot, 0.0) + max(0.0, min(ended, now) - max(began, start))
    running = state.running_slots()
    slots = list(dict.fromkeys([*run.slots(), *(s for s in trained if not run.cluster or "/" in s)]))
    return [
        SlotBusy(
            slot=slot,
            device=run.device_for_slot(slot),
            busy_fraction=round(min(1.0, trained.get(slot, 0.0) / span), 4),
            running=running[slot]["id"] if slot in running else None,
        )
        for slot in slots
    ]


def queue_json(state: BoardState, run: SwarmRecord) -> dict[str, Any]:
    return {
        "queues": [asdict(v) for v in queue_views(state, run)],
        "slots": [asdict(s) for s in busy_fractions(state, run)],
    }


def render_queues(state: BoardState, run: SwarmRecord, busy: bool = True) -> list[str]:
    """Lines for `swarm queue` and `swarm status`: one per queue, then (`busy`) the slots' busy fractions
    (which read every experiment: the watch, refreshing every second, leaves them out)."""
    lines = []
    for v in queue_views(state, run):
        whose = ", ".join(f"{agent} {n}" for agent, n in v.by_agent.items()) or "-"
        serves = f"{v.slots} slot(s), {v.idle} idle" if is_class_queue(v.queue) else "pinned to this slot"
        lines.append(f"queue {v.queue}: {serves}, {v.depth} waiting ({whose})")
    slots = busy_fractions(state, run) if busy else []
    if slots:
        shown = "  ".join(f"{s.slot} {100 * s.busy_fraction:.0f}%" for s in slots)
        lines.append(f"busy since the run began: {shown}")
    return lines
