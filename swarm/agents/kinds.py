"""Agent adapters: for each agent kind, a small frozen description of the command line that runs it.

Claude Code and Codex run in their non-interactive modes (`claude -p`, `codex exec`): one long agentic turn
that exits when the model ends it; the coordinator then restarts it with a resume prompt, so a swarm never
sits at an idle prompt nothing can detect without scraping the screen. Kinds: claude, codex, sweep and
optuna (built in, no LLM), api (`swarm agent api`), and any kind swarm.toml names under `[agents.commands]`
(placeholders {prompt} {agent} {gpu} {worktree} {python}), which may also override a built-in one. Long
story: docs/agents.md.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from swarm.config import load_section
from swarm.errors import SwarmError
from swarm.installation import SWARM_MODULE_ARGS

PLACEHOLDERS = ("prompt", "agent", "gpu", "worktree", "python")


@dataclass(frozen=True)
class AgentCommand:
    kind: str
    args: tuple[str, ...]  # the command line, with placeholders
    install: str = ""  # how to install the program when it is missing
    root_env: tuple[tuple[str, str], ...] = ()  # extra variables when running as root (not secret)
    # The JSON event stream the program prints ("claude" or "codex", see swarm.agents.relay): the launcher
    # then relays it as readable lines and records the usage it reports on the board. None: plain output.
    events: str | None = None
    # In its sandbox (swarm.runner.sandbox): the secret environment variables it may see (patterns; others
    # named like secrets are dropped), and its configuration, writable: (variable naming the directory,
    # default under HOME) pairs and files under HOME.
    secrets: tuple[str, ...] = ()
    config_dirs: tuple[tuple[str, str], ...] = ()
    config_files: tuple[str, ...] = ()
    # Directories under the board the kind itself writes (the Optuna agents' shared study); the rest of
    # the board stays read-only in its sandbox.
    board_dirs: tuple[str, ...] = ()

    @property
    def program(self) -> str:
        return self.args[0]

    def argv(
        self, *, prompt: str, agent: str, gpu: str, worktree: Path, python: str = sys.executable
    ) -> list[str]:
        values = {"prompt": prompt, "agent": agent, "gpu": gpu, "worktree": str(worktree), "python": python}
        argv = []
        for arg in self.args:
            for name in PLACEHOLDERS:
                arg = arg.replace("{" + name + "}", values[name])
            argv.append(arg)
        return argv

    def environment(self) -> dict[str, str]:
        return dict(self.root_env) if os.geteuid() == 0 else {}

    def configuration(self, env: dict[str, str]) -> tuple[list[Path], list[Path]]:
        """(directories, files) of its configuration, given the environment it starts with."""
        home = Path(env.get("HOME") or Path.home())
        dirs = [Path(env.get(name) or home / default) for name, default in self.config_dirs]
        return dirs, [home / name for name in self.config_files]

    def check_installed(self) -> None:
        """One clear error, saying how to install it, when the program is not there."""
        program = self.program
        if (
            program == "{python}"
            or shutil.which(program)
            or (os.sep in program and os.access(program, os.X_OK))
        ):
            return
        hint = f": install it with `{self.install}`" if self.install else ""
        raise SwarmError(f"agent kind {self.kind!r} needs `{program}`, which is not on PATH{hint}")


@dataclass(frozen=True)
class ClaudeCode(AgentCommand):
    """Claude Code in print mode; permission prompts bypassed (as root it insists on IS_SANDBOX=1)."""

    kind: str = "claude"
    output_format: str = "stream-json"  # "text", "json" or "stream-json" (stream-json needs --verbose)
    args: tuple[str, ...] = field(init=False, default=())
    install: str = "npm install -g @anthropic-ai/claude-code"
    root_env: tuple[tuple[str, str], ...] = (("IS_SANDBOX", "1"),)
    secrets: tuple[str, ...] = ("ANTHROPIC_*", "CLAUDE_*")
    config_dirs: tuple[tuple[str, str], ...] = (("CLAUDE_CONFIG_DIR", ".claude"),)
    config_files: tuple[str, ...] = (".claude.json",)

    def __post_init__(self):
        args = [
            "claude",
            "-p",
            "{prompt}",
            "--dangerously-skip-permissions",
            "--output-format",
            self.output_format,
        ]
        if self.output_format == "stream-json":
            args.append("--verbose")
        object.__setattr__(self, "args", tuple(args))
        object.__setattr__(self, "events", "claude" if self.output_format == "stream-json" else None)


@dataclass(frozen=True)
class Codex(AgentCommand):
    """Codex CLI `exec`, sandbox bypassed: its workspace-write sandbox cannot write a worktree's git
    metadata (which lives in the main repository's .git), so it could not commit. Commands run in a
    non-login shell (allow_login_shell=false): a login shell sources /etc/profile, which on Debian and
    others resets PATH and loses the `swarm` command the launcher put on it."""

    kind: str = "codex"
    json_events: bool = True
    args: tuple[str, ...] = field(init=False, default=())
    install: str = "npm install -g @openai/codex"
    secrets: tuple[str, ...] = ("OPENAI_*", "CODEX_*")
    config_dirs: tuple[tuple[str, str], ...] = (("CODEX_HOME", ".codex"),)

    def __post_init__(self):
        args = [
            "codex",
            "exec",
            "--dangerously-bypass-approvals-and-sandbox",
            "-c",
            "allow_login_shell=false",
        ]
        if self.json_events:
            args.append("--json")
        object.__setattr__(self, "args", (*args, "{prompt}"))
        object.__setattr__(self, "events", "codex" if self.json_events else None)


BUILT_IN: dict[str, AgentCommand] = {
    "claude": ClaudeCode(),
    "codex": Codex(),
    "sweep": AgentCommand("sweep", ("{python}", *SWARM_MODULE_ARGS, "agent", "sweep")),
    # Bayesian optimisation of the hyperparameter block; all optuna agents of a run share one study.
    "optuna": AgentCommand(
        "optuna", ("{python}", *SWARM_MODULE_ARGS, "agent", "optuna"), board_dirs=("optuna",)
    ),
    # The API agent takes the launcher's prompt (first start or resume) as its task.
    "api": AgentCommand(
        "api",
        ("{python}", *SWARM_MODULE_ARGS, "agent", "api", "--prompt", "{prompt}"),
        secrets=("ANTHROPIC_*", "OPENAI_*"),
    ),
}


@dataclass(frozen=True)
class AgentSettings:
    """`[agents]` in swarm.toml."""

    default: str = "claude"  #: the agent kind `swarm spawn` starts when --kind is not given
    #: your own agent kinds (or overrides of built-in ones): name -> command, placeholders {prompt} {agent} ...
    commands: dict[str, list[str]] | None = None
    #: more secret variables (patterns) a kind may see in its sandbox, e.g. {mybot = ["MYBOT_TOKEN"]}
    secrets: dict[str, list[str]] | None = None
    writable: tuple[str, ...] = ()  #: more directories every agent may write in its sandbox ($VARS expanded)


def agent_commands(repo: Path) -> tuple[AgentSettings, dict[str, AgentCommand]]:
    settings = load_section(repo, "agents", AgentSettings)
    commands = dict(BUILT_IN)
    for kind, args in (settings.commands or {}).items():
        if not args:
            raise SwarmError(f"swarm.toml [agents.commands] {kind}: empty command")
        commands[kind] = AgentCommand(kind, tuple(args))
    for kind, patterns in (settings.secrets or {}).items():
        if kind in commands:
            commands[kind] = replace(commands[kind], secrets=(*commands[kind].secrets, *patterns))
    return settings, commands


def assign_kinds(spec: str, count: int, known: dict[str, AgentCommand]) -> list[str]:
    """The kind of each of `count` agents, from `claude`, `claude:4,codex:4` or `claude:2,codex`
    (one kind without a count takes the agents that are left)."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise SwarmError("--kind: name a kind (claude, codex, sweep, optuna, api, or one from swarm.toml)")
    counted: list[tuple[str, int | None]] = []
    for part in parts:
        kind, _, number = part.partition(":")
        kind = kind.strip()
        if kind not in known:
            raise SwarmError(f"unknown agent kind {kind!r} (known: {', '.join(sorted(known))})")
        if number and (not number.strip().isdigit() or int(number) < 1):
            raise SwarmError(f"--kind {spec}: {part!r} needs a positive count")
        counted.append((kind, int(number) if number else None))
    open_ended = [kind for kind, n in counted if n is None]
    if len(open_ended) > 1:
        raise SwarmError(f"--kind {spec}: give counts to all kinds but one (e.g. claude:4,codex:4)")
    fixed = sum(n for _, n in counted if n is not None)
    rest = count - fixed
    if rest < 0 or (rest > 0 and not open_ended) or (rest == 0 and open_ended and len(counted) > 1):
        raise SwarmError(f"--kind {spec}: names {fixed} agent(s), but {count} worker slot(s) were asked for")
    kinds: list[str] = []
    for kind, n in counted:
        kinds.extend([kind] * (n if n is not None else rest))
    return kinds
