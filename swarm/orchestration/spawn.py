"""`swarm spawn` and `swarm resume`: turn a repository into a running swarm, or bring a run back.

Spawning a new run: pick the slots (GPUs or CPU workers), the agent kind of each, the base commit; make a
worktree and branch per agent; write the run record; start the run's tmux server with the coordinator,
which starts every agent and runner window; wait until every agent is running. Spawning a run that
exists (same tag) is resuming it: the same worktrees and branches, the same board, and windows only
for what is not already running, so nothing is duplicated.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from filelock import FileLock

from swarm.agents.kinds import agent_commands, assign_kinds
from swarm.board.run_record import AgentEntry, SwarmRecord, Worker, latest_run, validate_tag, write_run_record
from swarm.board.signing import create_key
from swarm.board.slots import box_queue, is_class_queue, is_cpu_slot, is_ray_queue
from swarm.board.store import Board
from swarm.errors import SandboxError, SwarmError
from swarm.orchestration.cluster import cluster_places, plan_agents
from swarm.orchestration.crashes import last_output
from swarm.orchestration.gpus import AgentPlace, detect_gpus, select_slots
from swarm.orchestration.launch import (
    COORDINATOR_WINDOW,
    coordinator_argv,
    is_launch,
    launcher_argv,
    pane_log,
)
from swarm.orchestration.settings_check import check_config
from swarm.orchestration.tmux import RunTmux, TmuxError, require_tmux
from swarm.repo.paths import RunPaths, agent_branch, run_paths, validate_agent_name
from swarm.repo.worktrees import GitRepo
from swarm.runner.sandbox import sandbox_problem
from swarm.runner.sealed import spawn_pins

POLL_S = 0.2
SETTLE_S = 3.0  # an agent counts as running once its process stayed up this long


@dataclass(frozen=True)
class SpawnRequest:
    gpus: str | None = None  # "8" or "0,2,5"
    cpu: int | None = None
    agent: str | None = None  # "claude", "claude:4,codex:4", ...
    tag: str | None = None
    base: str | None = None
    profile: str | None = None  # default: h100 on GPUs, tiny on CPU workers
    ray: str | None = None  # a Ray cluster's address ("auto"): its GPUs are the slots, the agents run here
    agents: int | None = None  # with ray: fewer agents than screening GPUs (they submit ahead)
    validate_on: str | None = None  # with ray: the device class that validates new bests
    wait: bool = True
    timeout_s: float | None = None  # default: 30 s + 1 s per agent
    unsealed: bool = False  # run without sandboxes (a sealed run resumed with it goes on unsealed)

    @property
    def names_slots(self) -> bool:
        return any(
            v is not None
            for v in (self.gpus, self.cpu, self.agent, self.profile, self.ray, self.agents, self.validate_on)
        )


def default_tag() -> str:
    return time.strftime("%b%d").lower()  # "mar5", as upstream autoresearch names its runs


def spawn(request: SpawnRequest, cwd: Path | None = None, out=print) -> SwarmRecord:
    """Create or resume a run and start its processes; returns the run record."""
    paths = run_paths(cwd)
    check_config(paths.repo)  # a mistake in any section of swarm.toml stops here, before a window starts
    repo = GitRepo(paths.repo)
    if not repo.has_commits():
        raise SwarmError(f"{paths.repo} has no commits yet: commit train.py and prepare.py first")
    require_tmux()
    board = Board(paths.board).create()
    if not board.path.stat().st_size:
        create_key(board.directory)  # a new board is signed from its first line (swarm.board.signing)
    with FileLock(str(board.directory / "spawn.lock")):  # two spawns at once would race on worktrees
        run = _desired_run(request, paths, repo, board)
        require_sandbox(run)
        _, commands = agent_commands(paths.repo)
        for kind in sorted({agent.kind for agent in run.agents}):
            if kind not in commands:  # a kind swarm.toml named when the run was spawned, and no longer does
                raise SwarmError(f"unknown agent kind {kind!r} (known: {', '.join(sorted(commands))})")
            commands[kind].check_installed()
        for agent in run.agents:
            how = repo.ensure_worktree(Path(agent.worktree), agent.branch, run.base)
            out(
                f"  {agent.name:<6} {agent.kind:<7} {_device(agent):<32} {_short(paths, agent.worktree)}  {agent.branch}  ({how})"
            )
        if latest_run(board.records(), run.tag) != run:
            write_run_record(board, run)
        tmux = RunTmux(paths.repo, run.tag)
        started_at = time.time()
        _start_coordinator(tmux, paths, run.tag)
        _restart_dead_agents(tmux, paths, run)
    out(f"tmux: {tmux.socket} (session {run.tag}); coordinator started")
    if run.unsealed:
        out(
            "unsealed: trainers and agents run without a sandbox; every result from now on is marked unsealed"
        )
    if request.wait:
        timeout = request.timeout_s if request.timeout_s is not None else 30.0 + len(run.agents)
        wait_for_agents(tmux, paths, board, run, timeout)
        out(f"all {len(run.agents)} agents running ({time.time() - started_at:.1f} s)")
    return run


def require_sandbox(run: SwarmRecord) -> None:
    """A sealed run needs sandboxes that work here: one line saying why not, and what to do."""
    problem = None if run.unsealed else sandbox_problem()
    if problem:
        raise SandboxError(
            f"no sandbox: {problem}. Pass --unsealed to run without one (every result is then marked unsealed)"
        )


def _desired_run(request: SpawnRequest, paths: RunPaths, repo: GitRepo, board: Board) -> SwarmRecord:
    """The run as it should be: the board's (every agent running again), or a new one."""
    records = board.records()
    latest = latest_run(records)
    existing = latest.tag if latest else None
    tag = validate_tag(request.tag or existing or default_tag())
    if existing and tag != existing:
        raise SwarmError(
            f"the board {paths.board} holds run {existing!r}: resume it with `swarm resume`, or move the board"
            f" away (or set SWARM_BOARD) and `swarm clean` before starting run {tag!r}"
        )
    run = latest_run(records, tag)
    if run is not None:
        if request.base and repo.resolve(request.base) != run.base:
            raise SwarmError(f"swarm {tag} is based on {run.base[:12]}, not {request.base}; use a new --tag")
        if request.names_slots:
            wanted = _new_run(request, tag, run.base, paths)
            if _shape(wanted) != _shape(run):
                raise SwarmError(
                    f"swarm {tag} has agents {_describe(run)}, not {_describe(wanted)}: "
                    "`swarm resume` it as it is, or start a new run on another board"
                )
        # a sealed run goes on unsealed only when asked (its results from then on say so); never back
        unsealed = run.unsealed or request.unsealed
        run = replace(run, agents=tuple(replace(a, stopped=False) for a in run.agents), unsealed=unsealed)
        if run.prepare_sha256 is None or run.data_sha256 is None:  # a run from before the pins, or unprepared
            prepare_sha256, data_sha256 = spawn_pins(paths.repo, run.base, run.profile)
            run = replace(
                run,
                prepare_sha256=run.prepare_sha256 or prepare_sha256,
                data_sha256=run.data_sha256 or data_sha256,
            )
        return run
    if request.base is None:
        dirty = repo.dirty_tracked_files()
        if dirty:
            raise SwarmError(
                f"uncommitted changes in {', '.join(dirty[:3])}: agents start from the last commit, so commit"
                " them first (or pass --base HEAD to start from it anyway)"
            )
    return _new_run(request, tag, repo.resolve(request.base or "HEAD"), paths)


def _new_run(request: SpawnRequest, tag: str, base: str, paths: RunPaths) -> SwarmRecord:
    workers: tuple[Worker, ...] = ()
    if request.ray is not None:
        planned = cluster_places(request.ray, request.agents, request.validate_on)
    elif request.validate_on is not None:
        raise SwarmError("--validate-on goes with --ray (a cluster's class that validates new bests)")
    else:
        places = select_slots(request.gpus, request.cpu, [] if request.cpu is not None else detect_gpus())
        workers = tuple(Worker(p.agent, p.queue, p.device) for p in places)
        planned = box_agents(places, request.agents)
    settings, commands = agent_commands(paths.repo)
    kinds = assign_kinds(request.agent or settings.default, len(planned), commands)
    profile = request.profile or ("tiny" if request.cpu is not None else "h100")
    agents = tuple(
        AgentEntry(
            name=validate_agent_name(place.agent),
            kind=kind,
            queue=place.queue,
            device=place.device,
            worktree=str(paths.worktrees / place.agent),
            branch=agent_branch(tag, place.agent),
        )
        for place, kind in zip(planned, kinds, strict=True)
    )
    prepare_sha256, data_sha256 = spawn_pins(paths.repo, base, profile)
    return SwarmRecord(
        tag=tag,
        base=base,
        profile=profile,
        agents=agents,
        unsealed=request.unsealed,
        prepare_sha256=prepare_sha256,
        data_sha256=data_sha256,
        cluster=request.ray,
        validate_on=request.validate_on,
        workers=workers,
    )


def box_agents(places: list[AgentPlace], agents: int | None) -> list[AgentPlace]:
    """The agents of a box: none owns a slot, each queues for its device class (box_queue), which every
    slot of the class serves. One per slot by default, named after it (gpu3, cpu0) as always; `--agents N`
    names them per class instead (fake-gpu-0, cpu-1), spread over the classes in turn."""
    if agents is None:
        return [AgentPlace(p.agent, box_queue(p.device), p.device) for p in places]
    return plan_agents([p.device for p in places], agents, None, queue=box_queue)


def _shape(run: SwarmRecord) -> tuple:
    workers = tuple((w.name, w.slot) for w in run.workers)
    return run.profile, run.validate_on, tuple((a.name, a.kind, a.queue) for a in run.agents), workers


def _describe(run: SwarmRecord) -> str:
    kinds = Counter(a.kind for a in run.agents)
    names = ",".join(a.name for a in run.agents)
    return f"{names} ({', '.join(f'{k}:{n}' for k, n in kinds.items())}, profile {run.profile})"


def _device(agent: AgentEntry) -> str:
    if is_ray_queue(agent.queue):
        return f"any {agent.device} GPU of the cluster"
    if is_class_queue(agent.queue):
        return f"any {agent.device} slot" if agent.device != "cpu" else "any CPU worker"
    return "CPU worker" if is_cpu_slot(agent.queue) else f"GPU {agent.queue} {agent.device}"


def _short(paths: RunPaths, path: str) -> str:
    p = Path(path)
    return str(p.relative_to(paths.repo)) if p.is_relative_to(paths.repo) else str(p)


def _start_coordinator(tmux: RunTmux, paths: RunPaths, tag: str) -> None:
    """Start the server with the coordinator, or bring back a coordinator that died (kill -9)."""
    argv, log = coordinator_argv(tag), pane_log(paths, COORDINATOR_WINDOW)
    if not tmux.is_running():
        tmux.kill_server()  # clears a socket a killed server left behind
        env = {"SWARM_BOARD": str(paths.board), "SWARM_TAG": tag}
        tmux.start(COORDINATOR_WINDOW, argv, paths.repo, log, env)
        return
    pane = tmux.panes().get(COORDINATOR_WINDOW)
    if pane is None:
        tmux.new_window(COORDINATOR_WINDOW, argv, paths.repo, log)
    elif pane.dead:
        tmux.respawn(COORDINATOR_WINDOW, argv, paths.repo, log)


def _restart_dead_agents(tmux: RunTmux, paths: RunPaths, run: SwarmRecord) -> None:
    """A resume brings back every agent whose pane is dead now, a crash loop the coordinator gave up on
    included (it watches the new process anew)."""
    panes = tmux.panes()
    for agent in run.agents:
        pane = panes.get(agent.name)
        if not agent.stopped and pane is not None and pane.dead:
            # the coordinator may respawn it at the same moment: tmux refuses the second, either is fine
            with contextlib.suppress(TmuxError):
                tmux.respawn(
                    agent.name,
                    launcher_argv(run.tag, agent.name),
                    Path(agent.worktree),
                    pane_log(paths, agent.name),
                )


def wait_for_agents(tmux: RunTmux, paths: RunPaths, board: Board, run: SwarmRecord, timeout_s: float) -> None:
    """Until every agent that should run has a pane whose process the launcher started, alive for
    SETTLE_S: an agent that dies at start is reported with its own last line, never as running."""
    reader = board.reader()
    started: dict[str, int] = {}  # window -> pid of its latest launch
    alive_since: dict[tuple[str, int], float] = {}  # (window, pid) -> when first seen alive
    deadline = time.monotonic() + timeout_s
    while True:
        records = reader.read_new()
        for r in records:
            if is_launch(r, run.tag):
                started[r["window"]] = r.get("pid")
        panes, now = tmux.panes(), time.monotonic()
        waiting = []
        for a in run.agents:
            pane = panes.get(a.name)
            if a.stopped:
                continue
            if pane is None or started.get(a.name) != pane.pid:
                waiting.append(a.name)
            elif pane.dead:
                if pane.exit_status:
                    raise SwarmError(_died_at_start(tmux, paths, a.name, pane.exit_status))
                if pane.exit_status is None:  # no status (yet, or a signal): its next life tells
                    waiting.append(a.name)
                # a session that ended cleanly (status 0) ran: an API agent's few turns can end within
                # SETTLE_S, and waiting on its next life could outlast the timeout
            elif now - alive_since.setdefault((a.name, pane.pid), now) < SETTLE_S:
                waiting.append(a.name)
        if not waiting:
            return
        if now > deadline:
            raise SwarmError(
                f"agents not running after {timeout_s:.0f} s: {', '.join(waiting)}{_where(paths, waiting[0])}"
            )
        time.sleep(POLL_S)


def _died_at_start(tmux: RunTmux, paths: RunPaths, window: str, exit_status: int) -> str:
    reason = last_output(tmux, window, pane_log(paths, window)) or "no output"
    return f"agent {window} exited at start (status {exit_status}): {reason}{_where(paths, window)}"


def _where(paths: RunPaths, window: str) -> str:
    """Where to read more: the pane's log when it exists, else `swarm status`."""
    log = pane_log(paths, window)
    return f" (log: {log})" if log.exists() else " (see `swarm status`)"


def cmd_spawn(args) -> int:
    request = SpawnRequest(
        gpus=args.gpus,
        cpu=args.cpu,
        agent=args.kind,
        tag=args.tag,
        base=args.base,
        profile=args.profile,
        ray=args.ray,
        agents=args.agents,
        validate_on=args.validate_on,
        wait=not args.no_wait,
        unsealed=args.unsealed,
    )
    spawn(request)
    return 0


def cmd_resume(args) -> int:
    paths = run_paths()
    check_config(paths.repo)
    board = Board(paths.board)
    if not board.exists() or latest_run(board.records(), args.tag) is None:
        which = f"swarm {args.tag}" if args.tag else "swarm"
        raise SwarmError(f"no {which} to resume on the board {paths.board}: start one with `swarm spawn`")
    spawn(SpawnRequest(tag=args.tag, wait=not args.no_wait, unsealed=args.unsealed))
    return 0
