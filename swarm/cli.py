"""The `swarm` command line: a thin argparse layer; every command is a function in a module a test can call.

Handlers are named as "module:function" and imported only when their command runs, so `swarm --help`
and the agent commands stay fast (no torch or textual import).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from swarm import __version__
from swarm.errors import SwarmError


def _command(sub, name: str, handler: str, help: str, **kwargs) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=help, **kwargs)
    parser.set_defaults(handler=handler)
    return parser


# ---------------------------------------------------------------------------------------------------------
# The research target (prepare.py / train.py) and the machine


def _add_machine_commands(sub) -> None:
    _command(
        sub, "doctor", "swarm.doctor:main", "report python, torch, CUDA devices, tmux, git and the data cache"
    )


# ---------------------------------------------------------------------------------------------------------
# Board, jobs and runners


def _add_board_commands(sub) -> None:
    pass


# ---------------------------------------------------------------------------------------------------------
# Spawning and supervising a swarm


def _add_swarm_commands(sub) -> None:
    spawn = _command(
        sub,
        "spawn",
        "swarm.spawn:main",
        "start a swarm: a worktree and an agent per GPU (or CPU worker) in tmux",
    )
    where = spawn.add_mutually_exclusive_group()
    where.add_argument("--gpus", metavar="N|I,J,..", help="the first N GPUs, or these indices (default: all)")
    where.add_argument("--cpu", type=int, metavar="N", help="N CPU workers instead of GPUs (profile tiny)")
    spawn.add_argument(
        "--agent",
        metavar="KIND[:N],..",
        help="claude, codex, sweep, api, a swarm.toml kind, or a mix like claude:4,codex:4",
    )
    spawn.add_argument(
        "--tag", help="run name: branches swarm/<tag>/<agent> (default: the board's run, or today)"
    )
    spawn.add_argument(
        "--base", metavar="REF", help="commit the agents start from (default: HEAD, which must be clean)"
    )
    spawn.add_argument(
        "--profile", choices=("h100", "tiny"), help="train.py profile (default: h100; tiny with --cpu)"
    )
    spawn.add_argument(
        "--no-wait", action="store_true", help="return without waiting for the agents to start"
    )

    resume = _command(
        sub, "resume", "swarm.spawn:resume_main", "bring a stopped or broken run back, as it was"
    )
    resume.add_argument("--tag", help="the run (default: the board's latest)")
    resume.add_argument(
        "--no-wait", action="store_true", help="return without waiting for the agents to start"
    )

    status = _command(
        sub, "status", "swarm.status:main", "per agent: kind, GPU, state, current experiment, best"
    )
    status.add_argument("--tag", help="the run (default: the board's latest)")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    stop = _command(
        sub, "stop", "swarm.stop:main", "end a run's processes (or one agent's); keeps worktrees and branches"
    )
    stop.add_argument("agent", nargs="?", help="stop only this agent (the coordinator leaves it down)")
    stop.add_argument("--tag", help="the run (default: the board's latest)")

    attach = _command(
        sub, "attach", "swarm.stop:attach_main", "show an agent's tmux window (detach: Ctrl-b d)"
    )
    attach.add_argument("agent", help="an agent (gpu3), its runner (runner-gpu3) or coordinator")
    attach.add_argument("--tag", help="the run (default: the board's latest)")

    clean = _command(
        sub, "clean", "swarm.clean:main", "remove a stopped run's worktrees that hold no unique commit"
    )
    clean.add_argument("--tag", help="the run (default: the board's latest)")

    demo = _command(
        sub, "demo", "swarm.demo:main", "offline demo: 2 CPU workers with the sweep agent on the tiny profile"
    )
    demo.add_argument("--minutes", type=float, default=3.0, help="how long the swarm runs (default: 3)")
    demo.add_argument("--workers", type=int, default=2, help="CPU workers (default: 2)")
    demo.add_argument("--dir", help="where the demo's clone goes (default: a new temporary directory)")

    coordinator = _command(
        sub,
        "coordinator",
        "swarm.coordinator:main",
        "supervise a run's windows (swarm spawn starts it in tmux)",
    )
    coordinator.add_argument("--tag", required=True)

    launch = _command(
        sub, "launch", "swarm.launch:main", "become the program of a run's window (the coordinator starts it)"
    )
    launch.add_argument("window", help="an agent name or runner-<agent>")
    launch.add_argument("--tag", required=True)


# ---------------------------------------------------------------------------------------------------------
# Watching, picking winners, plotting


def _add_watch_commands(sub) -> None:
    pass


# ---------------------------------------------------------------------------------------------------------
# Agents that run inside the swarm (built-in and API-driven)


def _add_agent_commands(sub) -> None:
    agent = sub.add_parser(
        "agent", help="run a built-in agent in the current worktree (the swarm starts these in tmux)"
    )
    kinds = agent.add_subparsers(dest="agent_kind", metavar="KIND", required=True)
    # `swarm agent sweep`: the built-in hyperparameter sweep agent (no LLM).
    _command(
        kinds, "sweep", "swarm.sweep:main", "hyperparameter sweep agent: one-factor changes and small waves"
    )
    # `swarm agent api`: a tool-use loop against an Anthropic or OpenAI(-compatible) model endpoint.
    _command(
        kinds, "api", "swarm.api_agent:main", "model-API agent: a bounded tool-use loop following program.md"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swarm",
        description="Run many autoresearch agents at once on one multi-GPU machine, sharing a discovery board.",
    )
    parser.add_argument("--version", action="version", version=f"swarm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_machine_commands(sub)
    _add_board_commands(sub)
    _add_swarm_commands(sub)
    _add_watch_commands(sub)
    _add_agent_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    module_name, function_name = args.handler.split(":")
    handler = getattr(importlib.import_module(module_name), function_name)
    try:
        return int(handler(args) or 0)
    except SwarmError as e:
        print(f"swarm: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
