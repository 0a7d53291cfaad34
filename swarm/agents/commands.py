"""Handlers of the commands agents type in their worktree: run, submit, wait, verify, note, adopt.

Each takes the argparse namespace and returns an exit code; user mistakes raise SwarmError. Displaying
commands print JSON with the board's field names under --json.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from swarm.agents.adopt import adopt
from swarm.agents.protocol import AgentContext, agent_context, deliver, submit, wait_for
from swarm.agents.waves import grid_commits, parse_grid, resolve_commits, submit_commits
from swarm.board.experiments import FINAL_STATUSES, PROMISING, group_of
from swarm.board.opening import open_board
from swarm.board.reruns import schedule_verify
from swarm.board.run_record import latest_run
from swarm.board.slots import CLUSTER_RUNNER
from swarm.board.store import NOTE, Board, new_id
from swarm.errors import SwarmError
from swarm.repo.paths import caller_identity, run_paths
from swarm.results.display import (
    experiment_line,
    format_number,
    print_json,
    result_block,
)
from swarm.results.queues import queue_json, render_queues
from swarm.runner.service import runner_flags, runner_pid


def _warn_without_runner(ctx: AgentContext) -> None:
    runners = ctx.run.runners_of(ctx.queue)
    if all(runner_pid(ctx.board.directory, r) is None for r in runners):
        kinds = ["--ray ADDRESS" if r == CLUSTER_RUNNER else " ".join(runner_flags(r)) for r in runners]
        print(
            f"swarm: note: no runner serves {ctx.queue} yet; the job waits for `swarm runner {kinds[0] if kinds else '--gpu K'}`",
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
    commits = getattr(args, "commits", None) or []
    if len(commits) <= 1 and (not commits or commits[0] == "HEAD"):
        records = [submit(ctx, args.message, rerun=args.rerun)]
    else:  # a wave: several commits of this worktree in one call
        records = submit_commits(
            ctx, resolve_commits(ctx.identity.worktree, commits), args.message, args.rerun
        )
    _print_wave(ctx, records, args.json)
    return 0


def cmd_grid(args) -> int:
    """`swarm grid KNOB=a,b KNOB2=x,y`: one commit per combination from HEAD, all submitted (a wave)."""
    ctx = agent_context()
    grid = parse_grid(args.knobs)
    commits = grid_commits(ctx.identity.worktree, ctx.run.profile, grid)
    records = submit_commits(ctx, commits, args.message or "grid", args.rerun)
    _print_wave(ctx, records, args.json)
    return 0


def _print_wave(ctx: AgentContext, records: list[dict[str, Any]], as_json: bool) -> None:
    if any(r["status"] not in FINAL_STATUSES for r in records):
        _warn_without_runner(ctx)
    if as_json:
        print_json(records[0] if len(records) == 1 else records)
    else:
        for record in records:
            print(record["id"])


def cmd_queue(args) -> int:
    """`swarm queue`: the run's class queues (slots, idle, depth, whose jobs) and each slot's busy share."""
    _, _, state = open_board()
    run = state.find_run(None)
    if args.json:
        print_json(queue_json(state, run))
    else:
        print("\n".join(render_queues(state, run)))
    return 0


def cmd_run(args) -> int:
    ctx = agent_context()
    record = submit(ctx, args.message, rerun=args.rerun)
    if record["status"] not in FINAL_STATUSES:
        _warn_without_runner(ctx)
        if not args.json:
            print(f"submitted {record['id']}; waiting for runner {ctx.queue}", file=sys.stderr, flush=True)
        record = wait_for(ctx.state, record["id"], timeout_s=args.timeout)
    _show_result(record, ctx.board.directory, args.json)
    return 0


def cmd_wait(args) -> int:
    """`swarm wait ID [ID ...]`: every result of a wave (one timeout for the whole wave)."""
    _, board, state = open_board()
    ids = [state.experiment(prefix)["id"] for prefix in args.id]
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    records = []
    for eid in ids:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        records.append(wait_for(state, eid, timeout_s=left, verdict=args.verdict))
    if len(records) == 1:
        _show_result(records[0], board.directory, args.json)
    elif args.json:
        print_json(records)
    else:
        for record in records:
            print(experiment_line(record))
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
            raise SwarmError(f"no swarm on the board {board.directory} yet: start one with `swarm spawn`")
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
