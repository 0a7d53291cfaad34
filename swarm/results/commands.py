"""Handlers of the read-only board commands: best, board, export.

Each takes the argparse namespace and returns an exit code; user mistakes raise SwarmError. Displaying
commands print JSON with the board's field names under --json.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from swarm.board.state import open_board
from swarm.results.display import (
    best_line,
    escape_text,
    experiment_line,
    group_header,
    note_line,
    print_json,
    top_table,
)
from swarm.results.export import results_tsv

# ---------------------------------------------------------------------------------------------------------
# Jobs


# ---------------------------------------------------------------------------------------------------------
# Queries


def cmd_best(args) -> int:
    _, _, state = open_board()
    bests = state.bests()
    if args.json:
        print_json([{**b.as_json(), "other_classes": _other_classes(state, b)} for b in bests.values()])
        return 0
    if not bests:
        print("no results yet")
    for best in bests.values():
        print(best_line(best))
        for device, seen in _other_classes(state, best).items():
            print(
                f"    the same train.py on {escape_text(device)}: val_bpb {seen['mean']:.6f} (n={seen['n']})"
            )
    return 0


def _other_classes(state, best) -> dict[str, dict[str, Any]]:
    """The best's train.py as measured on the other device classes of its profile (e.g. its confirmation
    runs on the validator class, `swarm spawn --validate-on`): each class's own number, never pooled."""
    device, profile = best.group
    seen = {}
    for key in state.groups:
        content = state.content(key, best.train_sha256) if key[1] == profile and key[0] != device else None
        if content is not None:
            seen[key[0]] = {"mean": content.mean, "sigma": content.sigma, "n": content.n}
    return seen


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
        print_json(
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
            doing = f"running {escape_text(now['id'])} ({escape_text(now.get('agent'))})" if now else "idle"
            print(f"  slot {escape_text(slot)}: {doing}, {queued.get(slot, 0)} queued")
    if notes:
        print("notes:")
        print("\n".join(note_line(n) for n in notes))
    return 0


def _content_has_agent(state, best, agent: str) -> bool:
    content = state.content(best.group, best.train_sha256)
    return any(state.experiments[eid].get("agent") == agent for eid in content.ids)


def cmd_export(args) -> int:
    _, _, state = open_board()
    text = results_tsv(list(state.experiments.values()))
    if args.file == "-":
        sys.stdout.write(text)
    else:
        Path(args.file).write_text(text)
        print(f"wrote {len(text.splitlines()) - 1} results to {args.file}", file=sys.stderr)
    return 0
