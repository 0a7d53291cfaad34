"""Transfer checks: does a gain found at the profile's budget hold at K times the budget?

A 5-minute budget rewards what learns fastest, not what ends best. `swarm transfer ID --budget-x K` queues,
back to back on the experiment's own slot (paired: one machine, one stretch of time, like a confirmation's
control and rerun), the run's base train.py and the experiment's (with `--lineage`, every step of the
lineage that led to it) trained for K x the budget. The runner sets that budget (RunPlan.budget_x: the
clock's limit, and AUTORESEARCH_BUDGET_X for prepare.py's TIME_BUDGET), never train.py.

A transfer run ends with status `transfer`: a number next to the 1 x one, never compared, kept, confirmed
or pooled with the profile's runs (it is no measurement of the profile), so it changes no decision. Its
time counts for the experiment's agent in the ledger, as its confirmation reruns do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from swarm.board.experiments import FINAL_STATUSES, TRANSFER, has_result, new_experiment, new_id
from swarm.board.fold import BoardState
from swarm.board.reruns import home_queue
from swarm.board.store import Board
from swarm.errors import SwarmError

BASE = "base"  # transfer_of of the baseline run of a transfer batch
MAX_BUDGET_X = 20.0
REQUESTED_BY = "transfer"


def check_budget_x(value: float) -> float:
    if not math.isfinite(value) or not 1.0 < value <= MAX_BUDGET_X:
        raise SwarmError(f"--budget-x must be over 1 and at most {MAX_BUDGET_X:g} (got {value:g})")
    return float(value)


def schedule_transfer(
    board: Board, state: BoardState, prefix: str, budget_x: float, steps: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Queue the base's train.py and the experiment's (or each of `steps`, the experiment's lineage, oldest
    first) at budget_x times the budget, on the experiment's slot, back to back; returns the queued jobs."""
    budget_x = check_budget_x(budget_x)
    with board.locked() as writer:
        state.refresh()
        original = state.experiment(prefix)
        if not has_result(original) or original.get("budget_x"):
            raise SwarmError(
                f"experiment {original['id']} has no result at the profile's budget (status {original.get('status')})"
            )
        run = state.run
        base = original.get("base") or (run.base if run else None)
        if not base:
            raise SwarmError(f"experiment {original['id']} names no base commit to compare with")
        slot = home_queue(original)
        batch = new_id()
        sources = [{**original, "commit": base, "parent": None, "train_sha256": None, "id": BASE}]
        sources += [s for s in (steps or [original]) if s.get("commit") != base]
        queued = []
        for source in sources:
            job = new_experiment(
                **{k: original.get(k) for k in ("agent", "profile", "tag", "branch", "base", "device")},
                commit=source["commit"],
                parent=source.get("parent"),
                train_sha256=source.get("train_sha256"),
                description=f"transfer check at {budget_x:g}x budget: {source.get('description') or 'the base'}"[
                    :500
                ],
                gpu=slot,
                budget_x=budget_x,
                transfer_of=source["id"],
                transfer_batch=batch,
                requested_by=REQUESTED_BY,
            )
            written = writer.append(job)
            state.apply(written)
            queued.append(written)
        return queued


@dataclass(frozen=True)
class TransferStep:
    experiment: str  # the experiment whose train.py ran (BASE for the baseline)
    value: float | None  # val_bpb at budget_x times the budget (None: it failed or is not done)
    status: str | None


@dataclass(frozen=True)
class TransferBatch:
    batch: str
    budget_x: float
    slot: str | None
    steps: tuple[TransferStep, ...]  # the base first, then as queued

    def value_of(self, experiment: str) -> float | None:
        return next((s.value for s in self.steps if s.experiment == experiment), None)

    @property
    def done(self) -> bool:
        return all(s.status in FINAL_STATUSES for s in self.steps)


def transfer_batches(state: BoardState) -> list[TransferBatch]:
    """Every transfer batch on the board, in the order it was queued."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in state.experiments.values():
        if record.get("transfer_batch"):
            grouped.setdefault(record["transfer_batch"], []).append(record)
    batches = []
    for batch, records in grouped.items():
        records.sort(key=lambda r: (r.get("transfer_of") != BASE, r.get("submitted_at") or 0.0))
        steps = tuple(
            TransferStep(
                r.get("transfer_of"),
                float(r["val_bpb"]) if r.get("status") == TRANSFER and _finite(r.get("val_bpb")) else None,
                r.get("status"),
            )
            for r in records
        )
        batches.append(
            TransferBatch(batch, float(records[0].get("budget_x") or 1.0), records[0].get("gpu"), steps)
        )
    return batches


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
