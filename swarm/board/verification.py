"""Verification: rerun a result on other slots of the same device class and mark it verified when it holds.

`swarm verify ID [--repeats K]` queues K reruns of the experiment's commit, spread over the other slots
with the same device class (fewest pending jobs first), falling back to the experiment's own slot. When
the last rerun finishes, the runner that recorded it writes a `verification` record: the result holds
when the mean of the reruns is not worse than the original val_bpb by more than the group's noise band
(its sigma from the other contents' repeats, so a rerun far off cannot widen its own tolerance).
A content is verified in its group while its latest verification held.
"""

from __future__ import annotations

from typing import Any

from swarm.board.store import VERIFICATION, Board, now
from swarm.errors import SwarmError
from swarm.board.experiments import PENDING_STATUSES, has_result, is_measured, new_experiment
from swarm.board.state import BoardState, group_of


def rerun_slots(state: BoardState, original: dict[str, Any], repeats: int) -> list[str]:
    """Where the K reruns go: other slots of the same device class, least busy first, round robin."""
    run = state.run
    own = str(original.get("gpu"))
    same_class = [s for s in (run.slots() if run else []) if run.device_for_slot(s) == original.get("device")]
    others = [s for s in same_class if s != own] or [own]
    pending = state.queued_counts()
    busy = {s: pending.get(s, 0) + (1 if state.running(s) else 0) for s in others}
    ordered = sorted(others, key=lambda s: (busy[s], others.index(s)))
    return [ordered[i % len(ordered)] for i in range(repeats)]


def schedule_verify(
    board: Board, state: BoardState, prefix: str, repeats: int, requested_by: str
) -> list[dict]:
    """Queue the reruns of an experiment; returns their records."""
    if repeats < 1:
        raise SwarmError("--repeats must be at least 1")
    with board.locked() as writer:
        state.refresh()
        original = state.experiment(prefix)
        if not has_result(original):
            raise SwarmError(
                f"experiment {original['id']} has no result to verify (status {original.get('status')})"
            )
        if original.get("verify_of"):
            raise SwarmError(f"experiment {original['id']} is itself a rerun of {original['verify_of']}")
        queued = []
        for slot in rerun_slots(state, original, repeats):
            rerun = new_experiment(
                **{
                    k: original.get(k)
                    for k in ("agent", "profile", "tag", "branch", "commit", "parent", "base")
                },
                description=original.get("description"),
                gpu=slot,
                device=state.run.device_for_slot(slot) if state.run else original.get("device"),
                train_sha256=original.get("train_sha256"),
                verify_of=original["id"],
                requested_by=requested_by,
            )
            queued.append(writer.append(rerun))
    return queued


def verification_outcome(state: BoardState, original_id: str) -> dict[str, Any] | None:
    """The verification record for an experiment once none of its reruns is pending, else None."""
    reruns = state.verify_reruns(original_id)
    if not reruns or any(r.get("status") in PENDING_STATUSES for r in reruns):
        return None
    original = state.experiments[original_id]
    key = group_of(original)
    band = state.band(key, exclude_sha256=original.get("train_sha256"))  # the reruns' spread is on trial
    measured = [r for r in reruns if is_measured(r) and group_of(r) == key]
    mean = sum(r["val_bpb"] for r in measured) / len(measured) if measured else None
    held = mean is not None and mean <= original["val_bpb"] + band
    return {
        "type": VERIFICATION,
        "id": original_id,
        "device": key[0],
        "profile": key[1],
        "train_sha256": original.get("train_sha256"),
        "held": held,
        "mean": mean,
        "val_bpb": original["val_bpb"],
        "band": band,
        "reruns": [r["id"] for r in reruns],
        "slots": sorted({str(r.get("gpu")) for r in measured}),
        "finished_at": now(),
    }
