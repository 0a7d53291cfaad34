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
    pass


# ---------------------------------------------------------------------------------------------------------
# Watching, picking winners, plotting


def _add_watch_commands(sub) -> None:
    pick = _command(
        sub,
        "pick",
        "swarm.pick:main",
        "commit an experiment's train.py onto a branch (default: the main worktree's branch)",
    )
    pick.add_argument("id", help="experiment id (a unique prefix is enough)")
    pick.add_argument("--onto", metavar="BRANCH", help="target branch (default: the main worktree's branch)")
    pick.add_argument(
        "--mode",
        choices=("train", "cherry-pick"),
        default="train",
        help="train: take the experiment's whole train.py (default); cherry-pick: only its own change",
    )

    plot = _command(
        sub,
        "plot",
        "swarm.plot:main",
        "draw the run's progress (every experiment, the running best) as a PNG",
    )
    plot.add_argument("file", nargs="?", default="progress.png", help="output PNG (default progress.png)")


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
