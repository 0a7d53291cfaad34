"""Handlers of the board commands: run, submit, wait, best, board, adopt, note, verify, export.

Each takes the argparse namespace and returns an exit code; user mistakes raise SwarmError. Displaying
commands print JSON with the board's field names under --json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from swarm.adopt import adopt
from swarm.board import NOTE, Board, new_id
from swarm.display import (
    best_line,
    escape_text,
    experiment_line,
    format_number,
    group_header,
    note_line,
    result_block,
    top_table,
)
from swarm.errors import SwarmError
from swarm.export import results_tsv
from swarm.jobs import agent_context, open_board, submit, wait_for
from swarm.paths import caller_identity, run_paths
from swarm.records import FINAL_STATUSES
from swarm.runner import runner_pid
from swarm.state import group_of
from swarm.verify import schedule_verify


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _warn_without_runner(board_dir: Path, slot: str) -> None:
    if runner_pid(board_dir, slot) is None:
        kind = f"--cpu {slot[3:]}" if slot.startswith("cpu") else f"--gpu {slot}"
        print(
            f"swarm: note: no runner serves slot {slot} yet; the job waits for `swarm runner {kind}`",
            file=sys.stderr,
        )


def _print_id(record: dict[str, Any], as_json: bool) -> None:
    """A new record's id, or the whole record under --json."""
    if as_json:
        _print_json(record)
    else:
        print(record["id"])


def _show_result(record: dict[str, Any], board_dir: Path, as_json: bool) -> None:
    if as_json:
        _print_json(record)
    else:
        print(result_block(record, board_dir))


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
    record = wait_for(state, eid, timeout_s=args.timeout)
    _show_result(record, board.directory, args.json)
    return 0


def cmd_verify(args) -> int:
    _, board, state = open_board()
    requested_by = _author()
    reruns = schedule_verify(board, state, args.id, args.repeats, requested_by)
    original = reruns[0]["verify_of"]
    if args.wait:
        for rerun in reruns:
            wait_for(state, rerun["id"], timeout_s=args.timeout)
        state.refresh()
        first = state.experiments[original]
        outcome = state.verifications.get((group_of(first), first.get("train_sha256")))
        if args.json:
            _print_json({"reruns": [state.experiments[r["id"]] for r in reruns], "verification": outcome})
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
        _print_json(reruns)
    else:
        for rerun in reruns:
            print(f"{rerun['id']} queued on slot {rerun['gpu']} (verifies {original})")
    return 0


def _author() -> str:
    """Who is writing: the calling agent, or `human` outside an agent's worktree."""
    try:
        return caller_identity().agent
    except SwarmError:
        return "human"


# ---------------------------------------------------------------------------------------------------------
# Queries


def cmd_best(args) -> int:
    _, _, state = open_board()
    bests = state.bests()
    if args.json:
        _print_json([b.as_json() for b in bests.values()])
        return 0
    if not bests:
        print("no results yet")
    for best in bests.values():
        print(best_line(best))
    return 0


def cmd_board(args) -> int:
    _, board, state = open_board()
    top = args.top
    groups = []
    for key in state.groups:
        rows = state.top(key, top if not args.agent else len(state.groups[key].contents))
        if args.agent:
            rows = [b for b in rows if _content_has_agent(state, b, args.agent)][:top]
        groups.append((key, rows))
    notes = [n for n in state.notes if not args.agent or n.get("agent") == args.agent][-10:]
    recent = state.experiments_of(args.agent)[-top:] if args.agent else []
    running = state.running_slots()
    queued = state.queued_counts()
    if args.json:
        _print_json(
            {
                "groups": [
                    {
                        "device": key[0],
                        "profile": key[1],
                        "band": state.band(key),
                        "sigma": state.groups[key].pooled_sigma,
                        "repeats": state.groups[key].repeats,
                        "top": [b.as_json() for b in rows],
                    }
                    for key, rows in groups
                ],
                "experiments": recent,
                "running": running,
                "queued": queued,
                "notes": notes,
            }
        )
        return 0
    if not groups:
        print("no results yet")
    for key, rows in groups:
        print(group_header(state, key))
        print("\n".join(top_table(rows)))
    if args.agent:
        print(f"latest experiments of {escape_text(args.agent)}:")
        print("\n".join(experiment_line(e) for e in recent) or "  none")
    if running or queued:
        print("runners:")
        for slot in sorted(set(running) | set(queued)):
            now = running.get(slot)
            doing = f"running {now['id']} ({escape_text(now.get('agent'))})" if now else "idle"
            print(f"  slot {slot}: {doing}, {queued.get(slot, 0)} queued")
    if notes:
        print("notes:")
        print("\n".join(note_line(n) for n in notes))
    return 0


def _content_has_agent(state, best, agent: str) -> bool:
    content = state.content(best.group, best.train_sha256)
    return any(state.experiments[eid].get("agent") == agent for eid in content.ids)


def cmd_note(args) -> int:
    board = Board(run_paths().board).require()  # an append: no need to read the board first
    text = " ".join(args.text)
    if not text.strip():
        raise SwarmError("empty note")
    author = _author()
    record = board.append({"type": NOTE, "id": new_id(), "agent": author, "text": text})
    _print_id(record, args.json)
    return 0


def cmd_adopt(args) -> int:
    ctx = agent_context()
    record = adopt(ctx, args.target)
    if args.json:
        _print_json(record)
        return 0
    print(f"{ctx.agent.name} is now at {record['commit'][:10]} (experiment {record['id']})")
    if record.get("saved_ref"):
        print(f"your previous HEAD {record['previous_head'][:10]} is kept as {record['saved_ref']}")
    return 0


def cmd_export(args) -> int:
    _, _, state = open_board()
    text = results_tsv(list(state.experiments.values()))
    if args.file == "-":
        sys.stdout.write(text)
    else:
        Path(args.file).write_text(text)
        print(f"wrote {len(text.splitlines()) - 1} results to {args.file}", file=sys.stderr)
    return 0
