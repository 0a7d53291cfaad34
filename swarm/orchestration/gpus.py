"""Which GPUs this machine has, and which worker slots a `--gpus` / `--cpu` request names.

Detection asks nvidia-smi first (it needs no CUDA context and lists every GPU with its UUID) and falls back
to torch. Indices are PCI bus order, the order nvidia-smi prints; agents get `CUDA_DEVICE_ORDER=PCI_BUS_ID`
so that `CUDA_VISIBLE_DEVICES=3` means the GPU nvidia-smi calls 3.

`SWARM_FAKE_GPUS` replaces detection, for benchmarks and tests on machines without GPUs:
`SWARM_FAKE_GPUS=8` lists eight "Fake GPU" devices, `SWARM_FAKE_GPUS="8:NVIDIA H100 80GB HBM3"` names them.
Nothing is run on a fake GPU unless an agent or trainer tries to use CUDA; stand-in agents do not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from swarm.board.slots import cpu_slot, gpu_slot
from swarm.errors import SwarmError

FAKE_GPUS_ENV = "SWARM_FAKE_GPUS"
CPU_DEVICE = "cpu"


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_mib: int
    uuid: str


@dataclass(frozen=True)
class AgentPlace:
    """Where `swarm spawn` puts an agent: its name, the queue its jobs go to, and their device class."""

    agent: str  # "gpu3" or "cpu0": also the worktree directory, branch leaf and tmux window name
    queue: str  # the board's `gpu` field / SWARM_GPU: a slot ("3", "cpu0") or a class's queue ("box:cpu")
    device: str  # "NVIDIA H100 80GB HBM3", or "cpu"


def detect_gpus() -> list[Gpu]:
    """The GPUs of this machine in PCI bus order; [] when it has none (or no driver)."""
    fake = os.environ.get(FAKE_GPUS_ENV)
    if fake:
        return _fake_gpus(fake)
    found = _from_nvidia_smi()
    return found if found is not None else _from_torch()


def _fake_gpus(spec: str) -> list[Gpu]:
    count, _, name = spec.partition(":")
    try:
        n = int(count)
    except ValueError:
        raise SwarmError(
            f"{FAKE_GPUS_ENV}={spec!r}: expected a count, optionally ':NAME' (e.g. 8:H100)"
        ) from None
    return [Gpu(i, name.strip() or "Fake GPU", 81559, f"GPU-fake-{i:04d}") for i in range(n)]


def _from_nvidia_smi() -> list[Gpu] | None:
    """None when nvidia-smi is missing or fails (so torch gets asked); [] when it lists no GPU."""
    if not shutil.which("nvidia-smi"):
        return None
    proc = subprocess.run(
        ["nvidia-smi", "--query-gpu=index,name,memory.total,uuid", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        return None
    return parse_nvidia_smi(proc.stdout)


def parse_nvidia_smi(text: str) -> list[Gpu]:
    gpus = []
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 4 or not fields[0].isdigit():
            continue
        memory = int(fields[2]) if fields[2].isdigit() else 0
        gpus.append(Gpu(int(fields[0]), fields[1], memory, fields[3]))
    return sorted(gpus, key=lambda g: g.index)


def _from_torch() -> list[Gpu]:
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # must precede CUDA initialisation
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    gpus = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        uuid = str(getattr(props, "uuid", "") or "")
        gpus.append(Gpu(i, props.name, props.total_memory // 2**20, uuid and f"GPU-{uuid}"))
    return gpus


def select_slots(gpus_arg: str | None, cpu_arg: int | None, available: list[Gpu]) -> list[AgentPlace]:
    """The slots a request names. `--gpus 8`: the first 8 GPUs; `--gpus 0,2,5`: those (a single index is
    written `5,`); `--cpu N`: N CPU workers; neither: every GPU of the machine."""
    if gpus_arg is not None and cpu_arg is not None:
        raise SwarmError("use either --gpus or --cpu, not both")
    if cpu_arg is not None:
        if cpu_arg < 1:
            raise SwarmError(f"--cpu {cpu_arg}: ask for at least one CPU worker")
        return [AgentPlace(cpu_slot(i), cpu_slot(i), CPU_DEVICE) for i in range(cpu_arg)]
    by_index = {g.index: g for g in available}
    if gpus_arg is None:
        if not available:
            raise SwarmError("no GPUs found (nvidia-smi and torch see none): use --cpu N for CPU workers")
        chosen = sorted(by_index)
    else:
        chosen = _parse_gpus_arg(gpus_arg, by_index)
    return [AgentPlace(f"gpu{i}", gpu_slot(i), by_index[i].name) for i in chosen]


def _parse_gpus_arg(text: str, by_index: dict[int, Gpu]) -> list[int]:
    text = text.strip()
    present = ", ".join(f"{g.index}: {g.name}" for g in by_index.values()) or "none"
    if "," not in text:
        if not text.isdigit():
            raise SwarmError(f"--gpus {text}: expected a count (8) or a list of indices (0,2,5)")
        count = int(text)
        if count < 1:
            raise SwarmError(f"--gpus {text}: ask for at least one GPU (or use --cpu N)")
        if count > len(by_index):
            raise SwarmError(f"--gpus {count}: this machine has {len(by_index)} GPU(s) ({present})")
        return sorted(by_index)[:count]
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items or not all(t.isdigit() for t in items):
        raise SwarmError(f"--gpus {text}: expected GPU indices separated by commas (0,2,5)")
    indices = [int(t) for t in items]
    duplicates = sorted({i for i in indices if indices.count(i) > 1})
    if duplicates:
        raise SwarmError(f"--gpus {text}: GPU {duplicates[0]} named twice")
    missing = [i for i in indices if i not in by_index]
    if missing:
        raise SwarmError(f"--gpus {text}: no GPU {missing[0]} on this machine ({present})")
    return indices
