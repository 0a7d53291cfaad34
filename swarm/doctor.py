"""`swarm doctor`: what this machine offers a swarm (python, torch, CUDA devices, tmux, git, data cache)."""

from __future__ import annotations

import contextlib
import importlib.util
import platform
import shutil
import subprocess
from pathlib import Path

import swarm
from swarm.errors import GitError
from swarm.orchestration.gpus import detect_gpus
from swarm.repo.paths import main_repo


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
    rows.extend(data_cache_rows())
    return rows


def cmd_doctor(args) -> int:
    rows = report()
    width = max(len(name) for name, _ in rows) + 1
    for name, value in rows:
        print(f"{name + ':':<{width}} {value}")
    return 0
