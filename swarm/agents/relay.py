"""Relay a CLI agent's JSON events to its tmux window as readable lines, and put its usage in the ledger.

Claude Code (`-p --output-format stream-json --verbose`) and Codex (`exec --json`) print one JSON event
per line. Raw, that is unreadable for a human attaching to the window; it is also the only place their
token usage and cost appear. `relay` runs the CLI as a child, prints each event as a short line or two
(what the model said, the command it ran, the first lines of the result), and appends a `usage` record
(swarm.board.ledger) when the CLI reports usage: Claude Code once per session in its `result` event (tokens
and `total_cost_usd`), Codex once per turn in `turn.completed` (tokens; it prints no cost). A session
killed before it reports loses that session's usage, never anything else. Lines that are not JSON pass
through unchanged.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any, TextIO

from swarm.board.ledger import Usage, usage_record
from swarm.board.store import Board
from swarm.errors import SwarmError

RESULT_LINES = 6
CLAUDE, CODEX = "claude", "codex"


class EventReader:
    """Turns one CLI's events into display lines and usage reports."""

    kind = ""

    def render(self, event: dict[str, Any]) -> list[str]:
        raise NotImplementedError

    def usage(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """The fields of a usage record (usage, requests, cost_usd, model) when this event reports usage."""
        raise NotImplementedError


class ClaudeEvents(EventReader):
    kind = CLAUDE

    def __init__(self) -> None:
        self.message_ids: set[str] = set()  # one API request per assistant message id
        self.model: str | None = None

    def render(self, event: dict[str, Any]) -> list[str]:
        kind = event.get("type")
        if kind == "system" and event.get("subtype") == "init":
            self.model = event.get("model") or self.model
            return [f"[claude {event.get('claude_code_version', '')} model {event.get('model')}]"]
        if kind == "assistant":
            message = event.get("message") or {}
            if message.get("id"):
                self.message_ids.add(message["id"])
            lines = []
            for block in message.get("content") or []:
                if block.get("type") == "text" and block.get("text", "").strip():
                    lines.append(block["text"].strip())
                elif block.get("type") == "tool_use":
                    lines.append(f"$ {block.get('name')}: {_tool_input(block.get('input') or {})}")
            return lines
        if kind == "user":
            content = (event.get("message") or {}).get("content")
            blocks = content if isinstance(content, list) else []
            return [
                _indent(_content_text(b.get("content")), error=bool(b.get("is_error")))
                for b in blocks
                if b.get("type") == "tool_result"
            ]
        if kind == "result":
            cost = event.get("total_cost_usd")
            return [
                f"[session {event.get('subtype')}: {event.get('num_turns')} turns, "
                f"{_tokens(event.get('usage') or {})} tokens"
                + (f", ${cost:.4f}]" if isinstance(cost, int | float) else "]")
            ]
        return []

    def usage(self, event: dict[str, Any]) -> dict[str, Any] | None:
        if event.get("type") != "result" or not isinstance(event.get("usage"), dict):
            return None
        u = event["usage"]
        models = list((event.get("modelUsage") or {}).keys())
        cost = event.get("total_cost_usd")
        return {
            "usage": Usage(
                int(u.get("input_tokens") or 0),
                int(u.get("output_tokens") or 0),
                int(u.get("cache_read_input_tokens") or 0),
                int(u.get("cache_creation_input_tokens") or 0),
            ),
            "requests": len(self.message_ids),
            "cost_usd": float(cost) if isinstance(cost, int | float) else None,
            "model": self.model or (models[0] if models else None),
        }


class CodexEvents(EventReader):
    kind = CODEX

    def render(self, event: dict[str, Any]) -> list[str]:
        kind = event.get("type")
        if kind == "thread.started":
            return [f"[codex thread {event.get('thread_id')}]"]
        if kind == "turn.completed":
            return [f"[turn done: {_tokens(event.get('usage') or {})} tokens]"]
        if kind == "error":
            return [f"! {event.get('message')}"]
        if kind == "turn.failed":
            error = event.get("error")
            return [f"! turn failed: {error.get('message') if isinstance(error, dict) else error}"]
        if kind != "item.completed":
            return []
        item = event.get("item") or {}
        what = item.get("type")
        if what == "agent_message":
            return [str(item.get("text", "")).strip()]
        if what == "command_execution":
            failed = item.get("exit_code") not in (0, None)
            return [
                f"$ {item.get('command')}",
                _indent(str(item.get("aggregated_output") or ""), error=failed)
                + f"\n  (exit {item.get('exit_code')})",
            ]
        if what == "file_change":
            return [f"edited {', '.join(c.get('path', '?') for c in item.get('changes') or [])}"]
        if what == "error":
            return [f"! {item.get('message')}"]
        return []

    def usage(self, event: dict[str, Any]) -> dict[str, Any] | None:
        if event.get("type") != "turn.completed" or not isinstance(event.get("usage"), dict):
            return None
        u = event["usage"]
        return {
            "usage": Usage.openai(
                int(u.get("input_tokens") or 0),
                int(u.get("output_tokens") or 0),
                int(u.get("cached_input_tokens") or 0),
            ),
            "requests": None,  # Codex does not say how many model requests a turn took
            "cost_usd": None,
            "model": None,
        }


READERS: dict[str, type[EventReader]] = {CLAUDE: ClaudeEvents, CODEX: CodexEvents}


def relay(
    reader: EventReader,
    argv: list[str],
    *,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    record: Callable[[dict[str, Any]], None],
    out: TextIO = sys.stdout,
) -> int:
    """Run `argv`, show its events on `out`, call `record` with each usage report; returns its exit code."""
    child = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, text=True, errors="replace", bufsize=1
    )

    # The window closing (SIGHUP) or `swarm stop` (SIGTERM) reaches this process: pass it on and keep
    # reading, so a last usage report the CLI prints on its way out is still recorded.
    def forward(signum: int, _frame: Any) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    try:
        assert child.stdout is not None
        for line in child.stdout:
            event = _parse(line)
            if event is None:
                out.write(line)
            else:
                for text in reader.render(event):
                    out.write(text + "\n")
                report = reader.usage(event)
                if report is not None:
                    record(report)
            out.flush()
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _parse(line: str) -> dict[str, Any] | None:
    if not line.lstrip().startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _tool_input(arguments: dict[str, Any]) -> str:
    for key in ("command", "file_path", "path", "pattern", "url"):
        if key in arguments:
            return str(arguments[key])
    return json.dumps(arguments)[:120]


def _content_text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def _indent(text: str, error: bool = False) -> str:
    rows = text.rstrip().splitlines() or ["(no output)"]
    shown = rows[:RESULT_LINES] + (
        [f"... ({len(rows) - RESULT_LINES} more lines)"] if len(rows) > RESULT_LINES else []
    )
    prefix = "  ! " if error else "  "
    return "\n".join(prefix + row for row in shown)


def _tokens(usage: dict[str, Any]) -> str:
    total = sum(int(v) for k, v in usage.items() if k.endswith("tokens") and isinstance(v, int | float))
    return f"{total:,}"


def relay_to_board(
    events: str,
    argv: list[str],
    env: dict[str, str],
    board: Board,
    *,
    agent: str,
    tag: str | None,
    queue: str | None,
) -> int:
    """`relay` for an agent window: the usage its CLI reports goes on the board as `usage` records."""
    if events not in READERS:
        raise SwarmError(f"unknown agent event format {events!r} (known: {', '.join(READERS)})")
    reader = READERS[events]()

    def record(report: dict[str, Any]) -> None:
        board.append(usage_record(agent=agent, tag=tag, gpu=queue, kind=reader.kind, **report))

    try:
        return relay(reader, argv, env=env, record=record)
    except FileNotFoundError:
        raise SwarmError(f"cannot start {argv[0]}: not found") from None
