"""Handlers of the commands agents type in their worktree: run, submit, wait, verify, note, adopt.

Each takes the argparse namespace and returns an exit code; user mistakes raise SwarmError. Displaying
commands print JSON with the board's field names under --json.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from swarm.agents.adopt import adopt
from swarm.agents.protocol import AgentContext, agent_context, deliver, submit, wait_for
from swarm.board.experiments import FINAL_STATUSES, PROMISING
from swarm.board.run_record import is_ray_pool, latest_run, runner_slot
from swarm.board.state import group_of, open_board
from swarm.board.store import NOTE, Board, new_id
from swarm.board.verification import schedule_verify
from swarm.errors import SwarmError
from swarm.repo.paths import caller_identity, run_paths
from swarm.results.display import (
    experiment_line,
    format_number,
    print_json,
    result_block,
)
from swarm.runner.service import runner_flags, runner_pid


def _warn_without_runner(board_dir: Path, slot: str) -> None:
    if runner_pid(board_dir, runner_slot(slot)) is None:
        kind = "--ray ADDRESS" if is_ray_pool(slot) else " ".join(runner_flags(slot))
        print(
            f"swarm: note: no runner serves slot {slot} yet; the job waits for `swarm runner {kind}`",
            file=sys.stderr,
        )


def _print_id(record: dict[str, Any], as_json: bool) -> None:
    """A new record's id, or the whole record under --json."""
    if as_json:
        print_json(record)
    else:
        print(record["id"])


def _show_result(record: dict[str, Any], board_dir: Path, as_json: bool) -> None:
    if as_json:
        print_json(record)
    else:
        print(result_block(record, board_dir))
        if record.get("status") == PROMISING:
            print(
                f"promising: not a keep yet. The swarm reruns it on other slots; build on it if you like, and "
                f"`swarm wait {record['id']} --verdict` tells keep / marginal / discard (the mean of its runs)."
            )


# ---------------------------------------------------------------------------------------------------------
# Jobs


def cmd_submit(args) -> int:
    ctx = agent_context()
    record = submit(ctx, args.message, rerun=args.rerun)
    if record["status"] not in FINAL_STATUSES:
        _warn_without_runner(ctx.board.directory, ctx.slot)
    _print_id(record, args.json)
    return 0


def cmd_run(args) -> int:
    ctx = agent_context()
    record = submit(ctx, args.message, rerun=args.rerun)
    if record["status"] not in FINAL_STATUSES:
        _warn_without_runner(ctx.board.directory, ctx.slot)
        if not args.json:
            print(f"submitted {record['id']}; waiting for runner {ctx.slot}", file=sys.stderr, flush=True)
        record = wait_for(ctx.state, record["id"], timeout_s=args.timeout)
    _show_result(record, ctx.board.directory, args.json)
    return 0


def cmd_wait(args) -> int:
    _, board, state = open_board()
    eid = state.experiment(args.id)["id"]
    record = wait_for(state, eid, timeout_s=args.timeout, verdict=args.verdict)
    _show_result(record, board.directory, args.json)
    return 0


def cmd_verify(args) -> int:
    _, board, state = open_board()
    ctx = _calling_agent()
    if ctx is None:
        reruns = schedule_verify(board, state, args.id, args.repeats, "human")
    else:
        reruns = deliver(ctx, {"op": "verify", "id": args.id, "repeats": args.repeats})
    original = reruns[0]["verify_of"]
    if args.wait:
        for rerun in reruns:
            wait_for(state, rerun["id"], timeout_s=args.timeout)
        state.refresh()
        first = state.experiments[original]
        outcome = state.verifications.get((group_of(first), first.get("train_sha256")))
        if args.json:
            print_json({"reruns": [state.experiments[r["id"]] for r in reruns], "verification": outcome})
        else:
            for rerun in reruns:
                print(experiment_line(state.experiments[rerun["id"]]))
            if outcome:
                held = "held: verified" if outcome["held"] else "did not hold"
                mean = format_number(outcome["mean"])
                print(
                    f"{original}: reruns mean {mean} vs {outcome['val_bpb']:.6f} (band {outcome['band']:.6f}): {held}"
                )
        return 0
    if args.json:
        print_json(reruns)
    else:
        for rerun in reruns:
            print(f"{rerun['id']} queued on slot {rerun['gpu']} (verifies {original})")
    return 0


def _calling_agent() -> AgentContext | None:
    """The calling agent, or None for the user (outside any agent's worktree)."""
    try:
        caller_identity()
    except SwarmError:
        return None
    return agent_context()


# ---------------------------------------------------------------------------------------------------------
# Queries


def cmd_note(args) -> int:
    text = " ".join(args.text)
    if not text.strip():
        raise SwarmError("empty note")
    ctx = _calling_agent()
    if ctx is None:
        board = Board(run_paths().board).require()
        if latest_run(board.records()) is None:  # a note is about a run: none yet, nobody would read it
            raise SwarmError(f"no run on the board {board.directory} yet: start one with `swarm spawn`")
        record = board.append({"type": NOTE, "id": new_id(), "agent": "human", "text": text})
    else:
        record = deliver(ctx, {"op": "note", "text": text})
    _print_id(record, args.json)
    return 0


def cmd_adopt(args) -> int:
    ctx = agent_context()
    record = adopt(ctx, args.target)
    if args.json:
        print_json(record)
        return 0
    print(f"{ctx.agent.name} is now at {record['commit'][:10]} (experiment {record['id']})")
    if record.get("saved_ref"):
        print(f"your previous HEAD {record['previous_head'][:10]} is kept as {record['saved_ref']}")
    return 0
