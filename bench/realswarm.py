"""Helpers of the benches that run a real swarm on the tiny profile (noise_real.py, search_race.py).

A scratch project (this repository's train.py and prepare.py, a swarm.toml), the tiny data prepared once in
a cache, `swarm spawn --cpu N` on a private tmux socket, submissions from an agent's worktree with the
environment spawn gives agents, and `swarm stop`. Nothing here is a stand-in: runners train the real
train.py, and what the benches read back is the board.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from swarm.board.fold import BoardState
from swarm.board.noise import NoiseSettings
from swarm.board.store import Board
from swarm.installation import swarm_argv

REPO_ROOT = Path(__file__).resolve().parent.parent


def sh(*args: str, cwd: Path | None = None, env: dict | None = None, check: bool = True) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:5])}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc.stdout


def environment(cache: Path, tmux_dir: Path) -> dict[str, str]:
    """What every process of a bench swarm runs with: the tiny cache, one thread, a private tmux."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWARM_")}
    env.update(AUTORESEARCH_CACHE_DIR=str(cache), OMP_NUM_THREADS="1", SWARM_TMUX_DIR=str(tmux_dir))
    return env


def prepare_cache(cache: Path) -> None:
    """Prepare the tiny profile's data once (prepare.py --source local: no network)."""
    if (cache / "prepared.json").exists():
        return
    cache.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "AUTORESEARCH_PROFILE": "tiny", "AUTORESEARCH_CACHE_DIR": str(cache)}
    sh(swarm_argv()[0], "prepare.py", "--source", "local", cwd=REPO_ROOT, env=env)


def make_project(path: Path, config: str = "", train: str | None = None) -> Path:
    """A git repository with this repository's prepare.py, program.md and train.py (or `train`)."""
    path.mkdir(parents=True)
    files = {
        "prepare.py": (REPO_ROOT / "prepare.py").read_text(),
        "program.md": (REPO_ROOT / "program.md").read_text(),
        "train.py": train if train is not None else (REPO_ROOT / "train.py").read_text(),
        "swarm.toml": config,
        ".gitignore": "/worktrees/*\n/board/*\n",
    }
    for name, text in files.items():
        (path / name).write_text(text)
    sh("git", "init", "-q", "-b", "main", cwd=path)
    sh("git", "add", "-A", cwd=path)
    sh("git", "-c", "user.email=b@b", "-c", "user.name=bench", "commit", "-q", "-m", "base", cwd=path)
    return path


def spawn(repo: Path, env: dict[str, str], workers: int, agent: str, tag: str) -> None:
    sh(
        *swarm_argv("spawn", "--cpu", str(workers), "--agent", agent, "--tag", tag, "--no-wait"),
        cwd=repo,
        env=env,
    )


def stop(repo: Path, env: dict[str, str], tag: str) -> None:
    sh(*swarm_argv("stop", "--tag", tag), cwd=repo, env=env, check=False)


def agent_env(repo: Path, env: dict[str, str], tag: str, agent: str) -> dict[str, str]:
    """The environment `swarm spawn` gives an agent (SWARM_AGENT, SWARM_GPU, SWARM_TAG, SWARM_BOARD)."""
    return {
        **env,
        "SWARM_AGENT": agent,
        "SWARM_GPU": agent,  # CPU workers: agent cpuK serves slot cpuK
        "SWARM_TAG": tag,
        "SWARM_BOARD": str(repo / "board"),
    }


def commit_and_submit(repo: Path, env: dict[str, str], tag: str, agent: str, train: str, message: str) -> str:
    """Commit `train` as the agent's train.py, submit it (always a run), reset back; returns the id."""
    worktree = repo / "worktrees" / agent
    head = sh("git", "rev-parse", "HEAD", cwd=worktree).strip()
    (worktree / "train.py").write_text(train)
    sh("git", "-c", "user.email=b@b", "-c", "user.name=bench", "commit", "-q", "-am", message, cwd=worktree)
    out = sh(
        *swarm_argv("submit", "--rerun", "-m", message), cwd=worktree, env=agent_env(repo, env, tag, agent)
    )
    sh("git", "reset", "-q", "--hard", head, cwd=worktree)
    return out.strip().splitlines()[-1]


def wait_idle(
    repo: Path, noise: NoiseSettings | None = None, poll_s: float = 5.0, limit_s: float = 7200
) -> BoardState:
    """Poll the board until nothing is queued or running (confirmations included); returns its state."""
    state = BoardState(Board(repo / "board"), noise)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        state.refresh()
        pending = [e for e in state.experiments.values() if e.get("status") in ("queued", "running")]
        if not pending:
            return state
        time.sleep(poll_s)
    raise SystemExit("the swarm did not finish its queue in time")


def finished(state: BoardState) -> list[dict[str, Any]]:
    return sorted(
        (e for e in state.experiments.values() if e.get("finished_at")), key=lambda e: e["finished_at"]
    )
