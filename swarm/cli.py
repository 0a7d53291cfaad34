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
    api = _command(
        kinds, "api", "swarm.api_agent:main", "model-API agent: a bounded tool-use loop following program.md"
    )
    # Each flag overrides the key of the same name in the [api] table of swarm.toml.
    api.add_argument("--provider", choices=("anthropic", "openai", "openai-compatible"))
    api.add_argument("--model")
    api.add_argument("--base-url", help="endpoint, e.g. http://localhost:8000/v1 for a local server")
    api.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the API key")
    api.add_argument(
        "--openai-api", choices=("chat", "responses"), help="OpenAI protocol (default per provider)"
    )
    api.add_argument("--max-tokens", type=int, help="tokens per reply")
    api.add_argument("--budget-usd", type=float, help="stop spending at this many dollars (needs prices)")
    api.add_argument("--budget-tokens", type=int, help="stop spending at this many tokens")
    api.add_argument("--context-tokens", type=int, help="summarise older turns past this many tokens")
    api.add_argument("--max-turns", type=int, help="model requests in this session, then exit")
    api.add_argument(
        "--no-stream", dest="stream", action="store_const", const=False, help="do not stream replies"
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
