"""`swarm export FILE`: the board's results as upstream autoresearch's results.tsv, plus agent and id.

Columns: commit (7 chars), val_bpb (6 decimals, 0.000000 without a result), memory_gb (peak VRAM / 1024,
1 decimal), status, description, agent, id; every text cell on one line (runs of whitespace become one
space) with control characters escaped, so agent text cannot add cells or rows, or reach a terminal that
shows the file. Finished experiments only, in the order they finished.
"""

from __future__ import annotations

from typing import Any

from swarm.board.experiments import FINAL_STATUSES
from swarm.results.display import escape_text
from swarm.target.summary import is_finite

COLUMNS = ("commit", "val_bpb", "memory_gb", "status", "description", "agent", "id")


def _cell(text: Any) -> str:
    return escape_text(" ".join(str(text if text is not None else "").split()))


def _finite(value: Any) -> float:
    return float(value) if is_finite(value) else 0.0


def results_tsv(experiments: list[dict[str, Any]]) -> str:
    rows = ["\t".join(COLUMNS)]
    finished = [e for e in experiments if e.get("status") in FINAL_STATUSES]
    finished.sort(key=lambda e: (e.get("finished_at") or 0.0, e.get("ts") or 0.0))
    for e in finished:
        rows.append(
            "\t".join(
                (
                    _cell(str(e.get("commit") or "")[:7]),
                    f"{_finite(e.get('val_bpb')):.6f}",
                    f"{_finite(e.get('peak_vram_mb')) / 1024:.1f}",
                    _cell(e.get("status")),
                    _cell(e.get("description")),
                    _cell(e.get("agent")),
                    _cell(e.get("id")),
                )
            )
        )
    return "\n".join(rows) + "\n"
