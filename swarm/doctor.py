"""`swarm doctor`: what this machine offers a swarm (python, torch and its CUDA build, the driver, CUDA devices,
/dev/nvidia-uvm, a C compiler and Python.h, tmux, git, sandbox, data cache), and whether the board here holds
lines no runner, coordinator or user command wrote. `swarm doctor --smoke` then runs a few sealed steps on
every slot of the machine (swarm.runner.smoke): the first command on a new GPU box."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import shutil
import subprocess
import sysconfig
from pathlib import Path

import swarm
from swarm.board.fold import BoardState
from swarm.board.store import Board
from swarm.errors import GitError, SwarmError
from swarm.orchestration.gpus import detect_gpus
from swarm.orchestration.settings_check import check_config
from swarm.repo.paths import main_repo, run_paths
from swarm.results.display import escape_text
from swarm.runner.devices import DEV, MODPROBE, UVM, has_gpu_nodes
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


APPARMOR_USERNS = Path("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")


def sandbox_row(apparmor: Path = APPARMOR_USERNS) -> tuple[str, str]:
    """Whether trainers and agents can be sandboxed here (swarm.runner.sandbox), and the remedy when
    AppArmor refuses bwrap its user namespace (Ubuntu 24.04 and later)."""
    problem = sandbox_problem()
    if problem:
        return ("sandbox", f"NONE: {problem} (swarm spawn needs --unsealed){apparmor_remedy(apparmor)}")
    return ("sandbox", f"{_version_of([BWRAP, '--version'])}: works")


def apparmor_remedy(apparmor: Path = APPARMOR_USERNS) -> str:
    """The one-line fix when AppArmor restricts unprivileged user namespaces, else ""."""
    try:
        restricted = apparmor.read_text().strip() == "1"
    except OSError:
        return ""
    if not restricted:
        return ""
    return (
        "; AppArmor restricts unprivileged user namespaces here: "
        "`sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (or give bwrap an AppArmor profile "
        "with `userns,`: /etc/apparmor.d/bwrap)"
    )


def cuda_rows(dev: Path = DEV) -> list[tuple[str, str]]:
    """torch's CUDA build and whether it finds a device, the driver, /dev/nvidia-uvm: why a GPU slot would
    not train (a CUDA 13 torch on a driver older than 580 finds no device)."""
    rows = []
    try:
        import torch

        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU only"
        rows.append(("torch build", f"{build}; torch.cuda.is_available() = {torch.cuda.is_available()}"))
    except ImportError:
        pass
    rows.append(("driver", driver_version() or "no NVIDIA driver (nvidia-smi not found or failing)"))
    if has_gpu_nodes(dev):
        if (dev / UVM).exists():
            rows.append(("nvidia-uvm", f"{dev / UVM}: present"))
        else:
            how = (
                "the runner makes it" if shutil.which(MODPROBE) else f"{MODPROBE} is missing: load nvidia-uvm"
            )
            rows.append(("nvidia-uvm", f"{dev / UVM}: missing ({how} with `{MODPROBE} -u -c=0`)"))
    return rows


def driver_version() -> str | None:
    """The NVIDIA driver's version, from nvidia-smi."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        proc = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = proc.stdout.strip().splitlines()
    return lines[0].strip() if proc.returncode == 0 and lines else None


def compiler_rows() -> list[tuple[str, str]]:
    """A C compiler and Python.h: torch.compile's Inductor builds C++ (CPU) and Triton builds a module at its
    first use; without them every compiled run fails."""
    compiler = next(
        (c for c in (os.environ.get("CC"), "cc", "gcc", "clang") if c and shutil.which(c.split()[0])), None
    )
    rows = [
        (
            "compiler",
            _version_of([compiler.split()[0], "--version"]) if compiler else "NONE (apt-get install gcc)",
        )
    ]
    header = Path(sysconfig.get_paths()["include"]) / "Python.h"
    found = f"{header}" if header.is_file() else f"NONE at {header} (apt-get install python3-dev)"
    rows.append(("Python.h", found))
    return rows


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
    rows.extend(cuda_rows())
    rows.extend(compiler_rows())
    rows.append(("tmux", _version_of(["tmux", "-V"])))
    rows.append(("git", _version_of(["git", "--version"])))
    rows.append(sandbox_row())
    rows.extend(board_rows())
    rows.extend(data_cache_rows())
    return rows


def cmd_smoke(profile: str | None) -> int:
    """`swarm doctor --smoke`: a few sealed steps on every slot; non-zero when a slot failed."""
    from swarm.config import load_section
    from swarm.runner.settings import RunnerSettings
    from swarm.runner.smoke import describe, smoke_slot, smoke_slots

    repo = main_repo()
    settings = load_section(repo, "runner", RunnerSettings)
    profile = profile or os.environ.get("AUTORESEARCH_PROFILE") or "h100"
    failed = 0
    for slot in smoke_slots([gpu.index for gpu in detect_gpus()]):
        print(describe(slot, profile), flush=True)
        stages = smoke_slot(repo, slot, profile, settings, say=lambda st: print("  " + st.line(), flush=True))
        if stages and not stages[-1].ok:
            failed += 1
            print(f"  {slot}: FAILED at {stages[-1].name}: {stages[-1].detail}", flush=True)
    return 1 if failed else 0


def cmd_doctor(args) -> int:
    with contextlib.suppress(GitError):  # outside a repository there is no swarm.toml to check
        check_config(main_repo())  # a mistake in it: one line and a non-zero exit, as spawn would say
    if getattr(args, "smoke", False):
        return cmd_smoke(getattr(args, "profile", None))
    if getattr(args, "profile", None):
        raise SwarmError("--profile goes with --smoke (swarm doctor --smoke --profile tiny)")
    rows = report()
    width = max(len(name) for name, _ in rows) + 1
    for name, value in rows:
        print(f"{name + ':':<{width}} {value}")
    return 0
