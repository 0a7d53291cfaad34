"""The API agent's bounded context: recent turns verbatim, older turns summarised, the board always in view.

A session of experiments runs for hours, far past any context window, and a long context costs on
every request. So once the estimated size passes the limit, all but the last few turns are folded into
short summary lines (one per tool call: what was called, the first and last line of what came back),
and the opening message is rebuilt with a fresh digest of the board (the global best and this agent's
latest results). The opening changes only at those moments, so between them the prompt cache keeps
serving the conversation's prefix.

The summary is mechanical rather than written by the model: it costs no request, cannot invent
results, and the board digest already holds what matters most (the measured outcomes).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from swarm.agents.api.client import Conversation, ToolSpec, Turn

CHARS_PER_TOKEN = 4  # a rough, provider-independent estimate; the real count comes back in the usage
MAX_SUMMARY_LINES = 80
LINE_CHARS = 160


@dataclass
class BoundedContext:
    task: str  # what the agent is asked to do; the head of the opening message
    limit_tokens: int
    keep_turns: int
    board_digest: str = ""
    digest_time: float = 0.0
    summary: list[str] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    folded: int = 0  # turns summarised so far

    def opening(self) -> str:
        parts = [self.task]
        if self.summary:
            dropped = max(0, len(self.summary) - MAX_SUMMARY_LINES)
            lines = self.summary[-MAX_SUMMARY_LINES:]
            head = f"## Earlier in this session ({self.folded} turns, summarised)"
            parts.append(
                "\n".join([head, *([f"({dropped} older lines left out)"] if dropped else []), *lines])
            )
        if self.board_digest:
            stamp = time.strftime("%H:%M:%S", time.localtime(self.digest_time))
            parts.append(f"## The board at {stamp}\n{self.board_digest}")
        return "\n\n".join(parts)

    def conversation(self, system: str, tools: list[ToolSpec]) -> Conversation:
        return Conversation(system=system, opening=self.opening(), turns=list(self.turns), tools=tools)

    def estimated_tokens(self, system: str, tools: list[ToolSpec]) -> int:
        size = len(system) + len(self.opening()) + len(json.dumps([t.parameters for t in tools]))
        for turn in self.turns:
            size += len(turn.text) + len(turn.nudge or "")
            size += sum(len(c.raw) + len(c.name) for c in turn.calls)
            size += sum(len(o.output) for o in turn.outcomes)
        return size // CHARS_PER_TOKEN + 1

    def set_board(self, digest: str) -> None:
        self.board_digest = digest
        self.digest_time = time.time()

    def over_limit(self, system: str, tools: list[ToolSpec]) -> bool:
        return self.estimated_tokens(system, tools) > self.limit_tokens

    def compact(self, system: str, tools: list[ToolSpec]) -> int:
        """Fold the oldest turns into the summary: down to `keep_turns`, and further (never past the newest
        turn, which holds the results the model has not answered yet) while the context is still too big.
        Returns how many turns were folded."""
        folded = 0
        while len(self.turns) > 1 and (len(self.turns) > self.keep_turns or self.over_limit(system, tools)):
            self.summary.extend(summarise(self.turns.pop(0)))
            folded += 1
        self.folded += folded
        return folded


def summarise(turn: Turn) -> list[str]:
    """One line per tool call of a turn (or the text, when it called nothing)."""
    outcomes = {o.call_id: o for o in turn.outcomes}
    lines = []
    for call in turn.calls:
        args = call.arguments or {}
        if call.name == "run":
            what = f"run `{args.get('command', call.raw)}`"
        elif call.name == "edit_file":
            what = f"edit {args.get('path')}: {_short(args.get('old', ''), 50)!r} -> {_short(args.get('new', ''), 50)!r}"
        elif call.name == "write_file":
            what = f"write {args.get('path')} ({len(str(args.get('content', '')).splitlines())} lines)"
        else:
            what = f"{call.name} {_short(call.raw, 80)}"
        outcome = outcomes.get(call.id)
        result = _gist(outcome.output) if outcome else "(no result)"
        mark = "ERROR " if outcome and outcome.is_error else ""
        lines.append(_short(f"- {what} -> {mark}{result}", LINE_CHARS))
    if not turn.calls and turn.text:
        lines.append(_short(f"- said: {turn.text}", LINE_CHARS))
    return lines


def _gist(output: str) -> str:
    """First and last non-empty lines: a command's exit line and its conclusion (e.g. a run's status)."""
    rows = [r.strip() for r in output.splitlines() if r.strip()]
    if not rows:
        return "(empty)"
    return rows[0] if len(rows) == 1 else f"{rows[0]} ... {rows[-1]}"


def _short(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
