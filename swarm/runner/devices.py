"""The GPU of a runner slot as its sandboxes see it, and what CUDA needs from the machine to start there.

    mounts = gpu_mounts("3")             # /dev/nvidia<minor of GPU 3> and the driver's control nodes
    env = {"CUDA_VISIBLE_DEVICES": slot_gpu("3").visible}
    ensure_uvm()                         # /dev/nvidia-uvm, made before the first sandbox is built

A trainer's sandbox binds only its own slot's device node, so a train.py cannot open another slot's GPU
(and slow, or read, another agent's run). Slot k is the k-th GPU in PCI bus order, found with its minor
number and UUID under /proc/driver/nvidia/gpus/; inside the sandbox it is named by its UUID, which is right
however CUDA numbers the one GPU it can open. Long story: docs/trust.md.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from swarm.runner.sandbox import Mount

DEV = Path("/dev")
PROC_GPUS = Path("/proc/driver/nvidia/gpus")
# Nodes every CUDA process opens whichever GPU it uses (nvidia-caps: MIG capabilities, a directory).
CONTROL_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset", "nvidia-caps")
UVM = "nvidia-uvm"
MODPROBE = "nvidia-modprobe"
MODPROBE_TIMEOUT_S = 30.0
# The variables naming where CUDA's and Triton's libraries and tools are: the trainer passes them on, the
# evaluator gets the same, and each sandbox binds what they name read-only (else they name nothing there).
LIBRARY_PATH_VARS = (
    "LD_LIBRARY_PATH",
    "TRITON_LIBCUDA_PATH",
    "TRITON_PTXAS_PATH",
    "TRITON_CUOBJDUMP_PATH",
    "TRITON_NVDISASM_PATH",
    "CUDA_HOME",
    "CUDA_PATH",
)
_GPU_NODE = re.compile(r"nvidia(\d+)")


@dataclass(frozen=True)
class SlotGpu:
    """One slot's GPU: its CUDA index on the host, the minor of its device node, its UUID when known."""

    index: int
    minor: int
    uuid: str | None = None

    @property
    def visible(self) -> str:
        """CUDA_VISIBLE_DEVICES for a sandbox that holds only this GPU's node."""
        return self.uuid or str(self.index)


def slot_gpu(slot: str, proc_gpus: Path = PROC_GPUS) -> SlotGpu:
    """The GPU of slot "k": the k-th the driver lists in PCI bus order; without the driver's listing (or
    fewer GPUs in it), minor k and no UUID."""
    index = int(slot)
    try:
        entries = sorted(p for p in proc_gpus.iterdir() if p.is_dir())
    except OSError:
        entries = []
    if index < len(entries):
        info = _information(entries[index] / "information")
        minor = info.get("Device Minor", "")
        uuid = info.get("GPU UUID", "")
        return SlotGpu(
            index, int(minor) if minor.isdigit() else index, uuid if uuid.startswith("GPU-") else None
        )
    return SlotGpu(index, index)


def _information(path: Path) -> dict[str, str]:
    """The driver's `Key: value` lines of one GPU."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    pairs = (line.split(":", 1) for line in lines if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def gpu_mounts(slot: str | None, dev: Path = DEV, proc_gpus: Path = PROC_GPUS) -> list[Mount]:
    """The device nodes a sandbox of `slot` gets, at /dev/... inside: none for a CPU slot (None), else its own
    GPU's node and the control nodes present in `dev` (a test's stand-in for /dev)."""
    if slot is None or not dev.is_dir():
        return []
    gpu = slot_gpu(slot, proc_gpus)
    names = [f"nvidia{gpu.minor}", *CONTROL_NODES]
    return [Mount("dev", f"/dev/{name}", str(dev / name)) for name in names if (dev / name).exists()]


def has_gpu_nodes(dev: Path = DEV) -> bool:
    try:
        return any(_GPU_NODE.fullmatch(p.name) for p in dev.iterdir())
    except OSError:
        return False


def ensure_uvm(dev: Path = DEV, modprobe: str = MODPROBE) -> str | None:
    """Make /dev/nvidia-uvm when a GPU is there but the node is not; None when it is there (or no GPU is),
    else one line saying why it could not be made. The node appears only once something on the host loads
    the nvidia-uvm module, which nothing inside a sandbox may; `nvidia-modprobe -u -c=0` (setuid, shipped
    with the driver) is what CUDA itself runs for it."""
    if (dev / UVM).exists() or not has_gpu_nodes(dev):
        return None
    found = shutil.which(modprobe)
    if found is None:
        return f"{dev / UVM} is missing and {modprobe} is not installed (it ships with the NVIDIA driver)"
    try:
        done = subprocess.run(
            [found, "-u", "-c=0"], capture_output=True, text=True, timeout=MODPROBE_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{modprobe} -u -c=0 did not run: {e}"
    if not (dev / UVM).exists():
        said = (done.stderr or done.stdout).strip().splitlines()
        return f"{dev / UVM} is missing and `{modprobe} -u -c=0` did not make it: {said[-1] if said else done.returncode}"
    return None


@functools.lru_cache(maxsize=1)
def uvm_problem() -> str | None:
    """ensure_uvm() for this machine, once per process (the runner's first GPU sandbox)."""
    return ensure_uvm()


def library_paths(environ: dict[str, str]) -> dict[str, str]:
    """The library-path variables of `environ` (LIBRARY_PATH_VARS)."""
    return {name: environ[name] for name in LIBRARY_PATH_VARS if environ.get(name)}


def library_path_targets(environ: dict[str, str]) -> list[str]:
    """Every existing absolute path the library-path variables of `environ` name (a file or directory)."""
    found: list[str] = []
    for value in library_paths(environ).values():
        for part in value.split(":"):
            if part.startswith("/") and Path(part).exists() and part not in found:
                found.append(part)
    return found
