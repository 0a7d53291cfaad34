"""`swarm doctor`: what this machine offers a swarm (python, torch, CUDA devices, tmux, git, sandbox, data
cache), and whether the board here holds lines no runner, coordinator or user command wrote."""

from __future__ import annotations

import contextlib
import importlib.util
import platform
import shutil
import subprocess
from pathlib import Path

import swarm
from swarm.board.state import BoardState
from swarm.board.store import Board
from swarm.errors import GitError
from swarm.orchestration.gpus import detect_gpus
from swarm.orchestration.settings_check import check_config
from swarm.repo.paths import main_repo, run_paths
from swarm.results.display import escape_text
from swarm.runner.sandbox import BWRAP, sandbox_problem


def _version_of(command: list[str]) -> str:
    if not shutil.which(command[0]):
        return "not found"
    proc = subprocess.run(command, capture_output=True, text=True)
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if proc.returncode == 0 else "error"


def find_prepare(cwd: Path | None = None) -> Path | None:
    """prepare.py of the repository we are in (its main worktree), else of the checkout swarm runs from."""
    candidates = []
    with contextlib.suppress(GitError):  # not inside a git checkout: fall back to the installed one
        candidates.append(main_repo(cwd) / "prepare.py")
    candidates.append(Path(swarm.__file__).resolve().parent.parent / "prepare.py")
    return next((p for p in candidates if p.is_file()), None)


def data_cache_rows(cwd: Path | None = None) -> list[tuple[str, str]]:
    """One row per profile of prepare.py: is its data cache prepared, from which source, where."""
    path = find_prepare(cwd)
    if path is None:
        return [("data", "prepare.py not found (run swarm doctor inside the repository)")]
    try:
        spec = importlib.util.spec_from_file_location("_doctor_prepare", path)
        prepare = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(prepare)
    except SystemExit as e:  # prepare.py reports a bad AUTORESEARCH_PROFILE this way
        return [("data", str(e))]
    except ImportError as e:
        return [("data", f"cannot load {path}: {e}")]
    return [(f"data {profile}", prepare.cache_status(profile)) for profile in prepare.PROFILES]


def sandbox_row() -> tuple[str, str]:
    """Whether trainers and agents can be sandboxed here (swarm.runner.sandbox)."""
    problem = sandbox_problem()
    if problem:
        return ("sandbox", f"NONE: {problem} (swarm spawn needs --unsealed)")
    return ("sandbox", f"{_version_of([BWRAP, '--version'])}: works")


def board_rows(cwd: Path | None = None) -> list[tuple[str, str]]:
    """The board of the run here, when there is one: signed or not, and lines no trusted writer wrote."""
    try:
        board = Board(run_paths(cwd).board)
    except GitError:
        return []
    if not board.exists():
        return []
    if board.signing_key() is None:
        return [
            ("board", f"{board.directory}: unsigned (made before signing, or its key is not readable here)")
        ]
    state = BoardState(board)
    state.refresh()
    if not state.forged:
        return [("board", f"{board.directory}: signed, every line from a runner, the coordinator or you")]
    last = state.forged_lines[-1].decode(errors="replace")
    return [
        (
            "board",
            f"WARNING: {state.forged} line(s) without a valid signature ignored (not written by a runner,"
            f" the coordinator or you); last: {escape_text(last)}",
        )
    ]


def report() -> list[tuple[str, str]]:
    rows = [("python", platform.python_version())]
    try:
        import torch

        rows.append(("torch", torch.__version__))
    except ImportError:
        rows.append(("torch", "not installed"))
    # The GPUs `swarm spawn` would use, found the same way (nvidia-smi, else torch; SWARM_FAKE_GPUS).
    gpus = detect_gpus()
    for gpu in gpus:
        rows.append((f"cuda:{gpu.index}", f"{gpu.name}, {gpu.memory_mib / 1024:.0f} GiB"))
    if not gpus:
        rows.append(("cuda", "no CUDA devices (CPU workers only: swarm spawn --cpu N)"))
    rows.append(("tmux", _version_of(["tmux", "-V"])))
    rows.append(("git", _version_of(["git", "--version"])))
    rows.append(sandbox_row())
    rows.extend(board_rows())
    rows.extend(data_cache_rows())
    return rows


def cmd_doctor(args) -> int:
    with contextlib.suppress(GitError):  # outside a repository there is no swarm.toml to check
        check_config(main_repo())  # a mistake in it: one line and a non-zero exit, as spawn would say
    rows = report()
    width = max(len(name) for name, _ in rows) + 1
    for name, value in rows:
        print(f"{name + ':':<{width}} {value}")
    return 0
