"""`swarm transfer ID [--budget-x K] [--lineage]`, and the report's part on transfer checks.

The command queues a transfer check (swarm.board.transfer): the run's base train.py and the experiment's
(with --lineage: each step of the lineage that led to it) trained for K x the profile's budget, back to
back on the experiment's slot. The report then shows, next to each step's change in val_bpb at the
profile's budget, its change at K x, and whether the step kept its gain there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from swarm.board.experiments import group_of
from swarm.board.fold import BoardState
from swarm.board.transfer import BASE, TransferBatch, schedule_transfer, transfer_batches
from swarm.results.holdout import baseline_content, baseline_sha
from swarm.results.lineage import lineage

HOUR = 3600.0


def cmd_transfer(args) -> int:
    from swarm.board.opening import open_board

    repo, board, state = open_board()
    steps = None
    if args.lineage:
        original = state.experiment(args.id)
        steps = [step.record for step in lineage(state, original, repo)]
    queued = schedule_transfer(board, state, args.id, args.budget_x, steps)
    if args.json:
        sys.stdout.write(json.dumps(queued, indent=2) + "\n")
        return 0
    print(
        f"queued a transfer check at {args.budget_x:g}x the budget on slot {queued[0]['gpu']} "
        f"(batch {queued[0]['transfer_batch']}): {len(queued)} runs back to back"
    )
    for job in queued:
        print(f"  {job['id']}  {job['transfer_of']}  {str(job.get('commit'))[:10]}")
    print("`swarm report` shows the gains at both budgets once they have run")
    return 0


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4f}" if signed else f"{value:.6f}"


def transfer_section(state: BoardState, repo: Path | None) -> str:
    """The report's part: for each transfer batch, each step's val_bpb and change from the step before, at
    the profile's budget (its train.py's mean) and at K x (this batch's paired runs), and whether it kept
    its gain. Empty when no transfer check was asked for."""
    batches = transfer_batches(state)
    if not batches:
        return ""
    lines = [
        "## Transfer checks: do the gains hold at a longer budget?\n",
        "Each check trains the base's train.py and each step's, one after another on one slot, for K x the "
        "profile's budget (set by the runner). Δ is the change from the step before (negative is better).\n",
    ]
    for batch in batches:
        lines += _batch_lines(state, repo, batch)
    seconds = sum(
        float(e.get("finished_at") or 0) - float(e.get("started_at") or 0)
        for e in state.experiments.values()
        if e.get("transfer_batch") and e.get("started_at") and e.get("finished_at")
    )
    lines.append(
        f"Transfer checks used {seconds / HOUR:.2f} GPU-hours (counted for their agents in the ledger).\n"
    )
    return "\n".join(lines)


def _batch_lines(state: BoardState, repo: Path | None, batch: TransferBatch) -> list[str]:
    records = [e for e in state.experiments.values() if e.get("transfer_batch") == batch.batch]
    key = group_of(records[0]) if records else ("unknown", "unknown")
    k = f"{batch.budget_x:g}x"
    lines = [
        f"### Batch {batch.batch} on slot {batch.slot} ({key[0]} / {key[1]}) at {k} the budget\n",
        f"| step | val_bpb 1x | Δ 1x | val_bpb {k} | Δ {k} | kept its gain at {k} |",
        "|---|---|---|---|---|---|",
    ]
    base = baseline_content(state, key, baseline_sha(repo, state))
    previous_1x = base.mean if base is not None else None
    previous_k = batch.value_of(BASE)
    lines.append(f"| base | {_fmt(previous_1x)} | | {_fmt(previous_k)} | | |")
    for step in batch.steps:
        if step.experiment == BASE:
            continue
        record = state.experiments.get(step.experiment) or {}
        content = state.content(key, record.get("train_sha256") or "")
        now_1x = content.mean if content is not None else None
        delta_1x = now_1x - previous_1x if now_1x is not None and previous_1x is not None else None
        delta_k = step.value - previous_k if step.value is not None and previous_k is not None else None
        if delta_k is None:
            kept = "not measured" if step.status not in (None, "queued", "running") else "pending"
        elif delta_1x is not None and delta_1x >= 0:
            kept = "no gain at 1x"
        else:
            kept = "yes" if delta_k < 0 else "**no**"
        lines.append(
            f"| {step.experiment} | {_fmt(now_1x)} | {_fmt(delta_1x, True)} | {_fmt(step.value)} | "
            f"{_fmt(delta_k, True)} | {kept} |"
        )
        previous_1x, previous_k = now_1x, step.value if step.value is not None else previous_k
    lines.append("")
    return lines
