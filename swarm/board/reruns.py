"""Verification and confirmation: rerun a result on other slots of its device class, and judge the reruns.

One mechanism serves three askers (the rerun's `requested_by`):
- `swarm verify ID [--repeats K]` (an agent or the user) and the coordinator's verification of a new best
  (swarm.orchestration.best_verifier): K reruns spread over the other slots with the same device class
  (fewest pending jobs first), falling back to the experiment's own slot. When the last rerun finishes,
  the runner that recorded it writes a `verification` record: the result holds when the mean of the reruns
  is not worse than the original val_bpb by more than the group's noise band (its sigma from the other
  contents' repeats, so a rerun far off cannot widen its own tolerance). A content is verified in its
  group while its latest verification held.
- "confirmation": a `promising` result (swarm.board.noise) gets `confirm_runs` reruns at once, on other
  slots of its class that are free, else on its agent's own slot after the work queued there. Under
  `[noise] paired`, each rerun gets a control queued next to it on the same slot (before it for every
  other pair, so that a slot slowing down over the pair does not favour one side): a rerun of the
  agent's reference, marked `control`. The reruns are `promising` too until the last run lands; then the
  reruns are judged against their controls (or, without controls, the mean over all the result's runs
  against the reference), and the original and its reruns are recorded again with the verdict
  (keep / marginal / discard), with a verification record (held when kept). A control is a measurement of
  the reference like any rerun: it is decided at once and adds to that train.py's runs.
- "calibration": an agent's baseline on a class with fewer slots than `calibration_runs` is rerun until
  the class has that many runs of it, so that a keep is never decided on an unmeasured noise.
`after_result` is what a runner calls, under the board lock, once it has written a result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from swarm.board.experiments import (
    CALIBRATION,
    CONFIRMATION,
    KEEP,
    PENDING_STATUSES,
    PROMISING,
    evolve,
    group_of,
    has_result,
    is_control,
    is_measured,
    new_experiment,
)
from swarm.board.fold import BoardState
from swarm.board.slots import ray_queue
from swarm.board.store import VERIFICATION, Board, BoardWriter, now
from swarm.errors import SwarmError


def class_slots(state: BoardState, device: str | None) -> list[str]:
    """The run's slots of one device class."""
    run = state.run
    return [s for s in (run.slots() if run else []) if run.device_for_slot(s) == device]


def home_queue(record: dict[str, Any]) -> str:
    """The queue an experiment's reruns may wait in beside its class's other slots: its own slot, or for a
    job that ran on a Ray cluster's node (its `gpu` is then that node's slot) its class's queue."""
    return ray_queue(str(record.get("device"))) if record.get("node") else str(record.get("gpu"))


def rerun_queues(
    state: BoardState, original: dict[str, Any], repeats: int, free_only: bool = False
) -> list[str]:
    """Where the K reruns go: other slots of the same device class, least busy first, round robin.
    `free_only`: only other slots with nothing running or queued, the rest on the experiment's own slot
    (where they queue after its agent's work)."""
    own = home_queue(original)
    others = [s for s in class_slots(state, original.get("device")) if s != own] or [own]
    pending = state.queued_counts()
    busy = {s: pending.get(s, 0) + (1 if state.running(s) else 0) for s in others}
    ordered = sorted(others, key=lambda s: (busy[s], others.index(s)))
    if free_only:
        free = [s for s in ordered if busy[s] == 0 and s != own][:repeats]
        return free + [own] * (repeats - len(free))
    return [ordered[i % len(ordered)] for i in range(repeats)]


def schedule_verify(
    board: Board,
    state: BoardState,
    prefix: str,
    repeats: int,
    requested_by: str,
    admit: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict]:
    """Queue the reruns of an experiment; returns their records. `admit(original)`, called under the
    board lock, may refuse the request first (an agent's quota: swarm.board.charges)."""
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
        if admit is not None:
            admit(original)
        return queue_reruns(writer, state, original, rerun_queues(state, original, repeats), requested_by)


def queue_reruns(
    writer: BoardWriter, state: BoardState, original: dict[str, Any], slots: list[str], requested_by: str
) -> list[dict[str, Any]]:
    """Append a queued rerun of `original` for each slot (the caller holds the board lock)."""
    return [_queue(writer, state, original, original, slot, requested_by) for slot in slots]


def queue_paired_reruns(
    writer: BoardWriter,
    state: BoardState,
    original: dict[str, Any],
    reference: dict[str, Any],
    slots: list[str],
) -> list[dict[str, Any]]:
    """The confirmation of `original` under `[noise] paired`: for each slot a rerun of it and a control
    (a rerun of the agent's `reference` experiment) next to each other, the control first in every other
    pair; a slot runs a confirmation's runs back to back once one started (swarm.board.charges)."""
    queued = []
    for i, slot in enumerate(slots):
        pair = [(original, False), (reference, True)]
        for source, control in reversed(pair) if i % 2 else pair:
            queued.append(_queue(writer, state, source, original, slot, CONFIRMATION, control=control))
    return queued


def _queue(
    writer: BoardWriter,
    state: BoardState,
    source: dict[str, Any],
    original: dict[str, Any],
    slot: str,
    requested_by: str,
    control: bool = False,
) -> dict[str, Any]:
    """A queued run of `source`'s commit on `slot`, counted among the reruns of `original`."""
    rerun = new_experiment(
        **{k: source.get(k) for k in ("agent", "profile", "tag", "branch", "commit", "parent", "base")},
        description=source.get("description"),
        gpu=slot,
        device=state.run.device_for_slot(slot) if state.run else source.get("device"),
        train_sha256=source.get("train_sha256"),
        verify_of=original["id"],
        requested_by=requested_by,
        control=control or None,
    )
    if control:  # the reference's runs count for the agent whose confirmation asked for them
        rerun["agent"] = original.get("agent")
    written = writer.append(rerun)
    state.apply(written)
    return written


def verification_outcome(state: BoardState, original_id: str) -> dict[str, Any] | None:
    """The verification record for an experiment once none of its reruns is pending, else None."""
    everything = state.verify_reruns(original_id)
    if not everything or any(r.get("status") in PENDING_STATUSES for r in everything):
        return None
    original = state.experiments[original_id]
    key = group_of(original)
    band = state.band(key, exclude_sha256=original.get("train_sha256"))  # the reruns' spread is on trial
    reruns = [r for r in everything if not is_control(r)]
    measured = [r for r in reruns if is_measured(r) and group_of(r) == key]
    mean = sum(r["val_bpb"] for r in measured) / len(measured) if measured else None
    held = mean is not None and mean <= original["val_bpb"] + band
    controls = [r for r in everything if is_control(r) and is_measured(r) and group_of(r) == key]
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
        "controls": [r["id"] for r in controls],
        "control_mean": sum(r["val_bpb"] for r in controls) / len(controls) if controls else None,
        "finished_at": now(),
    }


# ---------------------------------------------------------------------------------------------------------
# After a result: confirmation, calibration, verdicts


def after_result(writer: BoardWriter, state: BoardState, record: dict[str, Any]) -> list[dict[str, Any]]:
    """The records a newly written result calls for (already appended and folded into `state`): the
    confirmation reruns of a promising result, the calibration reruns of a baseline, or, when it was the
    last pending rerun of an experiment, the verification (and a confirmation's verdict)."""
    written: list[dict[str, Any]] = []
    status = record.get("status")
    if status == PROMISING and not record.get("verify_of"):
        slots = rerun_queues(state, record, state.noise.confirm_runs, free_only=True)
        reference = state.experiments.get(record.get("reference") or "")
        if state.noise.paired and reference is not None and has_result(reference):
            written += queue_paired_reruns(writer, state, record, reference, slots)
        else:
            written += queue_reruns(writer, state, record, slots, CONFIRMATION)
    elif _needs_calibration(state, record):
        content = state.content(group_of(record), record["train_sha256"])
        pending = sum(  # other runs of the same train.py already on their way (another agent's baseline)
            1
            for slot in class_slots(state, record.get("device"))
            for job in [*state.queue(slot), state.running(slot)]
            if job and job.get("train_sha256") == record["train_sha256"]
        )
        missing = state.noise.calibration_runs - (content.n if content else 1) - pending
        if missing > 0:
            slots = rerun_queues(state, record, missing)
            written += queue_reruns(writer, state, record, slots, CALIBRATION)
    original_id = record.get("verify_of")
    if original_id:
        written += _settle(writer, state, original_id)
    return written


def _needs_calibration(state: BoardState, record: dict[str, Any]) -> bool:
    """A baseline (a keep without a reference: the agent's first measured result) on an uncalibrated class
    with fewer slots than the calibration needs, never rerun before, with no calibration under way."""
    return (
        state.noise.confirms
        and record.get("status") == KEEP
        and record.get("reference") is None
        and not record.get("verify_of")
        and not record.get("reused_from")
        and has_result(record)
        and not state.calibrated(group_of(record))
        and len(class_slots(state, record.get("device"))) < state.noise.calibration_runs
        and not state.verify_reruns(record["id"])
        and not _calibrating(state, record.get("device"))
    )


def _calibrating(state: BoardState, device: str | None) -> bool:
    """Calibration reruns are queued or running on the class already (another agent's first result
    asked for them): one calibration is enough."""
    return any(
        job and job.get("requested_by") == CALIBRATION
        for slot in class_slots(state, device)
        for job in [*state.queue(slot), state.running(slot)]
    )


def _settle(writer: BoardWriter, state: BoardState, original_id: str) -> list[dict[str, Any]]:
    outcome = verification_outcome(state, original_id)
    if outcome is None:
        return []
    written = []
    original = state.experiments[original_id]
    if original.get("status") == PROMISING:
        if outcome["controls"] and outcome["mean"] is not None:
            status, reason, band = state.decide_paired(original, outcome)
            reference = original.get("reference")
        else:  # unpaired, or every control (or every rerun) failed: all of the result's runs decide
            status, reason, reference, band = state.decide(original, final=True)
        verdict = evolve(original, status=status, reason=reason, reference=reference, band=band)
        written.append(writer.append(verdict))
        state.apply(written[-1])
        for rerun in state.verify_reruns(original_id):
            if rerun.get("status") == PROMISING and not is_control(rerun):
                note = f"confirmation of {original_id}: {reason}"
                written.append(writer.append(evolve(rerun, status=status, reason=note, band=band)))
                state.apply(written[-1])
        outcome["held"] = status == KEEP
        outcome["verdict"] = status
    written.append(writer.append(outcome))
    state.apply(written[-1])
    return written
