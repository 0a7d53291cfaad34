"""Which queued job a free slot takes next: the one scheduling decision of every runner (a box's GPU or CPU
worker, a Ray cluster's GPU), kept pure so that other parts can hook into it and tests can state it.

A job waits in one queue, named by its `gpu` field while it is queued:
  - its device class's queue ("box:NVIDIA H100 80GB HBM3" on one box, "ray:H100" on a cluster): any free
    slot of the class may take it -- an agent's experiments, which no longer belong to one GPU;
  - one slot ("3", "cpu0"): only that slot takes it -- reruns that must run where they are asked to, and
    a confirmation's pairs (a rerun and its paired control, queued back to back on one slot).

`pick` decides for one free slot: first the jobs pinned to the slot, oldest first (so a pair, queued
together, runs together: nothing of the class can come between its two halves); then calibration reruns
of the class; then fairly across agents: the agent with the fewest jobs running in the class goes first,
then the one served least recently (whose last job started earliest: round robin when slots free up one at
a time), then whose waiting job is oldest, and that agent's oldest job runs. So an agent with a deep queue
takes only its turn, and a one-job agent never waits behind another's wave.

The share a job counts against is `charged_to` when a record names it (a verify or rerun asked for by
another agent is charged to the asker), else its agent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

CALIBRATION = "calibration"  # swarm.board.experiments' requested_by of the noise calibration reruns


def share_of(job: dict[str, Any]) -> str:
    """Whose share of the class a job uses: the agent it is charged to, else its own agent."""
    return str(job.get("charged_to") or job.get("agent") or "")


def submitted(job: dict[str, Any]) -> float:
    return job.get("submitted_at") or job.get("ts") or 0.0


def pick(
    pinned: Iterable[dict[str, Any]],
    pooled: Iterable[dict[str, Any]],
    running: Iterable[dict[str, Any]],
    served: Mapping[str, float] | None = None,
) -> dict[str, Any] | None:
    """The job a free slot takes next, or None. `pinned`: the jobs queued for this slot only; `pooled`:
    the jobs queued for its class; `running`: the jobs running on the class's slots now; `served`: when
    each share last had a job start (absent: never)."""
    own = list(pinned)
    if own:
        return min(own, key=lambda j: (j.get("requested_by") != CALIBRATION, submitted(j)))
    waiting = list(pooled)
    if not waiting:
        return None
    calibration = [j for j in waiting if j.get("requested_by") == CALIBRATION]
    if calibration:
        return min(calibration, key=submitted)
    busy = Counter(share_of(j) for j in running)
    last = dict(served or {})
    for job in running:
        last[share_of(job)] = max(last.get(share_of(job), 0.0), job.get("started_at") or 0.0)
    heads: dict[str, dict[str, Any]] = {}
    for job in waiting:
        share = share_of(job)
        if share not in heads or submitted(job) < submitted(heads[share]):
            heads[share] = job
    return min(heads.values(), key=lambda j: (busy[share_of(j)], last.get(share_of(j), 0.0), submitted(j)))


def order(
    pooled: Iterable[dict[str, Any]],
    running: Iterable[dict[str, Any]],
    served: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """A class queue in the order `pick` hands it out, one free slot after another (what displays show as
    the queue; each handed-out job counts as running for the next pick)."""
    left = list(pooled)
    busy = list(running)
    ordered = []
    while left:
        job = pick((), left, busy, served)
        if job is None:
            break
        ordered.append(job)
        left = [j for j in left if j is not job]
        busy.append(job)
    return ordered
