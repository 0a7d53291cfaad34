"""`swarm demo`: a real swarm in a few minutes on any machine: no GPU, no API keys, no network.

It clones the current repository's HEAD into a directory of its own (a temporary one by default), so the
user's checkout is never made dirty and no branch of theirs moves; prepares the tiny profile's data offline
(`prepare.py --source local`, into the shared data cache); spawns CPU workers with the built-in sweep agent;
shows the swarm working for `--minutes`; then, if a promising result awaits its confirmation, stops the
agents and waits up to `--settle` minutes for the verdict; stops every process and prints what the board
holds, ending with where the run stands in words (swarm.results.standing). The clone
stays, with its board, worktrees and branches, for `swarm board` / `swarm status` / `swarm resume` there.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from swarm.board.experiments import PROMISING, group_of
from swarm.board.fold import BoardState
from swarm.board.noise import NoiseSettings
from swarm.board.run_record import open_run
from swarm.board.store import Board
from swarm.config import load_section
from swarm.errors import GitError, SwarmError
from swarm.installation import swarm_command
from swarm.orchestration.spawn import SpawnRequest, spawn
from swarm.orchestration.status import collect, render
from swarm.orchestration.stop import stop
from swarm.repo.git import git
from swarm.repo.paths import RunPaths, worktree_root
from swarm.results.display import escape_text, mean_text
from swarm.results.standing import standing
from swarm.runner.sandbox import sandbox_problem

TAG = "demo"
STATUS_EVERY_S = 15.0
SETTLE_MINUTES = 2.0  # after --minutes: how long the demo may wait for verdicts already under way
POLL_S = 2.0


def make_clone(source: Path, directory: Path | None) -> Path:
    """A clone of `source`'s HEAD to run the demo in, where nothing the user has can be touched."""
    for name in ("prepare.py", "train.py"):
        if not (source / name).exists():
            raise SwarmError(f"no {name} in {source}: run `swarm demo` inside a clone of autoresearch-swarm")
    parent = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="swarm-demo-"))
    clone = parent / "autoresearch-swarm"
    if clone.exists():
        raise SwarmError(f"{clone} exists already: pass another --dir")
    parent.mkdir(parents=True, exist_ok=True)
    git(parent, "clone", "--quiet", str(source), str(clone))
    return clone


def prepare_tiny(clone: Path, out) -> None:
    env = {**os.environ, "AUTORESEARCH_PROFILE": "tiny"}
    out("preparing the tiny profile's data offline (prepare.py --source local)...")
    proc = subprocess.run(
        [sys.executable, "prepare.py", "--source", "local"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise SwarmError("prepare.py --source local failed: " + " | ".join(tail))


def live_view(paths: RunPaths, seconds: float, out) -> None:
    """Show the swarm working for `seconds`: the TUI when there is a terminal to draw it on, else a status
    block every STATUS_EVERY_S seconds."""
    if sys.stdout.isatty():
        from swarm.tui import watch_for

        watch_for(paths, seconds)  # shows the run for this long, then returns
        return
    state = BoardState(Board(paths.board))
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        out(f"--- {time.strftime('%H:%M:%S')}, {max(left, 0.0) / 60:.1f} min left")
        out("\n".join(render(collect(paths, TAG, state))))
        if left <= 0:
            return
        time.sleep(min(STATUS_EVERY_S, left))


def awaiting(state: BoardState) -> list[dict]:
    """Results that are promising: their confirmation reruns (and controls) decide keep or not."""
    state.refresh()
    return [e for e in state.experiments.values() if e.get("status") == PROMISING and not e.get("verify_of")]


def settle(paths: RunPaths, seconds: float, out, clock=time.monotonic, sleep=time.sleep) -> int:
    """When the demo's time is up, stop the agents (nothing new is proposed) and, while a promising result
    awaits its verdict, give the runners up to `seconds` more to reach it: a confirmation already under way
    is what the demo has to show. Returns how many still await one."""
    state = BoardState(Board(paths.board), load_section(paths.repo, "noise", NoiseSettings))
    waiting = awaiting(state)
    if not waiting or seconds <= 0:
        return len(waiting)
    for agent in open_run(state.board, TAG).agents:
        stop(paths, TAG, agent=agent.name, out=lambda *_: None)
    out(
        f"time is up: the agents are stopped; waiting up to {seconds / 60:.1f} min for the verdict on "
        f"{len(waiting)} promising result(s) (experiments already queued run first)"
    )
    deadline = last_said = clock()
    deadline += seconds
    while waiting and clock() < deadline:
        sleep(POLL_S)
        waiting = awaiting(state)
        if waiting and clock() - last_said >= STATUS_EVERY_S:
            last_said = clock()
            out(f"--- {time.strftime('%H:%M:%S')}, still awaiting the verdict on {len(waiting)}")
    return len(waiting)


def summary(paths: RunPaths) -> list[str]:
    """What the board holds when the demo ends, and in words where the run stands (swarm.results.standing:
    the same best as `swarm best`, the report and watch)."""
    state = BoardState(Board(paths.board), load_section(paths.repo, "noise", NoiseSettings))
    state.refresh()
    experiments = list(state.experiments.values())
    counts = Counter(e.get("status") for e in experiments)
    lines = [
        f"{len(experiments)} experiments: "
        + ", ".join(f"{n} {status}" for status, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    ]
    for summary_ in state.agent_summaries():
        best = state.experiments.get(summary_.best) if summary_.best else None
        content = state.content(group_of(best), best["train_sha256"]) if best else None
        value = mean_text(content.mean, content.sigma, content.n) if content else "none confirmed yet"
        lines.append(f"  {summary_.name}: {summary_.submitted} submitted, best {value}")
    for key in state.groups:
        where = standing(state, key)
        if where.best is not None:
            best = where.best
            lines.append(
                f"best on {key[0]}/{key[1]}: {mean_text(best.mean, best.sigma, best.n)} by "
                f"{escape_text(best.experiment.get('agent'))}: {escape_text(best.experiment.get('description'), 80)}"
            )
        if where.baseline is not None:
            base = where.baseline
            lines.append(f"baseline: {mean_text(base.mean, base.sigma, base.n)}")
        lines.append(escape_text(where.in_words()))
    lines.append(f"notes: {len(state.notes)}")
    return lines


def demo(
    minutes: float,
    workers: int,
    directory: Path | None,
    cwd: Path | None = None,
    out=print,
    settle_minutes: float = SETTLE_MINUTES,
) -> Path:
    """Run the demo; returns the clone it ran in."""
    if minutes <= 0 or workers < 1 or settle_minutes < 0:
        raise SwarmError("--minutes must be positive, --settle at least 0 and --workers at least 1")
    try:
        source = worktree_root(cwd)
    except GitError:
        raise SwarmError("swarm demo runs from a clone of autoresearch-swarm: cd into one first") from None
    problem = sandbox_problem()
    if problem:  # README's first command works everywhere: without sandboxes the demo says so and goes on
        out(
            f"UNSEALED demo: {problem}; trainers and agents run without a sandbox, results are marked unsealed"
        )
    clone = make_clone(source, directory)
    out(f"demo repository: {clone} (a clone of your HEAD; your checkout is not touched)")
    prepare_tiny(clone, out)
    paths = RunPaths.for_repo(clone)
    request = SpawnRequest(cpu=workers, agent="sweep", tag=TAG, profile="tiny", unsealed=problem is not None)
    spawn(request, cwd=clone, out=out)
    try:
        live_view(paths, minutes * 60, out)
        settle(paths, settle_minutes * 60, out)
    finally:
        stop(paths, TAG, out=out)
    out("\n".join(summary(paths)))
    out("\n".join(closing_lines(clone)))
    return clone


def closing_lines(clone: Path) -> list[str]:
    """What to type next, each line a command that runs exactly as printed (tests run them)."""
    here = f"cd {shlex.quote(str(clone))} &&"
    return [
        f"board: {clone / 'board'}",
        f"  look:   {here} {swarm_command('board')}",
        f"  watch:  {here} {swarm_command('watch')}",
        f"  report: {here} {swarm_command('report')}",
        f"  go on:  {here} {swarm_command('resume')}",
    ]


def cmd_demo(args) -> int:
    for name in ("SWARM_BOARD", "SWARM_TAG"):
        os.environ.pop(name, None)  # the demo's run and board are the clone's own
    demo(args.minutes, args.workers, Path(args.dir) if args.dir else None, settle_minutes=args.settle)
    return 0
