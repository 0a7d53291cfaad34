"""The API agent's tools and their whitelist: what a model may do in its worktree, and nothing else.

Four tools: read a file (the worktree, or the board's run logs), edit or write train.py (the one file
an experiment may change), and run one command from a short list: the git commands of the
edit-commit-reset loop and the swarm agent commands. Commands run without a shell (no pipes,
redirection or `&&`), in the worktree, with a time limit. A refused call changes nothing and returns
an error the model reads, so it can correct itself.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarm.agents.api.client import ToolOutcome, ToolSpec, ToolUse
from swarm.installation import swarm_argv

EDITABLE = "train.py"

# git subcommands of the research loop. Global options (-C, -c, --git-dir, ...) are refused because the
# subcommand must come first; `-c` could otherwise set core.pager or an alias and run anything.
GIT_SUBCOMMANDS = ("status", "diff", "log", "show", "add", "commit", "reset", "restore", "rev-parse")
# Options that write files, read outside the repository or run external programs.
GIT_REFUSED_OPTIONS = ("--output", "--no-index", "--ext-diff", "--exec", "--upload-pack", "--receive-pack")
# The swarm commands an agent uses (program.md); `swarm export` writes files and is left out.
SWARM_SUBCOMMANDS = ("run", "submit", "wait", "best", "board", "adopt", "note", "verify")
SHELL_TOKENS = {"|", "||", "&", "&&", ";", ">", ">>", "<", "<<", "2>", "2>&1", "&>"}

TOOLS = [
    ToolSpec(
        "read_file",
        "Read a text file of your worktree (train.py, program.md, prepare.py, ...) or a run log under "
        "the board's logs/ directory. Returns numbered lines; use offset/limit for long files.",
        {
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "relative to the worktree, or a log path"},
                "offset": {"type": "integer", "description": "first line, 1-based (default 1)"},
                "limit": {"type": "integer", "description": "number of lines (default 400)"},
            },
            "required": ["path"],
        },
    ),
    ToolSpec(
        "edit_file",
        "Replace one exact, unique occurrence of `old` with `new` in train.py (the only editable file).",
        {
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "must be train.py"},
                "old": {"type": "string", "description": "text to replace; must occur exactly once"},
                "new": {"type": "string", "description": "replacement text"},
            },
            "required": ["path", "old", "new"],
        },
    ),
    ToolSpec(
        "write_file",
        "Write the whole of train.py (the only editable file).",
        {
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "must be train.py"},
                "content": {"type": "string"},
            },
            "required": ["path", "content"],
        },
    ),
    ToolSpec(
        "run",
        "Run one command in your worktree, without a shell (no pipes, redirection, && or globs). "
        f"Allowed: git {'|'.join(GIT_SUBCOMMANDS)} ...; swarm {'|'.join(SWARM_SUBCOMMANDS)} ... "
        '(e.g. `git commit -am "wider mlp"`, `swarm run -m "wider mlp"`, `git reset --hard HEAD~1`, '
        "`swarm best`). `swarm run` waits for the experiment to finish and prints its status.",
        {
            "type": "object",
            "properties": {"command": {"type": "string", "description": "the command line"}},
            "required": ["command"],
        },
    ),
]


class Refused(Exception):
    """A tool call outside the whitelist: its message goes back to the model as the tool's error."""


@dataclass(frozen=True)
class Toolbox:
    worktree: Path
    logs: Path | None = None  # the board's logs directory, readable for crash diagnosis
    command_timeout_s: float = 3600.0
    max_output_chars: int = 6000

    def call(self, use: ToolUse) -> ToolOutcome:
        """Run one tool call; a refusal or a failure is an error outcome, never an exception."""
        try:
            if use.arguments is None:
                raise Refused(f"the arguments of {use.name} are not a JSON object: {use.raw[:200]}")
            handler = getattr(self, f"_tool_{use.name}", None)
            if handler is None:
                raise Refused(f"unknown tool {use.name!r}; tools: {', '.join(t.name for t in TOOLS)}")
            output, failed = handler(**_checked(use.name, use.arguments))
        except Refused as e:
            return ToolOutcome(use.id, f"refused: {e}", is_error=True)
        return ToolOutcome(use.id, self._clip(output), is_error=failed)

    # -- files ----------------------------------------------------------------------------------------------

    def _tool_read_file(self, path: str, offset: int = 1, limit: int = 400) -> tuple[str, bool]:
        target = self._readable(path)
        try:
            lines = target.read_text(errors="replace").splitlines()
        except OSError as e:
            return f"cannot read {path}: {e.strerror}", True
        start = max(offset, 1)
        chosen = lines[start - 1 : start - 1 + max(limit, 1)]
        body = "\n".join(f"{start + i:5d}  {line}" for i, line in enumerate(chosen))
        more = len(lines) - (start - 1 + len(chosen))
        return body + (f"\n... {more} more lines (use offset)" if more > 0 else ""), False

    def _tool_edit_file(self, path: str, old: str, new: str) -> tuple[str, bool]:
        target = self._editable(path)
        text = target.read_text()
        found = text.count(old) if old else 0
        if found != 1:
            return (
                f"`old` occurs {found} times in {EDITABLE}; it must occur exactly once (no change made)",
                True,
            )
        target.write_text(text.replace(old, new, 1))
        return f"edited {EDITABLE}", False

    def _tool_write_file(self, path: str, content: str) -> tuple[str, bool]:
        self._editable(path).write_text(content)
        return f"wrote {EDITABLE} ({len(content.splitlines())} lines)", False

    def _readable(self, path: str) -> Path:
        candidate = Path(path) if Path(path).is_absolute() else self.worktree / path
        resolved = candidate.resolve()  # follows symlinks, so a link out of the worktree is caught here
        roots = [self.worktree.resolve()] + ([self.logs.resolve()] if self.logs else [])
        if not any(resolved.is_relative_to(root) for root in roots):
            raise Refused(f"{path} is outside your worktree and the run logs")
        if resolved.is_relative_to(self.worktree.resolve() / ".git") or resolved.name == ".git":
            raise Refused(f"{path}: git's own files are not readable; use git commands")
        if not resolved.is_file():
            raise Refused(f"{path}: no such file")
        return resolved

    def _editable(self, path: str) -> Path:
        target = self.worktree / EDITABLE
        if os.path.normpath(path) != EDITABLE and Path(path).resolve() != target.resolve():
            raise Refused(f"only {EDITABLE} may be changed, not {path} (prepare.py and the rest are fixed)")
        if target.is_symlink():
            raise Refused(f"{EDITABLE} is a symlink; restore it with `git restore {EDITABLE}`")
        return target

    # -- commands -------------------------------------------------------------------------------------------

    def _tool_run(self, command: str) -> tuple[str, bool]:
        """Run a whitelisted command line: (`exit N (secs)` + its output, failed?); raises Refused."""
        argv = self.allowed_argv(command)
        started = time.monotonic()
        # A session of its own, so that a command past its limit is stopped with all its children.
        proc = subprocess.Popen(
            argv,
            cwd=self.worktree,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
            # No pager, no editor (a `git commit` without -m aborts instead of waiting), no prompts.
            env={
                **os.environ,
                "GIT_PAGER": "cat",
                "PAGER": "cat",
                "GIT_EDITOR": "true",
                "GIT_TERMINAL_PROMPT": "0",
            },
        )
        try:
            output, _ = proc.communicate(timeout=self.command_timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            return f"timed out after {self.command_timeout_s:g} s and stopped\n{output}", True
        except BaseException:  # the agent is being stopped (a signal, Ctrl-C): its command goes with it
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        seconds = time.monotonic() - started
        return f"exit {proc.returncode} ({seconds:.1f} s)\n{output}", proc.returncode != 0

    def allowed_argv(self, command: str) -> list[str]:
        """The argv to execute for a command line, or Refused saying why it is not allowed."""
        try:
            words = shlex.split(command)
        except ValueError as e:
            raise Refused(f"cannot parse the command: {e}") from None
        if not words:
            raise Refused("empty command")
        shell = [w for w in words if w in SHELL_TOKENS or "$(" in w or "`" in w]
        if shell:
            raise Refused(f"no shell here: {shell[0]!r} is not supported; run one command per call")
        program, args = words[0], words[1:]
        if program == "git":
            if not args or args[0] not in GIT_SUBCOMMANDS:
                raise Refused(
                    f"git {args[0] if args else ''} is not allowed; allowed: git {', '.join(GIT_SUBCOMMANDS)}"
                )
            for arg in args[1:]:
                if arg.startswith(GIT_REFUSED_OPTIONS):
                    raise Refused(f"git option {arg.split('=')[0]} is not allowed")
            if args[0] in ("add", "restore") and any(
                a != EDITABLE for a in args[1:] if not a.startswith("-")
            ):
                raise Refused(
                    f"git {args[0]} takes only the path {EDITABLE} (options in --name=value form), "
                    f"e.g. git {args[0]} {'--source=HEAD~1 ' if args[0] == 'restore' else ''}{EDITABLE}"
                )
            return ["git", *args]
        if program == "swarm":
            if not args or args[0] not in SWARM_SUBCOMMANDS:
                raise Refused(
                    f"swarm {args[0] if args else ''} is not allowed; allowed: swarm {', '.join(SWARM_SUBCOMMANDS)}"
                )
            # The same installation as this agent, whatever PATH says.
            return swarm_argv(*args)
        raise Refused(
            f"{program!r} is not an allowed command; allowed: git {', '.join(GIT_SUBCOMMANDS)}; "
            f"swarm {', '.join(SWARM_SUBCOMMANDS)}"
        )

    def _clip(self, text: str) -> str:
        """Keep the head and the tail of a long output: a training log's summary block is at its end."""
        if len(text) <= self.max_output_chars:
            return text
        head = self.max_output_chars // 4
        tail = self.max_output_chars - head
        return f"{text[:head]}\n... [{len(text) - head - tail} characters cut] ...\n{text[-tail:]}"


def _checked(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a call, validated against the tool's schema (names, required, types)."""
    spec = next((t for t in TOOLS if t.name == tool), None)
    if spec is None:
        return arguments
    properties = spec.parameters["properties"]
    unknown = sorted(set(arguments) - set(properties))
    if unknown:
        raise Refused(f"{tool}: unknown argument {unknown[0]!r} (arguments: {', '.join(properties)})")
    for name in spec.parameters.get("required", []):
        if name not in arguments:
            raise Refused(f"{tool}: missing argument {name!r}")
    kinds = {"string": str, "integer": int}
    for name, value in arguments.items():
        expected = kinds[properties[name]["type"]]
        if not isinstance(value, expected) or isinstance(value, bool):
            raise Refused(f"{tool}: {name} must be a {properties[name]['type']}")
    return arguments
