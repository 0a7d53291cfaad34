"""Text shown to agents and humans: result blocks, best-per-group lines, the board table; agent text escaped.

Descriptions and notes are data an agent typed: they are printed with control characters escaped (no
terminal escape sequences, no forged extra lines) and never interpreted.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from swarm.board.experiments import FAILED_STATUSES, GroupKey
from swarm.board.fold import BoardState
from swarm.board.stats import Best
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


# Every character CommonMark gives a meaning to (ASCII punctuation may always be backslash-escaped) ...
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")
# ... and what GitHub-flavoured Markdown turns into a link without asking: a zero-width space breaks each.
_AUTOLINK = re.compile(r"(://|www\\\.|@)", re.IGNORECASE)


def escape_markdown(text: Any, limit: int | None = None) -> str:
    """Agent text for a Markdown page: escape_text's one line, made literal: HTML characters as entities,
    Markdown punctuation backslash-escaped, autolinks broken. It can neither format the page (emphasis,
    headings, table cells) nor add a link, an image or HTML."""
    out = escape_text(text, limit).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    out = _MARKDOWN_PUNCTUATION.sub(r"\\\1", out)
    return _AUTOLINK.sub(lambda m: m.group(1)[0] + "&#8203;" + m.group(1)[1:], out)


def format_number(value: Any, fmt: str = "{:.6f}") -> str:
    """A number as `fmt` (val_bpb's six decimals by default), or "-" for a missing or non-finite one."""
    return fmt.format(value) if is_finite(value) else "-"


def result_block(record: dict[str, Any], board_dir: Path) -> str:
    """An experiment's result as `key: value` lines in the style of train.py's summary block."""
    lines = [
        "---",
        f"id:               {escape_text(record['id'])}",
        f"status:           {escape_text(record.get('status'))}",
    ]
    if record.get("unsealed"):
        lines.append("sealed:           no (the run was spawned --unsealed: measured without a sandbox)")
    if record.get("reason"):
        lines.append(f"reason:           {escape_text(record['reason'])}")
    if record.get("val_bpb") is not None or record.get("status") not in FAILED_STATUSES:
        for name, fmt in RESULT_FIELDS:
            lines.append(f"{name + ':':<18}{format_number(record.get(name), fmt)}")
    lines += [
        f"device:           {escape_text(record.get('device'))}",
        f"profile:          {escape_text(record.get('profile'))}",
        f"commit:           {escape_text(record.get('commit'))}",
        f"description:      {escape_text(record.get('description'))}",
    ]
    if record.get("node"):  # trained on a Ray cluster: which node, and which of its GPU slots
        lines.append(
            f"node:             {escape_text(record['node'])} (slot {escape_text(record.get('gpu'))})"
        )
    if record.get("log"):
        lines.append(f"log:              {escape_text(Path(board_dir) / str(record['log']))}")
    return "\n".join(lines)


def mean_text(mean: float, sigma: float | None, n: int) -> str:
    """The one way a train.py's val_bpb is shown: the mean of its runs with sigma and n, or a single run
    labelled as one (never a best: a best is a confirmed mean, swarm.board.fold.best)."""
    if n <= 1 or sigma is None:
        return f"{mean:.6f} (single run)"
    return f"{mean:.6f} ±{sigma:.6f} (n={n})"


UNSEALED_MARK = ", UNSEALED"  # a result measured without a sandbox (`swarm spawn --unsealed`)


def best_line(best: Best) -> str:
    e = best.experiment
    sigma = f"±{best.sigma:.6f}" if best.sigma is not None else "±?"
    verified = "verified" if best.verified else "unverified"
    return (
        f"{escape_text(best.group[0])} / {escape_text(best.group[1])}: val_bpb {best.mean:.6f} {sigma} "
        f"(n={best.n}, {verified}{UNSEALED_MARK if e.get('unsealed') else ''}, band {best.band:.6f})  "
        f"{escape_text(e['id'])} {escape_text(e.get('agent'))} {escape_text(str(e.get('commit'))[:10])}  "
        f"{escape_text(e.get('description'), 60)}"
    )


def group_header(state: BoardState, key: GroupKey) -> str:
    group = state.group(key)
    sigma = group.pooled_sigma if group else None
    spread = (
        f"pooled sigma {sigma:.6f} from {group.repeats} repeats" if sigma is not None else "no repeats yet"
    )
    return f"{escape_text(key[0])} / {escape_text(key[1])}: noise band {state.band(key):.6f} ({spread})"


def top_table(rows: list[Best], ranked: bool = True) -> list[str]:
    """The top contents of a group; `!` after an id marks an unsealed result. Unranked rows (contents not
    confirmed yet) show `-` for a rank, and `one run` for the sigma of a single run."""
    lines = [
        f"  {'#':>3}  {'val_bpb':>9}  {'sigma':>9}  {'n':>3}  ver  {'id':8}  {'agent':8}  {'commit':10}  description"
    ]
    for rank, best in enumerate(rows, 1):
        e = best.experiment
        sigma = "one run" if best.n == 1 else format_number(best.sigma)
        lines.append(
            f"  {rank if ranked else '-':>3}  {best.mean:9.6f}  {sigma:>9}  {best.n:>3}  "
            f"{'yes' if best.verified else ' no'}  {escape_text(e['id'], 8):8}{'!' if e.get('unsealed') else ' '} "
            f"{escape_text(e.get('agent'), 8):8}  {escape_text(str(e.get('commit'))[:10]):10}  "
            f"{escape_text(e.get('description'), 60)}"
        )
    return lines


def experiment_line(e: dict[str, Any]) -> str:
    return (
        f"  {escape_text(e['id'], 8):8}{'!' if e.get('unsealed') else ' '} {escape_text(e.get('status'), 8):8}  "
        f"{format_number(e.get('val_bpb')):>9}  slot {escape_text(e.get('gpu'), 5):5}  "
        + (f"on {escape_text(e.get('node'), 40)}  " if e.get("node") else "")
        + f"{escape_text(str(e.get('commit'))[:10]):10}  {escape_text(e.get('description'), 60)}{_why(e)}"
    )


def _why(e: dict[str, Any]) -> str:
    """The reason of a crash / timeout / invalid, after the description."""
    if e.get("status") in FAILED_STATUSES and e.get("reason"):
        return f"  [{escape_text(e['reason'], 80)}]"
    return ""


def note_line(note: dict[str, Any]) -> str:
    when = time.strftime("%H:%M", time.localtime(note.get("ts") or 0))
    return f"  [{escape_text(note.get('agent'), 12)} {when}] {escape_text(note.get('text'), 300)}"


def print_json(data: Any) -> None:
    """What every displaying command prints under --json: the board's field names, indented."""
    print(json.dumps(data, indent=2))  # ASCII: control and bidi characters arrive escaped
