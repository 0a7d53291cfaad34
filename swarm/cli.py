"""The `swarm` command line: a thin argparse layer; every command is a function in a module a test can call.

Handlers are named as "module:function" and imported only when their command runs, so `swarm --help`
and the agent commands stay fast (no torch or textual import). COMMAND_GROUPS is the one table of what
`swarm --help` shows: the commands for you, those for agents, and the internal ones swarm starts itself
(hidden, still working).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import shutil
import sys
import textwrap

from swarm import __version__
from swarm.errors import SwarmError

FOR_YOU = "Commands for you (in the repository):"
FOR_AGENTS = "Commands for agents (in their worktree; program.md tells them these):"
INTERNAL = ""  # started by swarm itself; they work, and `swarm --help` leaves them out

# Every command and its group, in the order `swarm --help` lists them: the one table of the surface.
COMMAND_GROUPS: dict[str, str] = {
    **dict.fromkeys(("spawn", "demo", "watch", "status", "stop", "resume", "attach", "clean"), FOR_YOU),
    **dict.fromkeys(("pick", "report", "plot", "transfer", "export", "doctor"), FOR_YOU),
    **dict.fromkeys(("run", "submit", "wait", "grid", "queue"), FOR_AGENTS),
    **dict.fromkeys(("best", "board", "adopt", "note", "verify"), FOR_AGENTS),
    **dict.fromkeys(("runner", "coordinator", "launch", "agent"), INTERNAL),
}


def _command(sub, name: str, handler: str, help: str, **kwargs) -> argparse.ArgumentParser:
    # No `help=` for top-level commands: argparse would list them all, flat; `_command_list` groups them.
    listed = {} if name in COMMAND_GROUPS else {"help": help}
    parser = sub.add_parser(name, description=help, **listed, **kwargs)
    parser.set_defaults(handler=handler)
    return parser


# ---------------------------------------------------------------------------------------------------------
# The research target (prepare.py / train.py) and the machine


def _add_machine_commands(sub) -> None:
    doctor = _command(
        sub,
        "doctor",
        "swarm.doctor:cmd_doctor",
        "check this machine: python, torch and CUDA, the driver, compiler, tmux, git, sandbox, data cache",
    )
    doctor.add_argument(
        "--smoke",
        action="store_true",
        help="run a few sealed, compiled steps on every GPU (or a CPU worker): trainer, export, evaluator",
    )
    doctor.add_argument(
        "--profile", help="with --smoke: the profile (default: AUTORESEARCH_PROFILE, else h100)"
    )


# ---------------------------------------------------------------------------------------------------------
# Board, jobs and runners


def _add_board_commands(sub) -> None:
    agent_side = "swarm.agents.commands:"
    results = "swarm.results.commands:"
    run = _command(
        sub, "run", agent_side + "cmd_run", "submit HEAD of this agent's worktree, wait, print the result"
    )
    submit = _command(
        sub, "submit", agent_side + "cmd_submit", "submit HEAD as an experiment and print its id at once"
    )
    submit.add_argument(
        "commits",
        nargs="*",
        metavar="COMMIT",
        help="commits of this worktree to submit as a wave (default: HEAD)",
    )
    grid = _command(
        sub,
        "grid",
        agent_side + "cmd_grid",
        "submit a wave: one commit per combination of train.py knobs (KNOB=a,b,c ...) from HEAD",
    )
    grid.add_argument("knobs", nargs="+", metavar="KNOB=a,b,c")
    grid.add_argument("-m", "--message", help="what the wave tries (each commit adds its knob values)")
    grid.add_argument("--rerun", action="store_true", help="run even contents already measured enough times")
    grid.add_argument("--json", action="store_true", help="print the records as JSON")
    queue = _command(
        sub,
        "queue",
        agent_side + "cmd_queue",
        "the class queues: slots, idle slots, depth, whose jobs; busy share",
    )
    queue.add_argument("--json", action="store_true")
    for parser in (run, submit):
        parser.add_argument("-m", "--message", required=True, help="what this experiment tries")
        parser.add_argument(
            "--rerun", action="store_true", help="run even if this train.py was already measured enough times"
        )
        parser.add_argument("--json", action="store_true", help="print the record as JSON")
    run.add_argument("--timeout", type=float, help="give up waiting after this many seconds")
    wait = _command(
        sub, "wait", agent_side + "cmd_wait", "wait for experiments' results (a whole wave) and print them"
    )
    wait.add_argument("id", nargs="+", help="experiment ids or unique prefixes")
    wait.add_argument("--timeout", type=float, help="give up after this many seconds (for the whole wave)")
    wait.add_argument(
        "--verdict", action="store_true", help="wait past `promising` until confirmation reruns decided it"
    )
    wait.add_argument("--json", action="store_true")
    best = _command(
        sub,
        "best",
        results + "cmd_best",
        "the best result per device class and profile (mean, sigma, runs, verified)",
    )
    best.add_argument("--json", action="store_true")
    board = _command(
        sub, "board", results + "cmd_board", "top results, runners and notes of the discovery board"
    )
    board.add_argument("--top", type=int, default=10, help="rows per device class and profile (default 10)")
    board.add_argument("--agent", help="only this agent's results, with its latest experiments and notes")
    board.add_argument("--json", action="store_true")
    adopt = _command(
        sub,
        "adopt",
        agent_side + "cmd_adopt",
        "move this agent's branch to an experiment's commit (refuses a dirty tree)",
    )
    adopt.add_argument(
        "target", metavar="ID|best", help="experiment id (prefix), or `best` of your device class"
    )
    adopt.add_argument("--json", action="store_true")
    note = _command(
        sub, "note", agent_side + "cmd_note", "share an insight on the board (shown by `swarm board`)"
    )
    note.add_argument("text", nargs="+")
    note.add_argument("--json", action="store_true")
    verify = _command(
        sub,
        "verify",
        agent_side + "cmd_verify",
        "rerun an experiment, preferring other slots; mark it verified if it holds (an agent's reruns are "
        "charged to it: at most 16 pending, one pending verification per experiment)",
    )
    verify.add_argument("id", help="experiment id or unique prefix")
    verify.add_argument("--repeats", type=int, default=1, help="number of reruns (default 1)")
    verify.add_argument("--wait", action="store_true", help="wait for the reruns and print the outcome")
    verify.add_argument(
        "--timeout", type=float, help="with --wait: give up after this many seconds per rerun"
    )
    verify.add_argument("--json", action="store_true")
    transfer = _command(
        sub,
        "transfer",
        "swarm.results.transfer:cmd_transfer",
        "train an experiment and the base at K x the budget, paired on one slot (a transfer check)",
    )
    transfer.add_argument("id", help="experiment id or unique prefix")
    transfer.add_argument(
        "--budget-x", type=float, default=2.0, metavar="K", help="times the profile's budget (default 2)"
    )
    transfer.add_argument("--lineage", action="store_true", help="check every step of its lineage too")
    transfer.add_argument("--json", action="store_true")
    export = _command(
        sub, "export", results + "cmd_export", "write results.tsv (upstream columns plus agent and id)"
    )
    export.add_argument("file", help="output path, or - for stdout")
    runner = _command(
        sub,
        "runner",
        "swarm.runner.service:cmd_runner",
        "run one slot's jobs in the foreground, one at a time",
    )
    slot = runner.add_mutually_exclusive_group(required=True)
    slot.add_argument("--gpu", metavar="K", help="serve GPU K (CUDA_VISIBLE_DEVICES=K)")
    slot.add_argument("--cpu", metavar="K", help="serve CPU worker K (slot cpuK, no GPU)")
    slot.add_argument(
        "--ray", metavar="ADDRESS", help="serve every GPU of a Ray cluster from its head (auto: this one's)"
    )
    runner.add_argument("--max-jobs", type=int, help="exit after this many jobs")


# ---------------------------------------------------------------------------------------------------------
# Spawning and supervising a swarm


def _add_swarm_commands(sub) -> None:
    spawn = _command(
        sub,
        "spawn",
        "swarm.orchestration.spawn:cmd_spawn",
        "start a swarm: a worktree and an agent per GPU (or CPU worker) in tmux",
    )
    where = spawn.add_mutually_exclusive_group()
    where.add_argument("--gpus", metavar="N|I,J,..", help="the first N GPUs, or these indices (default: all)")
    where.add_argument("--cpu", type=int, metavar="N", help="N CPU workers instead of GPUs (profile tiny)")
    where.add_argument(
        "--ray",
        metavar="ADDRESS|auto",
        help="the GPUs of a Ray cluster (this machine is its head): an agent per GPU here, runs on the nodes",
    )
    spawn.add_argument(
        "--agents",
        type=int,
        metavar="N",
        help="N agents sharing the GPUs (default: one per GPU or CPU worker)",
    )
    spawn.add_argument(
        "--validate-on",
        metavar="CLASS",
        help="with --ray: this device class (e.g. H200) validates each other class's new best",
    )
    spawn.add_argument(
        "--kind",
        metavar="KIND[:N],..",
        help="the agents' kind: claude, codex, sweep, optuna, api, a swarm.toml kind, or a mix like "
        "claude:6,optuna:2 (default: [agents] default)",
    )
    # The old spelling, next to --agents (a count) too easily misread; kept so existing scripts still run.
    spawn.add_argument("--agent", dest="kind", help=argparse.SUPPRESS)
    spawn.add_argument(
        "--tag",
        help="the swarm's name: branches swarm/<tag>/<agent>/work (default: the board's swarm, or today)",
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
    spawn.add_argument(
        "--unsealed",
        action="store_true",
        help="run trainers and agents without a sandbox (where bubblewrap cannot run); results say so",
    )

    resume = _command(
        sub,
        "resume",
        "swarm.orchestration.spawn:cmd_resume",
        "bring a stopped or broken swarm back, as it was",
    )
    resume.add_argument("--tag", help="the swarm (default: the board's latest)")
    resume.add_argument(
        "--no-wait", action="store_true", help="return without waiting for the agents to start"
    )
    resume.add_argument(
        "--unsealed",
        action="store_true",
        help="go on without sandboxes (where bubblewrap no longer runs); results from now on say so",
    )

    status = _command(
        sub,
        "status",
        "swarm.orchestration.status:cmd_status",
        "per agent: kind, GPU, state, current experiment, best",
    )
    status.add_argument("--tag", help="the swarm (default: the board's latest)")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    stop = _command(
        sub,
        "stop",
        "swarm.orchestration.stop:cmd_stop",
        "end a swarm's processes (or one agent's); keeps worktrees and branches",
    )
    stop.add_argument("agent", nargs="?", help="stop only this agent (the coordinator leaves it down)")
    stop.add_argument("--tag", help="the swarm (default: the board's latest)")

    attach = _command(
        sub, "attach", "swarm.orchestration.stop:cmd_attach", "show an agent's tmux window (detach: Ctrl-b d)"
    )
    attach.add_argument("agent", help="an agent (gpu3), its runner (runner-gpu3) or coordinator")
    attach.add_argument("--tag", help="the swarm (default: the board's latest)")

    clean = _command(
        sub,
        "clean",
        "swarm.orchestration.clean:cmd_clean",
        "remove a stopped swarm's worktrees that hold no unique commit",
    )
    clean.add_argument("--tag", help="the swarm (default: the board's latest)")

    demo = _command(
        sub,
        "demo",
        "swarm.demo:cmd_demo",
        "offline demo: 2 CPU workers with the sweep agent on the tiny profile",
    )
    demo.add_argument("--minutes", type=float, default=3.0, help="how long the swarm runs (default: 3)")
    demo.add_argument("--workers", type=int, default=2, help="CPU workers (default: 2)")
    demo.add_argument(
        "--settle",
        type=float,
        default=2.0,
        metavar="MIN",
        help="then wait up to this long for confirmations already under way (default: 2)",
    )
    demo.add_argument("--dir", help="where the demo's clone goes (default: a new temporary directory)")

    coordinator = _command(
        sub,
        "coordinator",
        "swarm.orchestration.coordinator:cmd_coordinator",
        "supervise a swarm's windows (swarm spawn starts it in tmux)",
    )
    coordinator.add_argument("--tag", required=True)

    launch = _command(
        sub,
        "launch",
        "swarm.orchestration.launch:cmd_launch",
        "become the program of a swarm's window (the coordinator starts it)",
    )
    launch.add_argument("window", help="an agent name or runner-<agent>")
    launch.add_argument("--tag", required=True)


# ---------------------------------------------------------------------------------------------------------
# Watching, picking winners, plotting


def _add_watch_commands(sub) -> None:
    watch = _command(
        sub,
        "watch",
        "swarm.tui.app:cmd_watch",
        "watch the swarm in a terminal UI: agents, leaderboard, progress",
    )
    watch.add_argument("--interval", type=float, default=1.0, help="seconds between board reads (default 1)")
    pick = _command(
        sub,
        "pick",
        "swarm.results.pick:cmd_pick",
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
        "swarm.results.plot:cmd_plot",
        "draw the swarm's progress (every experiment, the running best) as a PNG",
    )
    plot.add_argument("file", nargs="?", default="progress.png", help="output PNG (default progress.png)")

    report = _command(
        sub,
        "report",
        "swarm.results.report:cmd_report",
        "write the swarm's story as Markdown: headline, progress plot, the best's lineage, what did not work, "
        "agents, cost, how to pick the best",
    )
    report.add_argument(
        "--out", metavar="DIR", help="where report.md and progress.png go (default report-<tag>)"
    )
    report.add_argument(
        "--gpu-price",
        type=float,
        metavar="USD",
        help="dollars per GPU-hour, to price the cost per improvement",
    )
    report.add_argument("--no-plot", action="store_true", help="leave out the progress plot (no matplotlib)")


# ---------------------------------------------------------------------------------------------------------
# Agents that run inside the swarm (built-in and API-driven)


def _add_agent_commands(sub) -> None:
    agent = sub.add_parser(
        "agent", description="run a built-in agent in the current worktree (the swarm starts these in tmux)"
    )
    kinds = agent.add_subparsers(dest="agent_kind", metavar="KIND", required=True)
    # `swarm agent sweep`: the built-in hyperparameter sweep agent (no LLM).
    sweep = _command(
        kinds,
        "sweep",
        "swarm.agents.sweep.agent:cmd_sweep",
        "hyperparameter sweep agent: one-factor changes and small waves",
    )
    sweep.add_argument("--max-experiments", type=int, help="stop after submitting this many (default: never)")
    sweep.add_argument(
        "--queue",
        type=int,
        help="experiments kept in flight (default: a wave filling its share of the class's slots, at least 2)",
    )
    # `swarm agent optuna`: Bayesian optimisation of the same block, one study shared by a swarm's optuna agents.
    bayes = _command(
        kinds,
        "optuna",
        "swarm.agents.optuna.agent:cmd_optuna",
        "Optuna agent: TPE (or random) search of train.py's hyperparameters, one study per run",
    )
    bayes.add_argument("--max-experiments", type=int, help="stop after submitting this many (default: never)")
    bayes.add_argument("--queue", type=int, default=2, help="experiments kept in flight (default 2)")
    # `swarm agent api`: a tool-use loop against an Anthropic or OpenAI(-compatible) model endpoint.
    api = _command(
        kinds,
        "api",
        "swarm.agents.api.agent:cmd_api",
        "model-API agent: a bounded tool-use loop following program.md",
    )
    api.add_argument("--prompt", help="the task to start with (the swarm passes its first or resume prompt)")
    # Its settings are the [api] table of swarm.toml only: the swarm starts it with --prompt alone, and one
    # place to set a key leaves no doubt which value a running agent used.


class _Dropped:
    """The parser of a command that is not being run: every call is accepted and nothing is built."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: self


class _OnlyCommand:
    """The subcommand table, building only the parser of `command`: agents run `swarm best` and `swarm
    board` all night, and building all 28 parsers would cost them more than answering."""

    def __init__(self, sub, command: str):
        self.sub, self.command, self.found = sub, command, False

    def add_parser(self, name: str, **kwargs):
        if name != self.command:
            return _Dropped()
        self.found = True
        return self.sub.add_parser(name, **kwargs)


def build_parser(command: str | None = None) -> argparse.ArgumentParser | None:
    """The command line; with `command`, only that command's parser (None when there is no such command)."""
    parser = argparse.ArgumentParser(
        prog="swarm",
        usage="swarm [-h] [--version] COMMAND ...",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="`swarm COMMAND --help` shows a command's flags; README.md and docs/ tell the rest.",
    )
    parser.add_argument("--version", action="version", version=f"swarm {__version__}")
    # prog: each command's usage reads `swarm spawn ...`, not the top-level usage written above.
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", prog="swarm", help=argparse.SUPPRESS)
    table = _OnlyCommand(sub, command) if command else sub
    _add_machine_commands(table)
    _add_board_commands(table)
    _add_swarm_commands(table)
    _add_watch_commands(table)
    _add_agent_commands(table)
    if command:  # a command's own parser: the list of commands is for `swarm --help` only
        return parser if table.found else None
    parser.description = PITCH + "\n\n" + _command_list(sub.choices)
    return parser


PITCH = "Run many autoresearch agents at once on one multi-GPU machine, sharing a discovery board."


def _command_list(parsers: dict[str, argparse.ArgumentParser]) -> str:
    """The commands of COMMAND_GROUPS, group by group, each with its description."""
    width = min(100, shutil.get_terminal_size().columns - 2)
    name_width = max(len(name) for name in COMMAND_GROUPS) + 2
    blocks = []
    for group in dict.fromkeys(COMMAND_GROUPS.values()):
        if group == INTERNAL:
            continue
        lines = [group]
        for name in (n for n, g in COMMAND_GROUPS.items() if g == group and n in parsers):
            lines += textwrap.wrap(
                parsers[name].description or "",
                width,
                initial_indent="  " + name.ljust(name_width),
                subsequent_indent=" " * (name_width + 2),
            )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv and not argv[0].startswith("-") else None
    parser = build_parser(command) if command else build_parser()
    if parser is None:  # argparse would list the hidden commands too
        close = difflib.get_close_matches(command or "", [n for n, g in COMMAND_GROUPS.items() if g], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        print(f"swarm: no command {command!r}{hint}; `swarm --help` lists them", file=sys.stderr)
        return 2
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
