"""Which queued job a free slot takes next: the one scheduling decision of every runner (a box's GPU or CPU
worker, a Ray cluster's GPU), kept pure so that other parts can hook into it and tests can state it.

A queued job's `gpu` field names its queue: its device class's ("box:NVIDIA H100 80GB HBM3", "ray:H100"),
which any free slot of the class serves, or one slot ("3", "cpu0"), for reruns that must run there and a
confirmation's pairs. `pick` takes first the jobs pinned to the slot, oldest first (a pair runs together);
then calibration reruns; then fairly across payers (swarm.board.charges): fewest jobs running in the class,
then served least recently, then oldest job waiting. So an agent with a deep queue takes only its turn, and
a one-job agent never waits behind another's wave. Words: docs/glossary.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

CALIBRATION = "calibration"  # swarm.board.experiments' requested_by of the noise calibration reruns


def share_of(job: dict[str, Any]) -> str:
    """Whose share of the class a job uses when the run's agents are not known: its own agent."""
    return str(job.get("agent") or "")


def is_asked(job: dict[str, Any], share: Callable[[dict[str, Any]], str]) -> bool:
    """Whether a pinned job is a rerun an agent asked for (charged to someone other than its own agent, or
    asked by its own agent), which waits for its payer's turn."""
    asker = job.get("requested_by")
    return asker is not None and asker == share(job)


def submitted(job: dict[str, Any]) -> float:
    return job.get("submitted_at") or job.get("ts") or 0.0


def pick(
    pinned: Iterable[dict[str, Any]],
    pooled: Iterable[dict[str, Any]],
    running: Iterable[dict[str, Any]],
    served: Mapping[str, float] | None = None,
    share: Callable[[dict[str, Any]], str] = share_of,
) -> dict[str, Any] | None:
    """The job a free slot takes next, or None. `pinned`: the jobs queued for this slot only, in the slot's
    order (BoardState.queue: calibration first, a confirmation's runs together, payers in turn); `pooled`:
    the jobs queued for its class; `running`: the jobs running on the class's slots now; `served`: when
    each share last had a job start (absent: never); `share`: a job's payer."""
    own = list(pinned)
    waiting = list(pooled)
    if own:
        head = own[0]
        if not waiting or not is_asked(head, share):
            return head
        waiting.append(head)  # an agent's rerun competes for its payer's turn
    if not waiting:
        return None
    calibration = [j for j in waiting if j.get("requested_by") == CALIBRATION]
    if calibration:
        return min(calibration, key=submitted)
    busy = Counter(share(j) for j in running)
    last = dict(served or {})
    for job in running:
        last[share(job)] = max(last.get(share(job), 0.0), job.get("started_at") or 0.0)
    heads: dict[str, dict[str, Any]] = {}
    for job in waiting:
        payer = share(job)
        if payer not in heads or submitted(job) < submitted(heads[payer]):
            heads[payer] = job
    return min(heads.values(), key=lambda j: (busy[share(j)], last.get(share(j), 0.0), submitted(j)))


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
