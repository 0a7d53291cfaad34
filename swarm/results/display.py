"""Text shown to agents and humans: result blocks, best-per-group lines, the board table; agent text escaped.

Descriptions and notes are data an agent typed: they are printed with control characters escaped (no
terminal escape sequences, no forged extra lines) and never interpreted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from swarm.board.experiments import FAILED_STATUSES
from swarm.board.state import Best, BoardState, GroupKey
from swarm.target.summary import is_finite

RESULT_FIELDS = (
    ("val_bpb", "{:.6f}"),
    ("training_seconds", "{:.1f}"),
    ("total_seconds", "{:.1f}"),
    ("peak_vram_mb", "{:.1f}"),
    ("mfu_percent", "{:.2f}"),
    ("total_tokens_M", "{:.1f}"),
    ("num_steps", "{}"),
    ("num_params_M", "{:.1f}"),
    ("depth", "{}"),
)


def escape_text(text: Any, limit: int | None = None) -> str:
    """Agent text made safe to print on one line: control characters (newlines, ESC, ...) escaped."""
    text = "" if text is None else str(text)
    out = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    if limit is not None and len(out) > limit:
        out = out[: max(limit - 1, 0)] + "…"
    return out


def format_number(value: Any, fmt: str = "{:.6f}") -> str:
    """A number as `fmt` (val_bpb's six decimals by default), or "-" for a missing or non-finite one."""
    return fmt.format(value) if is_finite(value) else "-"


def result_block(record: dict[str, Any], board_dir: Path) -> str:
    """An experiment's result as `key: value` lines in the style of train.py's summary block."""
    lines = [
        "---",
        f"id:               {record['id']}",
        f"status:           {record.get('status')}",
    ]
    if record.get("reason"):
        lines.append(f"reason:           {escape_text(record['reason'])}")
    if record.get("val_bpb") is not None or record.get("status") not in FAILED_STATUSES:
        for name, fmt in RESULT_FIELDS:
            lines.append(f"{name + ':':<18}{format_number(record.get(name), fmt)}")
    lines += [
        f"device:           {escape_text(record.get('device'))}",
        f"profile:          {record.get('profile')}",
        f"commit:           {record.get('commit')}",
        f"description:      {escape_text(record.get('description'))}",
    ]
    if record.get("node"):  # trained on a Ray cluster: which node, and which of its GPU slots
        lines.append(
            f"node:             {escape_text(record['node'])} (slot {escape_text(record.get('gpu'))})"
        )
    if record.get("log"):
        lines.append(f"log:              {Path(board_dir) / record['log']}")
    return "\n".join(lines)


def best_line(best: Best) -> str:
    e = best.experiment
    sigma = f"±{best.sigma:.6f}" if best.sigma is not None else "±?"
    verified = "verified" if best.verified else "unverified"
    return (
        f"{best.group[0]} / {best.group[1]}: val_bpb {best.mean:.6f} {sigma} (n={best.n}, {verified}, "
        f"band {best.band:.6f})  {e['id']} {e.get('agent')} {str(e.get('commit'))[:10]}  "
        f"{escape_text(e.get('description'), 60)}"
    )


def group_header(state: BoardState, key: GroupKey) -> str:
    group = state.group(key)
    sigma = group.pooled_sigma if group else None
    spread = (
        f"pooled sigma {sigma:.6f} from {group.repeats} repeats" if sigma is not None else "no repeats yet"
    )
    return f"{key[0]} / {key[1]}: noise band {state.band(key):.6f} ({spread})"


def top_table(rows: list[Best]) -> list[str]:
    lines = [
        f"  {'#':>3}  {'val_bpb':>9}  {'sigma':>9}  {'n':>3}  ver  {'id':8}  {'agent':8}  {'commit':10}  description"
    ]
    for rank, best in enumerate(rows, 1):
        e = best.experiment
        lines.append(
            f"  {rank:>3}  {best.mean:9.6f}  {format_number(best.sigma):>9}  {best.n:>3}  "
            f"{'yes' if best.verified else ' no'}  {e['id']:8}  {escape_text(e.get('agent'), 8):8}  "
            f"{str(e.get('commit'))[:10]:10}  {escape_text(e.get('description'), 60)}"
        )
    return lines


def experiment_line(e: dict[str, Any]) -> str:
    return (
        f"  {e['id']:8}  {str(e.get('status')):8}  {format_number(e.get('val_bpb')):>9}  slot {str(e.get('gpu')):5}  "
        + (f"on {escape_text(e.get('node'), 40)}  " if e.get("node") else "")
        + f"{str(e.get('commit'))[:10]:10}  {escape_text(e.get('description'), 60)}"
    )


def note_line(note: dict[str, Any]) -> str:
    when = time.strftime("%H:%M", time.localtime(note.get("ts") or 0))
    return f"  [{escape_text(note.get('agent'), 12)} {when}] {escape_text(note.get('text'), 300)}"


def print_json(data: Any) -> None:
    """What every displaying command prints under --json: the board's field names, indented."""
    print(json.dumps(data, indent=2, ensure_ascii=False))
