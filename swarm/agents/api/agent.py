"""`swarm agent api`: an agent that drives any model endpoint through a small, whitelisted tool loop.

For users without the Claude Code or Codex CLIs, or with a local model behind an OpenAI-compatible server.
It runs in its worktree, follows program.md, acts only through the tools of swarm.agents.api.tools, keeps
its context bounded (swarm.agents.api.context), records its token usage on the board (swarm.board.ledger)
and stops spending at its budget. Its settings are the `[api]` table of swarm.toml only; the API key is
read from the environment variable `api_key_env` names, never from swarm.toml. Long story: docs/agents.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarm.agents.api.client import (
    ANTHROPIC,
    CHAT,
    OPENAI,
    OPENAI_COMPATIBLE,
    PROVIDERS,
    RESPONSES,
    Completion,
    ModelClient,
    Turn,
    make_client,
)
from swarm.agents.api.context import BoundedContext
from swarm.agents.api.tools import TOOLS, Toolbox
from swarm.board.fold import BoardState
from swarm.board.ledger import Prices, Usage, board_totals, usage_record
from swarm.board.slots import is_class_queue, is_cpu_slot, queue_device
from swarm.board.store import Board
from swarm.config import load_section
from swarm.errors import SwarmError
from swarm.repo.paths import Identity, caller_identity, run_paths
from swarm.results.display import best_line, experiment_line, note_line
from swarm.runner.inbox import post, wait_answer

DEFAULT_MODELS = {ANTHROPIC: "claude-sonnet-4-5", OPENAI: "gpt-5"}
DEFAULT_KEY_ENV = {
    ANTHROPIC: "ANTHROPIC_API_KEY",
    OPENAI: "OPENAI_API_KEY",
    OPENAI_COMPATIBLE: "OPENAI_API_KEY",
}
IDLE_TURNS_BEFORE_STOP = 5  # replies without a tool call in a row: the model has stopped working
EXPERIMENT_COMMANDS = ("swarm run", "swarm submit", "swarm wait", "swarm verify")
FLUSH_EVERY_REQUESTS = 10
DIGEST_RESULTS = 5
DIGEST_NOTES = 3

# Exit codes, so a supervisor can tell "stopped on purpose" from a crash.
EXIT_BUDGET = 3
EXIT_IDLE = 4
EXIT_MAX_TURNS = 0


@dataclass(frozen=True)
class ApiSettings:
    """`[api]` in swarm.toml: the agent's only settings (`swarm agent api` takes just --prompt)."""

    provider: str = ANTHROPIC  #: anthropic, openai or openai-compatible
    model: str | None = None  #: the model; default per provider, required for openai-compatible
    base_url: str | None = None  #: the endpoint (required for openai-compatible)
    api_key_env: str | None = None  #: the environment variable holding the key (default per provider)
    #: [advanced] the OpenAI protocol: "responses" (default for openai) or "chat" (for openai-compatible)
    openai_api: str | None = None
    max_tokens: int = 8192  #: [advanced] the most tokens per reply
    stream: bool = True  #: [advanced] stream replies
    budget_usd: float | None = None  #: stop spending at this many dollars (needs the two prices)
    budget_tokens: int | None = None  #: stop at this many tokens
    input_usd_per_mtok: float | None = None  #: price of a million input tokens, for the cost ledger
    output_usd_per_mtok: float | None = None  #: price of a million output tokens
    cached_input_usd_per_mtok: float | None = None  #: [advanced] price of a million cached input tokens
    context_tokens: int = 60_000  #: [advanced] compact the conversation past this estimate
    keep_turns: int = 8  #: [advanced] newest turns kept verbatim when compacting
    #: [advanced] model requests in one session, then exit (unset: until the budget or a stop)
    max_turns: int | None = None
    #: [advanced] seconds one command may take (a `swarm run` waits for training)
    command_timeout_s: float = 3600.0
    max_output_chars: int = 6000  #: [advanced] of one tool result

    @property
    def prices(self) -> Prices:
        return Prices(self.input_usd_per_mtok, self.output_usd_per_mtok, self.cached_input_usd_per_mtok)

    def resolved(self) -> ApiSettings:
        """Defaults that depend on the provider filled in, and the combination checked."""
        if self.provider not in PROVIDERS:
            raise SwarmError(f"[api] provider {self.provider!r}: use one of {', '.join(PROVIDERS)}")
        model = self.model or DEFAULT_MODELS.get(self.provider)
        if not model:
            raise SwarmError("[api] model is required for provider openai-compatible")
        if self.provider == OPENAI_COMPATIBLE and not self.base_url:
            raise SwarmError("[api] base_url is required for provider openai-compatible")
        openai_api = self.openai_api or (RESPONSES if self.provider == OPENAI else CHAT)
        if openai_api not in (CHAT, RESPONSES):
            raise SwarmError(f"[api] openai_api {openai_api!r}: use chat or responses")
        if self.budget_usd is not None and not self.prices.known:
            raise SwarmError("[api] budget_usd needs input_usd_per_mtok and output_usd_per_mtok")
        return dataclasses.replace(
            self,
            model=model,
            api_key_env=self.api_key_env or DEFAULT_KEY_ENV[self.provider],
            openai_api=openai_api,
        )


def settings_from(repo: Path) -> ApiSettings:
    return load_section(repo, "api", ApiSettings).resolved()


# ---------------------------------------------------------------------------------------------------------
# Spending


class Meter:
    """This session's usage: adds up requests, checks the budget, writes usage records to the board."""

    def __init__(
        self,
        settings: ApiSettings,
        identity: Identity,
        board: Board | None,
        spent_before: Usage,
        cost_before: float,
    ):
        self.settings = settings
        self.identity = identity
        self.board = board
        self.session = Usage()
        self.session_cost = 0.0
        self.before = spent_before
        self.cost_before = cost_before
        self.pending = Usage()
        self.pending_requests = 0

    def add(self, usage: Usage) -> None:
        self.session += usage
        self.pending += usage
        self.pending_requests += 1
        self.session_cost += self.settings.prices.cost(usage) or 0.0

    @property
    def tokens(self) -> int:
        return (self.before + self.session).total

    @property
    def cost(self) -> float:
        return self.cost_before + self.session_cost

    def budget_reached(self) -> str | None:
        s = self.settings
        if s.budget_tokens is not None and self.tokens >= s.budget_tokens:
            return f"token budget reached: {self.tokens:,} of {s.budget_tokens:,} tokens"
        if s.budget_usd is not None and self.cost >= s.budget_usd:
            return f"budget reached: ${self.cost:.4f} of ${s.budget_usd:.2f}"
        return None

    def flush(self, **extra: Any) -> None:
        if not self.pending_requests and not extra:
            return
        if self.board is not None:
            record = usage_record(
                agent=self.identity.agent,
                tag=self.identity.tag,
                gpu=self.identity.queue,
                kind="api",
                model=self.settings.model,
                usage=self.pending,
                requests=self.pending_requests,
                cost_usd=self.settings.prices.cost(self.pending),
                provider=self.settings.provider,
                **extra,
            )
            if os.access(self.board.path, os.W_OK):
                self.board.append(record)
            else:  # in its sandbox: the runner of its slot writes it (swarm.runner.inbox)
                wait_answer(post(self.board.directory, self.identity.agent, {**record, "op": "usage"}))
        self.pending = Usage()
        self.pending_requests = 0


def spent_so_far(state: BoardState | None, identity: Identity) -> tuple[Usage, float]:
    """What this agent already spent in this run (earlier sessions, before a restart), from the board."""
    if state is None:
        return Usage(), 0.0
    state.refresh()
    totals = board_totals(state, tag=identity.tag).get(identity.agent)
    if totals is None:
        return Usage(), 0.0
    return totals.usage, totals.cost_usd or 0.0


# ---------------------------------------------------------------------------------------------------------
# The loop

FALLBACK_PROGRAM = """\
# autoresearch
You improve train.py so that val_bpb (validation bits per byte, lower is better) drops, within a fixed
training time budget. Loop forever: change train.py, commit, run the experiment, keep the commit if the
status is `keep`, otherwise go back to the previous commit. Look at the board to learn from the other
agents, and adopt a better commit when there is one. Never stop to ask the human."""

TOOLS_NOTE = """\
## How you act (API agent)
You act only through your tools: read_file, edit_file / write_file (train.py only), and run (one git or
swarm command per call, no shell). The research loop with them:
1. edit train.py, then run `git commit -am "<what you changed>"`;
2. run `swarm run -m "<what you changed>"`: it trains on your GPU, waits, and prints the status
   (keep / marginal / discard / crash / timeout / invalid) and val_bpb measured by the runner;
3. keep: build on it. Otherwise: `git reset --hard HEAD~1`. Use `swarm best` and `swarm adopt best` to
   pick up a better commit from another agent; `swarm note TEXT` shares an insight.
Keep replies short; spend tokens on experiments, not on prose."""

NUDGE = "Continue the research loop with your tools (edit, commit, `swarm run`). Do not stop to ask."


def system_prompt(worktree: Path, identity: Identity) -> str:
    program = worktree / "program.md"
    text = program.read_text() if program.is_file() else FALLBACK_PROGRAM
    if identity.queue and is_class_queue(identity.queue):  # the class's slots, shared with its other agents
        where = f"the shared slots of {queue_device(identity.queue)} (`swarm queue` shows them)"
    elif identity.queue and not is_cpu_slot(identity.queue):
        where = f"GPU {identity.queue}"
    else:
        where = "a CPU worker"
    return f"{text.rstrip()}\n\n{TOOLS_NOTE}\n\nYou are agent {identity.agent} on {where}, in {worktree}."


def task_text(identity: Identity, prompt: str | None = None) -> str:
    """The head of the opening message: the swarm's prompt when it gave one, else a generic start."""
    if prompt:
        return prompt
    return (
        f"You are {identity.agent}. Start (or resume) the experiment loop now: read train.py, decide on a "
        "change, and run it. The board below shows the best result so far and your latest results."
    )


def board_digest(state: BoardState | None, agent: str) -> str:
    """The best result of each device class, this agent's latest results and the newest notes."""
    if state is None:
        return "no board yet"
    state.refresh()
    bests = state.bests()
    lines = ["best so far:" if bests else "best so far: none yet"]
    lines += [f"  {best_line(best)}" for best in bests.values()]
    mine = state.experiments_of(agent)[-DIGEST_RESULTS:]
    lines.append("your latest experiments:" if mine else "your latest experiments: none yet")
    lines += [experiment_line(e) for e in mine]
    notes = state.notes[-DIGEST_NOTES:]
    if notes:
        lines.append("latest notes:")
        lines += [note_line(n) for n in notes]
    return "\n".join(lines)


class ApiAgent:
    def __init__(
        self,
        settings: ApiSettings,
        identity: Identity,
        client: ModelClient,
        toolbox: Toolbox,
        board: Board | None,
        out=None,
        prompt: str | None = None,
    ):
        self.settings = settings
        self.identity = identity
        self.client = client
        self.toolbox = toolbox
        self.board = board
        self.out = out or sys.stdout
        self.system = system_prompt(toolbox.worktree, identity)
        self.context = BoundedContext(
            task_text(identity, prompt), settings.context_tokens, settings.keep_turns
        )
        self.state = BoardState(board) if board is not None else None
        spent, cost = spent_so_far(self.state, identity)
        self.meter = Meter(settings, identity, board, spent, cost)
        self.requests = 0

    def say(self, text: str = "", end: str = "\n") -> None:
        self.out.write(text + end)
        self.out.flush()

    def run(self) -> int:
        s = self.settings
        self.say(
            f"[api agent {self.identity.agent}] {s.provider} {s.model} via {s.base_url or 'default endpoint'}"
        )
        try:
            return self._loop()
        finally:
            self.meter.flush()

    def _loop(self) -> int:
        idle = 0
        self.context.set_board(board_digest(self.state, self.identity.agent))
        while True:
            reason = self.meter.budget_reached()
            if reason:
                self.say(f"[stopping: {reason}]")
                self.meter.flush(budget_reached=True)
                return EXIT_BUDGET
            if self.settings.max_turns is not None and self.requests >= self.settings.max_turns:
                self.say(f"[stopping: {self.requests} model requests (max_turns)]")
                return EXIT_MAX_TURNS
            if self.context.over_limit(self.system, TOOLS):
                folded = self.context.compact(self.system, TOOLS)
                self.context.set_board(board_digest(self.state, self.identity.agent))
                self.say(f"[context: summarised {folded} older turns, refreshed the board digest]")
            completion = self._ask()
            turn = Turn(completion.text, list(completion.calls))
            self.context.turns.append(turn)
            if not turn.calls:
                idle += 1
                if idle >= IDLE_TURNS_BEFORE_STOP:
                    self.say(f"[stopping: {idle} replies in a row without a tool call]")
                    return EXIT_IDLE
                turn.nudge = NUDGE
                continue
            idle = 0
            experiment = False
            for call in turn.calls:
                self.say(f"\n$ {_describe_call(call.name, call.arguments, call.raw)}")
                outcome = self.toolbox.call(call)
                turn.outcomes.append(outcome)
                self.say(_preview(outcome.output))
                command = str((call.arguments or {}).get("command", ""))
                experiment = experiment or command.startswith(EXPERIMENT_COMMANDS)
            if experiment or self.meter.pending_requests >= FLUSH_EVERY_REQUESTS:
                self.meter.flush()

    def _ask(self) -> Completion:
        self.say("")
        started = time.monotonic()
        completion = self.client.complete(
            self.context.conversation(self.system, TOOLS), on_text=lambda t: self.say(t, end="")
        )
        self.requests += 1
        self.meter.add(completion.usage)
        u = completion.usage
        self.say(
            f"\n[request {self.requests}: {u.input_tokens} in (+{u.cache_read_tokens} cached), "
            f"{u.output_tokens} out, {time.monotonic() - started:.1f} s; session {self.meter.session.total:,} tokens]"
        )
        return completion


def _describe_call(name: str, arguments: dict[str, Any] | None, raw: str) -> str:
    args = arguments or {}
    if name == "run":
        return str(args.get("command", raw))
    if name == "edit_file":
        return f"edit {args.get('path')} ({len(str(args.get('old', '')))} -> {len(str(args.get('new', '')))} chars)"
    if name == "write_file":
        return f"write {args.get('path')}"
    if name == "read_file":
        return f"read {args.get('path')}"
    return f"{name} {raw[:80]}"


def _preview(output: str, lines: int = 12) -> str:
    rows = output.splitlines()
    if len(rows) <= lines:
        return output
    return "\n".join(rows[: lines // 2] + [f"  ... ({len(rows) - lines} lines)"] + rows[-lines // 2 :])


def _exit_on_signal(signum: int, _frame: Any) -> None:
    # SIGTERM (`swarm stop`) or SIGHUP (the tmux window closed): unwind, so that the running command is
    # stopped with the agent and this session's usage still reaches the board.
    raise SystemExit(128 + signum)


def cmd_api(args: argparse.Namespace) -> int:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    identity = caller_identity()
    paths = run_paths()
    settings = settings_from(paths.repo)
    api_key = os.environ.get(settings.api_key_env or "")
    if not api_key:
        if settings.provider != OPENAI_COMPATIBLE:
            raise SwarmError(f"no API key: set {settings.api_key_env} (or [api] api_key_env)")
        api_key = "none"  # local OpenAI-compatible servers often need no key, but the SDK wants one
    client = make_client(
        settings.provider,
        settings.model or "",
        max_tokens=settings.max_tokens,
        stream=settings.stream,
        api_key=api_key,
        base_url=settings.base_url,
        openai_api=settings.openai_api or CHAT,
    )
    board = Board(paths.board)
    toolbox = Toolbox(
        worktree=identity.worktree,
        logs=board.logs,
        command_timeout_s=settings.command_timeout_s,
        max_output_chars=settings.max_output_chars,
    )
    agent = ApiAgent(
        settings, identity, client, toolbox, board if board.exists() else None, prompt=args.prompt
    )
    code = agent.run()
    if code == EXIT_BUDGET and sys.stdout.isatty():
        # In its tmux window: stay, so the window says why this agent is quiet and the coordinator does not
        # restart it over and over (each restart would find the budget spent and stop again).
        print(f"[budget spent: waiting; `swarm stop {identity.agent}` ends this window]", flush=True)
        while True:
            signal.pause()
    return code
