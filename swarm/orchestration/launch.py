"""What each window of a run runs, and `swarm launch WINDOW`, which becomes that program.

Every agent and runner window starts as `python -m swarm launch WINDOW --tag T`: it reads the run record,
builds the environment, working directory and command line (for an LLM agent: the first prompt, or the
resume prompt once it has run before), records a `process` start on the board, and execs the program
(or, for a CLI that prints JSON events, Claude Code and Codex, stays as its parent to relay them as
readable lines and record their usage: swarm.agents.relay). So tmux command lines stay short and secret-free, and the command that runs is decided at start time from
the board, which is what makes a restart (by the coordinator, or after the tmux server died) a resume.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarm.agents.kinds import agent_commands
from swarm.agents.prompts import initial_prompt, resume_prompt
from swarm.agents.relay import relay_to_board
from swarm.board.run_record import AgentEntry, SwarmRecord, open_run, require_agent
from swarm.board.slots import box_queue, is_class_queue, is_cpu_slot, local_gpu
from swarm.board.store import PROCESS, Board
from swarm.errors import GitError, SwarmError
from swarm.installation import swarm_argv
from swarm.orchestration.sealing import seal_agent
from swarm.repo.git import git_text
from swarm.repo.paths import RunPaths, run_paths
from swarm.runner.sandbox import BWRAP
from swarm.runner.service import runner_flags

COORDINATOR_WINDOW = "coordinator"
CLUSTER_RUNNER_WINDOW = (
    "runner-ray"  # a cluster run's one runner, on the head, for every GPU (swarm.runner.ray)
)


def runner_windows(run: SwarmRecord) -> list[str]:
    """The tmux windows of a run's runners: one per slot of a box (runner-gpu3), or the cluster's one."""
    if run.cluster:
        return [CLUSTER_RUNNER_WINDOW]
    return [f"runner-{name}" for name in run.worker_names()]


def agent_runner_windows(run: SwarmRecord, agent: AgentEntry) -> list[str]:
    """The runner windows that serve an agent's jobs: its class's slots (a box's agents share them), the
    cluster's runner, or (a run from before) its own slot's."""
    if run.cluster:
        return [CLUSTER_RUNNER_WINDOW]
    if is_class_queue(agent.queue):
        return [f"runner-{w.name}" for w in run.workers if box_queue(w.device) == agent.queue]
    return [f"runner-{agent.name}"]


@dataclass(frozen=True)
class WindowPlan:
    """A window the coordinator keeps alive: its name and where it starts."""

    name: str
    cwd: Path


def window_plans(run: SwarmRecord, paths: RunPaths) -> list[WindowPlan]:
    """The windows a run should have: each agent not stopped, in its worktree, and a runner per slot.
    Runners belong to slots, not agents: a stopped agent's jobs already queued still run."""
    agents = [WindowPlan(s.name, Path(s.worktree)) for s in run.agents if not s.stopped]
    runners = [WindowPlan(name, paths.repo) for name in runner_windows(run)]
    return agents + runners  # agents first: they are what `swarm spawn` waits for


def launcher_argv(tag: str, window: str) -> list[str]:
    return swarm_argv("launch", window, "--tag", tag)


def coordinator_argv(tag: str) -> list[str]:
    return swarm_argv("coordinator", "--tag", tag)


def pane_log(paths: RunPaths, window: str) -> Path:
    return paths.board / "logs" / "panes" / f"{window}.log"


def base_environment(run: SwarmRecord, paths: RunPaths) -> dict[str, str]:
    """The inherited environment (API keys included) with the swarm's own variables on top."""
    env = dict(os.environ)
    # The profile is the runner's to set for train.py, never an agent's (docs/trust.md).
    for name in ("AUTORESEARCH_PROFILE", "SWARM_AGENT", "SWARM_GPU", "CUDA_VISIBLE_DEVICES"):
        env.pop(name, None)
    bin_dir = str(Path(sys.executable).parent)  # so that `swarm` on PATH is this installation's
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["SWARM_TAG"] = run.tag
    env["SWARM_BOARD"] = str(paths.board)
    env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    return env


def runner_environment(run: SwarmRecord, slot: str, paths: RunPaths) -> dict[str, str]:
    """A CPU worker's trainer gets an equal share of the cores (unless OMP_NUM_THREADS is set): N
    trainers each using every core would slow each other down unevenly, and the time budget is
    measured in wall-clock seconds."""
    env = base_environment(run, paths)
    cpu_workers = sum(1 for s in run.slots() if is_cpu_slot(s))
    if is_cpu_slot(slot) and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // cpu_workers))
    return env


def agent_environment(run: SwarmRecord, agent: AgentEntry, paths: RunPaths) -> dict[str, str]:
    env = base_environment(run, paths)
    env["SWARM_AGENT"] = agent.name
    env["SWARM_GPU"] = agent.queue  # the env var keeps its name: agents and their tools read it
    env["CUDA_VISIBLE_DEVICES"] = local_gpu(agent.queue)
    return env


def is_launch(record: dict[str, Any], tag: str) -> bool:
    """Whether a board record is the `started` record the launcher writes for a window of run `tag`."""
    return record.get("type") == PROCESS and record.get("tag") == tag and record.get("event") == "started"


def has_started_before(records: list[dict[str, Any]], tag: str, window: str) -> bool:
    return any(is_launch(r, tag) and r.get("window") == window for r in records)


def worktree_head(worktree: Path) -> str:
    try:
        return git_text(worktree, "log", "-1", "--format=%h %s") or "unknown"
    except GitError:
        return "unknown"


def agent_prompt(
    run: SwarmRecord, slot: AgentEntry, board: Board, resume: bool, repo: Path | None = None
) -> str:
    if not resume:
        return initial_prompt(run, slot)
    from swarm.board.fold import BoardState
    from swarm.board.noise import NoiseSettings
    from swarm.config import load_section

    # the global best by the run's noise rule (a confirmed mean under `confirm`)
    state = BoardState(board, load_section(repo, "noise", NoiseSettings) if repo else None)
    state.refresh()
    best = state.best((slot.device, run.profile))
    return resume_prompt(
        run,
        slot,
        worktree_head(Path(slot.worktree)),
        state.experiments_of(slot.name),  # in submission order, as resume_prompt wants them
        best.as_json() if best else None,
    )


def plan_process(
    run: SwarmRecord, window: str, paths: RunPaths, board: Board, records: list[dict[str, Any]]
) -> tuple[list[str], Path, dict[str, str], bool]:
    """(argv, cwd, environment, resumed) of the program a window runs."""
    if window == CLUSTER_RUNNER_WINDOW and run.cluster:
        return swarm_argv("runner", "--ray", run.cluster), paths.repo, base_environment(run, paths), False
    if window.startswith("runner-"):
        worker = run.worker(window.removeprefix("runner-"))
        if worker is None:
            raise SwarmError(f"swarm {run.tag} has no runner window {window!r}")
        argv = swarm_argv("runner", *runner_flags(worker.slot))
        return argv, paths.repo, runner_environment(run, worker.slot, paths), False
    agent = require_agent(run, window)
    _, commands = agent_commands(paths.repo)
    if agent.kind not in commands:
        raise SwarmError(f"agent {agent.name}: unknown kind {agent.kind!r} (swarm.toml [agents.commands]?)")
    command = commands[agent.kind]
    command.check_installed()  # uninstalled since spawn: say how to install it, in the pane and its log
    resume = has_started_before(records, run.tag, window)
    prompt = agent_prompt(run, agent, board, resume, paths.repo)
    argv = command.argv(prompt=prompt, agent=agent.name, gpu=agent.queue, worktree=Path(agent.worktree))
    env = agent_environment(run, agent, paths) | command.environment()
    argv, env = seal_agent(run, agent, paths, command, argv, env)  # its sandbox, its own secrets only
    return argv, Path(agent.worktree), env, resume


def agent_events(run: SwarmRecord, window: str, paths: RunPaths) -> str | None:
    """The JSON event stream a window's program prints (AgentCommand.events): None for runners and for
    agents with plain output."""
    if window.startswith("runner-"):
        return None
    command = agent_commands(paths.repo)[1].get(require_agent(run, window).kind)
    return command.events if command else None


def cmd_launch(args) -> int:
    paths = run_paths()
    board = Board(paths.board).require()
    records = board.records()
    run = open_run(board, args.tag, records)
    argv, cwd, env, resumed = plan_process(run, args.window, paths, board, records)
    events = agent_events(run, args.window, paths)
    board.append(
        {
            "type": PROCESS,
            "tag": run.tag,
            "window": args.window,
            "event": "started",
            "pid": os.getpid(),
            "resume": resumed,
            "sandboxed": argv[0] == BWRAP,  # an agent of a sealed run (swarm.orchestration.sealing)
        }
    )
    os.chdir(cwd)
    if events:
        # Stay as the parent: the CLI's JSON events become readable lines here, its usage a board record.
        agent = require_agent(run, args.window)
        return relay_to_board(events, argv, env, board, agent=agent.name, tag=run.tag, queue=agent.queue)
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as e:
        raise SwarmError(f"cannot start {argv[0]}: {e.strerror}") from None
    return 127  # not reached: exec replaced this process
