"""`swarm doctor`: what this machine offers a swarm (python, torch, CUDA devices, tmux, git, data cache)."""

from __future__ import annotations

import platform
import shutil
import subprocess


def _version_of(command: list[str]) -> str:
    if not shutil.which(command[0]):
        return "not found"
    proc = subprocess.run(command, capture_output=True, text=True)
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if proc.returncode == 0 else "error"


def report() -> list[tuple[str, str]]:
    rows = [("python", platform.python_version())]
    try:
        import torch

        rows.append(("torch", torch.__version__))
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(i)
                rows.append((f"cuda:{i}", f"{props.name}, {props.total_memory / 2**30:.0f} GiB"))
        else:
            rows.append(("cuda", "no CUDA devices (CPU workers only: swarm spawn --cpu N)"))
    except ImportError:
        rows.append(("torch", "not installed"))
    rows.append(("tmux", _version_of(["tmux", "-V"])))
    rows.append(("git", _version_of(["git", "--version"])))
    return rows


def main(args) -> int:
    for name, value in report():
        print(f"{name + ':':<10} {value}")
    return 0
