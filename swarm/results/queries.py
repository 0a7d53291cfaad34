"""The text of `swarm best` and `swarm board`, rendered from the board's state; swarm.results.answers saves
it for the next process that asks the same of the same board."""

from __future__ import annotations

import json
from typing import Any

from swarm.board.fold import BoardState
from swarm.board.opening import open_board
from swarm.board.stats import Best
from swarm.results import answers
from swarm.results.display import best_line, escape_text, experiment_line, group_header, note_line, top_table


def compute(command: str, options: dict[str, Any], context: str) -> str:
    """The answer to a query from the board's state (restored from its checkpoint, folded to the end),
    saved beside the board when this process may write there."""
    _, board, state = open_board()
    text = RENDERERS[command](state, **options)
    answers.remember(
        board.directory, state.reader.offset, context, {answers.query_key(command, options): text}
    )
    return text


def common_answers(state: BoardState) -> dict[str, str]:
    """The answers agents ask for most (answers.COMMON_QUERIES), for a process that keeps the state."""
    return {answers.query_key(c, o): RENDERERS[c](state, **o) for c, o in answers.COMMON_QUERIES}


def json_text(data: Any) -> str:
    """What every displaying command prints under --json: the board's field names, indented; ASCII, so
    control and bidi characters arrive escaped."""
    return json.dumps(data, indent=2) + "\n"


def best_text(state: BoardState, json: bool) -> str:
    bests = state.bests()
    if json:
        return json_text([{**b.as_json(), "other_classes": _other_classes(state, b)} for b in bests.values()])
    lines = [] if bests else ["no results yet"]
    for best in bests.values():
        lines.append(best_line(best))
        for device, seen in _other_classes(state, best).items():
            lines.append(
                f"    the same train.py on {escape_text(device)}: val_bpb {seen['mean']:.6f} (n={seen['n']})"
            )
    return "".join(line + "\n" for line in lines)


def _other_classes(state: BoardState, best) -> dict[str, dict[str, Any]]:
    """The best's train.py as measured on the other device classes of its profile (e.g. its confirmation
    runs on the validator class, `swarm spawn --validate-on`): each class's own number, never pooled."""
    device, profile = best.group
    seen = {}
    for key in state.groups:
        content = state.content(key, best.train_sha256) if key[1] == profile and key[0] != device else None
        if content is not None:
            seen[key[0]] = {"mean": content.mean, "sigma": content.sigma, "n": content.n}
    return seen


def board_text(state: BoardState, top: int, agent: str | None, json: bool) -> str:
    groups = []
    for key in state.groups:
        everything = len(state.groups[key].contents)
        rows = state.top(key, top if not agent else everything)
        confirmed = state.confirmed_top(key, top if not agent else everything)
        if agent:
            rows = [b for b in rows if _content_has_agent(state, b, agent)][:top]
            confirmed = [b for b in confirmed if _content_has_agent(state, b, agent)][:top]
        groups.append((key, rows, confirmed))
    notes = [n for n in state.notes if not agent or n.get("agent") == agent][-10:]
    recent = state.experiments_of(agent)[-top:] if agent else []
    running = state.running_slots()
    queued = state.queued_counts()
    if json:
        return json_text(
            {
                "groups": [
                    {
                        "device": key[0],
                        "profile": key[1],
                        "band": state.band(key),
                        "sigma": state.groups[key].pooled_sigma,
                        "repeats": state.groups[key].repeats,
                        "best": best.as_json() if (best := state.best(key)) else None,
                        "top": [b.as_json() for b in rows],  # by mean, confirmed or not (see "confirmed")
                        "confirmed_top": [b.as_json() for b in confirmed],
                    }
                    for key, rows, confirmed in groups
                ],
                "experiments": recent,
                "running": running,
                "queued": queued,
                "notes": notes,
            }
        )
    lines = [] if groups else ["no results yet"]
    least = state.noise.best_runs
    for key, rows, confirmed in groups:
        lines.append(group_header(state, key))
        lines.extend(_ranking(confirmed, rows, least))
    if agent:
        lines.append(f"latest experiments of {escape_text(agent)}:")
        lines.extend([experiment_line(e) for e in recent] or ["  none"])
    if running or queued:
        lines.append("runners:")
        for slot in sorted(set(running) | set(queued)):
            now = running.get(slot)
            doing = f"running {escape_text(now['id'])} ({escape_text(now.get('agent'))})" if now else "idle"
            lines.append(f"  slot {escape_text(slot)}: {doing}, {queued.get(slot, 0)} queued")
    if notes:
        lines.append("notes:")
        lines.extend(note_line(n) for n in notes)
    return "".join(line + "\n" for line in lines)


def _ranking(confirmed: list[Best], rows: list[Best], least: int) -> list[str]:
    """A group's ranking: the confirmed contents, whose #1 is the best `swarm best` shows, then those of
    the lowest means overall that have fewer runs, unranked and labelled."""
    if least <= 1:  # the `single` rule: every measured content may be the best
        return top_table(confirmed)
    lines = [f"  confirmed: mean of at least {least} runs, #1 is the best"]
    lines += top_table(confirmed) if confirmed else ["  none yet"]
    pending = [b for b in rows if not b.confirmed]
    if pending:
        lines.append(f"  not confirmed yet: fewer than {least} runs (a single run is never a best)")
        lines += top_table(pending, ranked=False)[1:]
    return lines


def _content_has_agent(state: BoardState, best, agent: str) -> bool:
    content = state.content(best.group, best.train_sha256)
    return any(state.experiments[eid].get("agent") == agent for eid in content.ids)


RENDERERS = {"best": best_text, "board": board_text}
