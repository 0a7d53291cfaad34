"""`swarm status [--json]`: per agent, its kind, slot, process state, current experiment, results and best;
then the class queues (slots, idle, depth, whose jobs) and each slot's busy share over the run.

Process states come from the run's tmux panes; results from the board, folded by swarm.board.fold.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from swarm.board.checkpoint import open_state
from swarm.board.experiments import PROMISING, PRUNED, group_of
from swarm.board.fold import BoardState
from swarm.board.ledger import USAGE_FIELDS, Totals, board_totals
from swarm.board.noise import NoiseSettings
from swarm.board.slots import is_class_queue
from swarm.board.store import Board
from swarm.config import load_section
from swarm.orchestration.agent_state import (
    CRASHED,
    WINDOW_DOWN,
    WINDOW_RUNNING,
    Liveness,
    agent_state,
    window_state,
)
from swarm.orchestration.crashes import crash_reason, last_output
from swarm.orchestration.launch import COORDINATOR_WINDOW, agent_runner_windows, is_launch, pane_log
from swarm.orchestration.tmux import RunTmux
from swarm.repo.paths import RunPaths, run_paths
from swarm.results.display import escape_text, format_number, mean_text
from swarm.results.queues import queue_json, render_queues
from swarm.results.standing import kept_changes

DESCRIPTION_CHARS = 48


@dataclass(frozen=True)
class AgentStatus:
    name: str
    kind: str
    gpu: str
    device: str
    state: str  # swarm.orchestration.agent_state: training | waiting | thinking | crashed | dead | stopped
    runner: str  # running | dead | down
    restarts: int
    experiments: int  # submitted, any status
    counts: dict[str, int]  # status -> experiments in it
    kept: int  # its own changes kept (its baseline, calibration and control reruns are not: standing.kind_of)
    queued: int
    current: dict[str, Any] | None  # {id, description, val_bpb, elapsed_s} of its running experiment
    best: dict[str, Any] | None  # the same of its best result, with its train.py's mean, sigma and n
    # The cost ledger (swarm.board.ledger): model usage from its usage records, GPU time from its runs.
    # usage: {requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd}
    usage: dict[str, Any]
    gpu_seconds: float  # started_at to finished_at, summed over its finished experiments
    saved_seconds: float  # training time its pruned runs did not spend (swarm.runner.pruning)
    # crashed: the last line it printed, "crash loop: <that line>" once the coordinator stopped restarting it
    reason: str | None = None


@dataclass(frozen=True)
class SwarmStatus:
    tag: str
    base: str
    profile: str
    tmux: str  # running | down
    socket: str
    coordinator: str
    agents: list[AgentStatus]
    noise_rule: str  # "confirm" (screen, then confirmation reruns) or "single" (swarm.board.noise)
    bests: list[dict[str, Any]]  # the best of each device class and profile, as `swarm best --json`
    # the class queues (slots, idle, depth, whose jobs) and each slot's busy share (swarm.results.queues)
    queues: list[dict[str, Any]] = field(default_factory=list)
    slots: list[dict[str, Any]] = field(default_factory=list)
    queue_lines: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _brief(experiment: dict[str, Any] | None, now: float) -> dict[str, Any] | None:
    """The fields status shows of an experiment (elapsed: since its run started, if it did)."""
    if experiment is None:
        return None
    started = experiment.get("started_at")
    return {
        "id": experiment["id"],
        "description": experiment.get("description"),
        "val_bpb": experiment.get("val_bpb"),
        "elapsed_s": round(now - started, 1) if started else None,
        "gpu": experiment.get("gpu"),  # where it runs or ran (on a cluster: node id / slot)
        "node": experiment.get("node"),
    }


def collect(paths: RunPaths, tag: str | None = None, state: BoardState | None = None) -> SwarmStatus:
    board = Board(paths.board).require()
    if state is None:
        state = open_state(board, load_section(paths.repo, "noise", NoiseSettings))
    state.refresh()
    run = state.find_run(tag)
    tmux = RunTmux(paths.repo, run.tag)
    panes = tmux.panes()
    server_up = bool(panes)
    liveness = Liveness(server_up, panes)
    coordinator = window_state(panes.get(COORDINATOR_WINDOW), server_up, supervised=False)
    supervised = coordinator == WINDOW_RUNNING
    starts = Counter(r.get("window") for r in state.other if is_launch(r, run.tag))
    now = time.time()
    ledger = board_totals(state, tag=run.tag)
    saved = saved_seconds(state, run.tag)
    kept = kept_changes(e for e in state.experiments.values() if e.get("tag") in (None, run.tag))
    agents = []
    for entry in run.agents:
        summary = state.agent_summary(entry.name)
        current = None if is_class_queue(entry.queue) else state.running(entry.queue)
        if current is None and summary is not None and summary.current and is_class_queue(entry.queue):
            current = state.experiments.get(summary.current)  # on whichever slot of its class took it
        # a class's queue holds every agent's jobs of the class: count this agent's own
        queued = sum(1 for j in state.queue(entry.queue) if j.get("agent") == entry.name)
        windows = agent_runner_windows(run, entry)
        runners = [window_state(panes.get(w), server_up, supervised) for w in windows]
        doing, _ = agent_state(entry, liveness, current is not None, queued)
        reason = (
            crash_reason(
                last_output(tmux, entry.name, pane_log(paths, entry.name)), state.other, entry.name, run.tag
            )
            if doing == CRASHED
            else None
        )
        best = state.experiments.get(summary.best) if summary and summary.best else None
        totals = ledger.get(entry.name, Totals())
        agents.append(
            AgentStatus(
                name=entry.name,
                kind=entry.kind,
                gpu=entry.queue,
                device=entry.device,
                state=doing,
                runner=WINDOW_RUNNING
                if WINDOW_RUNNING in runners
                else (runners[0] if runners else WINDOW_DOWN),
                restarts=max(0, starts[entry.name] - 1),
                experiments=summary.submitted if summary else 0,
                counts=dict(summary.counts) if summary else {},
                kept=kept.get(entry.name, 0),
                queued=queued,
                current=_brief(current, now),
                best=_best_brief(state, best, now),
                usage=totals.usage_json(),
                gpu_seconds=round(totals.gpu_seconds, 1),
                saved_seconds=round(saved.get(entry.name, 0.0), 1),
                reason=reason,
            )
        )
    return SwarmStatus(
        tag=run.tag,
        base=run.base,
        profile=run.profile,
        tmux=WINDOW_RUNNING if server_up else WINDOW_DOWN,
        socket=str(tmux.socket),
        coordinator=coordinator,
        agents=agents,
        noise_rule=state.noise.rule,
        bests=[best.as_json() for best in state.bests().values()],
        **queue_json(state, run),
        queue_lines=render_queues(state, run),
    )


def _best_brief(state: BoardState, experiment: dict[str, Any] | None, now: float) -> dict[str, Any] | None:
    """An agent's best: its experiment, and the mean, sigma and n of its train.py (what a best is)."""
    brief = _brief(experiment, now)
    if brief is not None:
        content = state.content(group_of(experiment), experiment["train_sha256"])
        brief.update(
            mean=content.mean if content else experiment.get("val_bpb"),
            sigma=content.sigma if content else None,
            n=content.n if content else 1,
        )
    return brief


def saved_seconds(state: BoardState, tag: str | None = None) -> dict[str, float]:
    """Training seconds that early stopping saved, by agent (the `saved_seconds` of pruned runs)."""
    out: dict[str, float] = {}
    for e in state.experiments.values():
        if e.get("status") == PRUNED and (tag is None or e.get("tag") in (None, tag)):
            out[e.get("agent")] = out.get(e.get("agent"), 0.0) + float(e.get("saved_seconds") or 0.0)
    return out


def render(status: SwarmStatus) -> list[str]:
    gw = max([5] + [len(a.gpu) for a in status.agents]) + 1  # a cluster's class queue: "ray:H100"
    lines = [
        f"swarm {escape_text(status.tag)}  base {escape_text(status.base[:10])}  profile {escape_text(status.profile)}  "
        f"tmux {status.tmux}  coordinator {status.coordinator}",
        f"{'AGENT':<7}{'KIND':<8}{'GPU':<{gw}}{'STATE':<11}{'RUNNER':<9}{'EXPS':>5}{'KEEP':>5}{'PROM':>5}{'QUEUE':>6}"
        f"{'TOKENS':>8}{'COST':>9}{'GPU-H':>7}  {'BEST (n)':<15}CURRENT",
    ]
    for a in status.agents:
        best = f"{format_number(a.best['mean'])} n={a.best['n']}" if a.best else "-"
        current = (
            f"{escape_text(a.current['id'])} {a.current['elapsed_s'] or 0:.0f}s"
            + (
                f" on {escape_text(a.current['node'])} slot {escape_text(a.current['gpu'])}"
                if a.current.get("node")
                else ""
            )
            + f" {escape_text(a.current['description'], DESCRIPTION_CHARS)}"
            if a.current
            else "-"
        )
        state = escape_text(a.state) + (f"+{a.restarts}" if a.restarts else "")
        name, kind, gpu = escape_text(a.name), escape_text(a.kind), escape_text(a.gpu)
        lines.append(
            f"{name:<7}{kind:<8}{gpu:<{gw}}{state:<11}{escape_text(a.runner):<9}{a.experiments:>5}"
            f"{a.kept:>5}{a.counts.get(PROMISING, 0):>5}{a.queued:>6}{_tokens(a.usage):>8}{_cost(a.usage):>9}"
            f"{a.gpu_seconds / 3600:>7.2f}  {best:<15}{current}"
        )
    for best in status.bests:
        lines.append(
            f"best {escape_text(best['device'])} / {escape_text(best['profile'])}: "
            f"{mean_text(best['mean'], best['sigma'], best['n'])} {escape_text(best['id'])} "
            f"{escape_text(best['agent'])}  {escape_text(best['description'], DESCRIPTION_CHARS)}"
        )
    if not status.bests:
        lines.append("best: none confirmed yet")
    lines += [escape_text(line) for line in status.queue_lines]
    for a in status.agents:
        if a.reason:
            lines.append(f"{escape_text(a.name)} {escape_text(a.state)}: {escape_text(a.reason)}")
    pruned = sum(a.counts.get(PRUNED, 0) for a in status.agents)
    if pruned:
        saved = sum(a.saved_seconds for a in status.agents)
        lines.append(f"early stop: {pruned} runs pruned, {saved / 3600:.2f} GPU-h of training saved")
    return lines


def _tokens(usage: dict[str, Any]) -> str:
    """All tokens the agent's model processed, cached ones included, as 950, 12.3k or 4.56M."""
    n = sum(usage.get(k) or 0 for k in USAGE_FIELDS)
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M"
    return f"{n / 1e3:.1f}k" if n >= 1000 else str(n)


def _cost(usage: dict[str, Any]) -> str:
    return "-" if usage.get("cost_usd") is None else f"${usage['cost_usd']:.2f}"


def cmd_status(args) -> int:
    status = collect(run_paths(), args.tag)
    if args.json:
        print(json.dumps(status.as_json(), indent=2))
    else:
        print("\n".join(render(status)))
    return 0
