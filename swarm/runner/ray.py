"""The Ray executor: the GPUs of a Ray cluster as slots, the board on the head with this runner as its writer.

    swarm runner --ray ADDRESS|auto        (the `runner-ray` window of a run spawned with `swarm spawn --ray`)

One process on the head serves every GPU of the cluster: the same runner loop a box slot runs
(swarm.runner.service.Runner), with this executor behind it. Agents queue jobs for their device class
(`gpu` = "ray:H100", swarm.board.slots.ray_queue); whenever a GPU of that class is free, the runner
claims the job the scheduler picks (swarm.board.scheduling), checks, plans and materialises it as for any
slot (allow-list, seed-only, the pinned prepare.py, raw blobs, budget, timeout, the class's overhead
allowance), and this executor ships the snapshot's bytes and the plan to that GPU's node as a Ray task
(`num_gpus=1`, pinned to the node). The node adapts the plan to itself (`node_plan`: its own environment,
never the head's; the GPU Ray gave the task; its own data cache, whose manifest it loads and checks against
the run's pinned sha256) and runs `sealed.run_snapshot` on the unpacked snapshot: the same sandboxed
trainer, clock and sandboxed evaluator a one-box slot runs. The record fields and the trainer's log, capped,
come back; the head's runner records them (keep / marginal / discard are the board's). Nothing on a
node writes the board, and the board's key never leaves the head.

A device class is a node's accelerator type (Ray's `accelerator_type:H100` resource; "GPU" when a node
has none). Each node prepares its data cache once, before its GPUs take jobs: a task runs the base
commit's prepare.py there (`[ray] prepare_args` in swarm.toml), then checks the cache's manifest against the
run's pin (the one `swarm spawn` pinned, else the first node's); a node whose cache does not match, or that
cannot sandbox a sealed run, takes no jobs. A cache that changes later is a DataError on that node: the node
is taken out of service and its job requeued; nothing is recorded from it.

Faults: a node that dies takes its running jobs with it; each is requeued once for another GPU of its
class (`max_attempts`, as a local runner that died), then recorded as `crash`. A node that joins is seen
within `node_poll_s` and its GPUs become slots once its cache is prepared. If this runner dies, Ray ends
its tasks (and their trainers die with their parent); the next one (`swarm resume`) requeues the jobs it
finds `running` the same way. Only `swarm runner --ray` and `swarm spawn --ray` import this module: the
one-box path never imports ray, and this module imports no runner (it is handed one: RunnerView).
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayError, RayTaskError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from swarm.board.experiments import CRASH, REPORTED
from swarm.board.slots import ray_queue, ray_slot
from swarm.errors import DataError, SwarmError
from swarm.repo.git import file_at
from swarm.runner.executor import Landing, Place, RunnerView
from swarm.runner.pruning import Curve, Monitor, PruningSettings
from swarm.runner.sandbox import sandbox_problem
from swarm.runner.sealed import RunPlan, data_manifest, run_snapshot
from swarm.runner.snapshot import PREPARE, RunDirectory
from swarm.target.data import cache_dir

ACCELERATOR_RESOURCE = "accelerator_type:"
UNNAMED_CLASS = "GPU"  # a node whose GPUs have no accelerator type


@dataclass(frozen=True)
class RaySettings:
    """`[ray]` in swarm.toml."""

    node_poll_s: float = 2.0  #: [advanced] how often the head looks for nodes that joined or left
    prepare_args: tuple[str, ...] = ()  #: arguments of prepare.py on each node, e.g. ["--source", "local"]
    prepare_timeout_s: float = 3600.0  #: [advanced] the most seconds prepare.py may take on a node
    #: [advanced] the most of a trainer's output that comes back (its end: the summary)
    log_cap_bytes: int = 4 << 20


# ---------------------------------------------------------------------------------------------------------
# The cluster's GPUs


@dataclass(frozen=True)
class RayGpu:
    """One GPU slot of a node. Ray picks which of the node's GPUs a task gets; the slot is a place."""

    node_id: str
    node_ip: str
    device: str  # device class, from the node's accelerator type
    index: int

    @property
    def node(self) -> str:
        return f"{self.node_id[:8]}@{self.node_ip}"

    @property
    def slot(self) -> str:
        return ray_slot(self.node_id, self.index)


def device_class(resources: dict[str, float]) -> str:
    names = sorted(
        k.removeprefix(ACCELERATOR_RESOURCE) for k in resources if k.startswith(ACCELERATOR_RESOURCE)
    )
    return names[0] if names else UNNAMED_CLASS


def cluster_gpus(nodes: list[dict[str, Any]]) -> list[RayGpu]:
    """The GPU slots of the live nodes in `ray.nodes()`, node by node."""
    gpus = []
    for node in nodes:
        resources = node.get("Resources") or {}
        if not node.get("Alive") or resources.get("GPU", 0) < 1:
            continue
        device = device_class(resources)
        for index in range(int(resources["GPU"])):
            gpus.append(RayGpu(node["NodeID"], node.get("NodeManagerAddress", "?"), device, index))
    return gpus


def connect(address: str) -> None:
    """Join the cluster as a driver (quietly: the trainers' output comes back in their logs)."""
    if ray.is_initialized():
        return
    try:
        ray.init(address=address, log_to_driver=False, logging_level="ERROR", configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise SwarmError(f"cannot reach the Ray cluster at {address}: {e}") from None


def discover(address: str) -> list[RayGpu]:
    """The GPUs of the cluster at `address` (for `swarm spawn --ray`); leaves no connection behind."""
    connect(address)
    try:
        return cluster_gpus(ray.nodes())
    finally:
        ray.shutdown()


# ---------------------------------------------------------------------------------------------------------
# What runs on a node


@dataclass(frozen=True)
class NodeResult:
    fields: dict[str, Any]  # the run's record fields (sealed.run_snapshot); empty with a data error
    log: bytes  # the run's output (trainer and evaluator lines), capped to its end
    cuda_visible_devices: str  # the GPU(s) Ray gave the task on its node
    host: str
    data_error: str | None = None  # the node's cache no longer matches the pin: nothing may be recorded


def pack(run_dir: Path) -> bytes:
    """The materialised snapshot as tar bytes (what travels to the node)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(run_dir, arcname=".")
    return buffer.getvalue()


def unpack(snapshot: bytes, dest: Path) -> None:
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(snapshot)) as tar:
        tar.extractall(dest, filter="data")  # no absolute paths, no links out of dest


def capped(log: Path, cap: int) -> bytes:
    """The log's last `cap` bytes (the summary block is at the end), saying how much was dropped."""
    if not log.exists():
        return b""
    size = log.stat().st_size
    with open(log, "rb") as f:
        if size <= cap:
            return f.read()
        f.seek(size - cap)
        return f"# [swarm: the first {size - cap} bytes of the output were dropped]\n".encode() + f.read()


def node_slot(gpu_ids: list[Any]) -> str:
    """The RunPlan slot on this node: the GPUs Ray gave the task, or a CPU slot on a node whose GPUs are
    only Ray resources (no NVIDIA device nodes: a test cluster's fake GPUs), where torch trains on the CPU
    and the evaluator must too."""
    if gpu_ids and any(Path("/dev").glob("nvidia[0-9]*")):
        return ",".join(str(g) for g in gpu_ids)
    return "cpu0"


def node_plan(plan: RunPlan, data_pin: str | None, slot: str) -> RunPlan:
    """The head's plan adapted to this node: this node's environment (the head ships none), the slot Ray
    gave the task, and this node's data cache, its manifest loaded here and checked against the run's pin
    (DataError when it differs or a file no longer matches its hash)."""
    environ = dict(os.environ)
    data = None if plan.settings.evaluation == REPORTED else data_manifest(plan.profile, data_pin, environ)
    return dataclasses.replace(plan, environ=environ, slot=slot, data=data)


def train_on_node(
    snapshot: bytes,
    hashes: tuple[str | None, str],
    plan: RunPlan,
    data_pin: str | None,
    log_cap: int,
    pruning: tuple[Curve, PruningSettings] | None = None,
) -> NodeResult:
    """The body of a training task: unpack the snapshot in a scratch directory of this node and run it
    sealed (sealed.run_snapshot) on the GPU Ray gave the task; the cache is checked before and after.
    `pruning`: the reference curve and settings of the head's early-stop watch, kept here on the log."""
    gpus = ",".join(str(g) for g in ray.get_gpu_ids())
    work = Path(tempfile.mkdtemp(prefix="swarm-run-"))
    log = work / "run.log"
    try:
        run_dir = work / "run"
        unpack(snapshot, run_dir)
        train_sha256, prepare_sha256 = hashes
        local = node_plan(plan, data_pin, node_slot(ray.get_gpu_ids()))
        monitor = Monitor(log, *pruning) if pruning is not None else None
        fields = run_snapshot(RunDirectory(run_dir, train_sha256, prepare_sha256), local, log, monitor)
        if local.data is not None:
            data_manifest(plan.profile, data_pin, local.environ)  # changed during the run: not recorded
        return NodeResult(fields, capped(log, log_cap), gpus, socket.gethostname())
    except DataError as e:
        return NodeResult({}, capped(log, log_cap), gpus, socket.gethostname(), data_error=str(e))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def prepare_on_node(
    prepare: bytes,
    profile: str,
    args: tuple[str, ...],
    timeout_s: float,
    sealed: bool,
    checked: bool,
    data_pin: str | None,
) -> tuple[int, str, str | None]:
    """The body of a node's preparation task: the base commit's prepare.py, run once on this node so that
    its data cache exists before its GPUs train; then (`checked`: sealed evaluation) the cache's manifest,
    checked against the run's pin. Returns (exit code, the end of its output or why the node cannot serve,
    the sha256 of the node's manifest)."""
    if sealed and (problem := sandbox_problem()):
        return 1, f"no sandbox on this node: {problem}", None
    environ = dict(os.environ)
    env = {k: v for k, v in environ.items() if not k.startswith("SWARM_")}  # prepare.py is the pinned base's
    env.update(AUTORESEARCH_PROFILE=profile, AUTORESEARCH_CACHE_DIR=str(cache_dir(profile, environ)))
    env.update(CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    with tempfile.TemporaryDirectory(prefix="swarm-prepare-") as work:
        (Path(work) / PREPARE).write_bytes(prepare)
        try:
            proc = subprocess.run(
                [sys.executable, PREPARE, *args],
                cwd=work,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            return 124, f"prepare.py did not finish in {timeout_s:.0f} s", None
    output = (proc.stdout + proc.stderr)[-2000:]
    if proc.returncode != 0 or not checked:
        return proc.returncode, output, None
    try:
        manifest = data_manifest(profile, data_pin, environ)
    except DataError as e:
        return 1, f"data cache: {e}", None
    return 0, output, manifest.sha256


_train_task = ray.remote(train_on_node)
_prepare_task = ray.remote(prepare_on_node)


def _on(gpu_node: str, **resources: Any) -> dict[str, Any]:
    """Task options: pinned to one node, never retried by Ray (the head decides about retries)."""
    return {
        "scheduling_strategy": NodeAffinitySchedulingStrategy(gpu_node, soft=False),
        "max_retries": 0,
        "num_cpus": 0,
        **resources,
    }


# ---------------------------------------------------------------------------------------------------------
# The head: an executor of the one runner loop (swarm.runner.service.Runner)


@dataclass
class Flight:
    """A job training on a node."""

    job: dict[str, Any]  # its `running` record
    place: Place
    gpu: RayGpu


@dataclass
class Nodes:
    """What the head knows of the cluster's nodes."""

    gpus: dict[str, RayGpu] = field(default_factory=dict)  # slot -> GPU, of nodes seen alive
    ready: set[str] = field(default_factory=set)  # nodes whose cache is prepared and checked
    preparing: dict[Any, str] = field(default_factory=dict)  # ObjectRef -> node id
    lost: set[str] = field(default_factory=set)  # nodes that died or failed to prepare: never used again
    checked_at: float = 0.0


class RayExecutor:
    """Every GPU of a Ray cluster as places of the head's runner: it prepares each node that joins, offers
    the free GPUs of prepared nodes, ships each launched job to its node, and hands back what lands."""

    def __init__(self, address: str, settings: RaySettings | None = None):
        self.address = address
        self.ray_settings = settings or RaySettings()
        self.nodes = Nodes()
        self.flights: dict[Any, Flight] = {}  # ObjectRef -> Flight
        self.busy: set[str] = set()  # slots with a flight
        self.runner: RunnerView | None = None

    def bind(self, runner: RunnerView) -> None:
        """Serve `runner` (its run record, settings, data pin and log); joins the cluster as a driver."""
        self.runner = runner
        connect(self.address)

    def close(self) -> None:
        ray.shutdown()

    def describe(self) -> str:
        return f"Ray cluster {self.address}"

    def _runner(self) -> RunnerView:
        if self.runner is None:
            raise SwarmError("the Ray executor serves no runner (bind it first)")
        return self.runner

    def free(self) -> list[Place]:
        """The free GPUs of prepared nodes (after taking in nodes that joined and dropping those that left)."""
        self.watch_nodes()
        return [
            Place(slot, gpu.device, ray_queue(gpu.device), gpu.node)
            for slot, gpu in list(self.nodes.gpus.items())
            if slot not in self.busy and gpu.node_id in self.nodes.ready
        ]

    def watch_nodes(self, force: bool = False) -> None:
        """Take in nodes that joined (their cache is prepared first) and drop those that left."""
        if not force and time.monotonic() < self.nodes.checked_at + self.ray_settings.node_poll_s:
            return
        runner = self._runner()
        self.nodes.checked_at = time.monotonic()
        alive = {g.slot: g for g in cluster_gpus(ray.nodes()) if g.node_id not in self.nodes.lost}
        for slot in set(self.nodes.gpus) - set(alive):
            gone = self.nodes.gpus.pop(slot)
            self.nodes.ready.discard(gone.node_id)
        fresh = {g.node_id: g for g in alive.values() if g.slot not in self.nodes.gpus}
        self.nodes.gpus.update(alive)
        run = runner.state.run
        if not fresh or run is None:
            return
        prepare = file_at(runner.repo, run.base, PREPARE)
        if prepare is None:
            raise SwarmError(f"the base commit {run.base[:12]} has no prepare.py")
        for node_id, gpu in fresh.items():
            if node_id in self.nodes.preparing.values():
                continue
            runner.say(f"node {gpu.node}: {gpu.device}, preparing its data cache")
            ref = _prepare_task.options(**_on(node_id)).remote(
                prepare,
                run.profile,
                self.ray_settings.prepare_args,
                self.ray_settings.prepare_timeout_s,
                runner.sandboxed,
                runner.settings.evaluation != REPORTED,
                runner.data_pin,
            )
            self.nodes.preparing[ref] = node_id

    def launch(
        self,
        job: dict[str, Any],
        place: Place,
        snapshot: RunDirectory,
        plan: RunPlan,
        log: Path,
        monitor: Monitor | None,
    ) -> None:
        gpu = self.nodes.gpus[place.slot]
        packed = pack(snapshot.path)
        # the head's environment (API keys, the board's paths) never travels: the node uses its own
        shipped = dataclasses.replace(plan, environ={}, data=None, private_dir=None)
        hashes = (snapshot.train_sha256, snapshot.prepare_sha256)
        # early stop: decided on the head, watched on the node's log
        pruning = (monitor.reference, monitor.settings) if monitor is not None else None
        ref = _train_task.options(**_on(gpu.node_id, num_gpus=1)).remote(
            packed, hashes, shipped, self._runner().data_pin, self.ray_settings.log_cap_bytes, pruning
        )
        self.flights[ref] = Flight(job, place, gpu)
        self.busy.add(place.slot)

    def wait(self, timeout_s: float) -> list[Landing]:
        """Wait up to `timeout_s` for tasks to end: prepared nodes join, finished trainings land."""
        refs = list(self.flights) + list(self.nodes.preparing)
        if not refs:
            time.sleep(timeout_s)
            return []
        ready, rest = ray.wait(refs, num_returns=1, timeout=timeout_s)
        if ready and rest:
            ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        landed = []
        for ref in ready:
            if ref in self.nodes.preparing:
                self._prepared(ref)
            else:
                landed.append(self._landed(ref))
        return landed

    def _prepared(self, ref: Any) -> None:
        runner = self._runner()
        node_id = self.nodes.preparing.pop(ref)
        try:
            code, output, data_sha256 = ray.get(ref)
        except RayError as e:
            code, output, data_sha256 = -1, str(e).splitlines()[0], None
        pin = runner.data_pin
        if code == 0 and data_sha256 is not None and pin is not None and data_sha256 != pin:
            code, output = 1, f"data cache: its manifest {data_sha256[:12]} is not the run's {pin[:12]}"
        if code == 0:
            if data_sha256 is not None:
                runner.pin_data(data_sha256)  # the first node's cache pins the rest (as a local runner's)
            self.nodes.ready.add(node_id)
            runner.say(f"node {node_id[:8]}: cache ready")
        else:
            self.nodes.lost.add(node_id)
            runner.say(f"node {node_id[:8]}: cannot serve ({code}), its GPUs stay unused: {output.strip()}")

    def _landed(self, ref: Any) -> Landing:
        flight = self.flights.pop(ref)
        self.busy.discard(flight.place.slot)
        node = flight.gpu.node
        try:
            result: NodeResult = ray.get(ref)
        except RayTaskError as e:  # the task itself failed on the node (e.g. a snapshot it could not unpack)
            return Landing(
                flight.job, flight.place, fields={"status": CRASH, "reason": f"on {node}: {e.cause!r}"}
            )
        except RayError as e:  # the node or its worker went away: not the job's fault
            self._drop_node(flight.gpu.node_id)
            return Landing(flight.job, flight.place, lost=f"node {node} was lost ({type(e).__name__})")
        tail = (
            f"# on {node} ({result.host}), CUDA_VISIBLE_DEVICES={result.cuda_visible_devices}\n".encode()
            + result.log
        )
        if result.data_error is not None:  # nothing is recorded from a changed cache: that node is done
            self._drop_node(flight.gpu.node_id)
            reason = f"requeued: data cache of node {node}: {result.data_error}; node taken out of service"
            return Landing(flight.job, flight.place, requeue=reason, log_tail=tail)
        return Landing(flight.job, flight.place, fields=result.fields, log_tail=tail)

    def _drop_node(self, node_id: str) -> None:
        """Never use this node again (it died, or its cache changed)."""
        self.nodes.lost.add(node_id)
        self.nodes.ready.discard(node_id)
        for slot in [s for s, g in self.nodes.gpus.items() if g.node_id == node_id]:
            del self.nodes.gpus[slot]

    def in_flight(self) -> list[Landing]:
        """Stopping: end the trainings in flight; their jobs come back to be requeued (no attempt used)."""
        landed = []
        for ref, flight in list(self.flights.items()):
            ray.cancel(ref, force=True)
            landed.append(Landing(flight.job, flight.place))
        self.flights.clear()
        self.busy.clear()
        return landed
