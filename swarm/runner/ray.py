"""The Ray executor: the GPUs of a Ray cluster as slots, the board on the head with this runner as its writer.

    swarm runner --ray ADDRESS|auto        (the `runner-ray` window of a run spawned with `swarm spawn --ray`)

One process on the head serves every GPU of the cluster. Agents queue jobs for their device class
(`gpu` = "ray:H100", swarm.board.run_record.ray_pool); whenever a GPU of that class is free, this runner
claims the oldest such job on the board, checks, plans and materialises it exactly as a local runner does
(`Runner.plan`: allow-list, seed-only, the pinned prepare.py, raw blobs, budget, timeout, the class's
overhead allowance), and ships the snapshot's bytes and the plan to that GPU's node as a Ray task
(`num_gpus=1`, pinned to the node). The node adapts the plan to itself (`node_plan`: its own environment,
never the head's; the GPU Ray gave the task; its own data cache, whose manifest it loads and checks against
the run's pinned sha256) and runs `sealed.run_snapshot` on the unpacked snapshot: the same sandboxed
trainer, clock and sandboxed evaluator a one-box slot runs. The record fields and the trainer's log, capped,
come back; the head records them with Runner.record (keep / marginal / discard are the board's). Nothing on a
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
finds `running` the same way. Only swarm.runner.* imports this module, and only for a cluster run: the
one-box path never imports ray.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import signal
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

from swarm.board.experiments import CRASH, QUEUED, REPORTED, RUNNING, evolve
from swarm.board.noise import NoiseSettings
from swarm.board.run_record import CLUSTER_RUNNER_SLOT, ray_pool
from swarm.board.store import Board, now
from swarm.config import load_section
from swarm.errors import DataError, SwarmError
from swarm.repo.git import file_at
from swarm.repo.paths import run_paths
from swarm.runner.pruning import Curve, Monitor, PruningSettings
from swarm.runner.sandbox import sandbox_problem
from swarm.runner.sealed import RunPlan, data_manifest, run_snapshot
from swarm.runner.service import Runner, RunnerStopped, _raise_stopped, _val, retry_or_crash
from swarm.runner.settings import RunnerSettings
from swarm.runner.snapshot import PREPARE, RunDirectory, remove
from swarm.target.data import cache_dir

ACCELERATOR_RESOURCE = "accelerator_type:"
UNNAMED_CLASS = "GPU"  # a node whose GPUs have no accelerator type


@dataclass(frozen=True)
class RaySettings:
    """`[ray]` in swarm.toml."""

    node_poll_s: float = 2.0  # how often the head looks for nodes that joined or left
    prepare_args: tuple[str, ...] = ()  # arguments of prepare.py on each node, e.g. ["--source", "local"]
    prepare_timeout_s: float = 3600.0
    log_cap_bytes: int = 4 << 20  # the most of a trainer's output that comes back (its end: the summary)


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
        return f"{self.node_id[:8]}/{self.index}"


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
# The head


@dataclass
class Flight:
    """A job training on a node."""

    job: dict[str, Any]  # its `running` record
    gpu: RayGpu
    fields: dict[str, Any]  # record fields decided on the head (log, hashes)
    log: Path


@dataclass
class Nodes:
    """What the head knows of the cluster's nodes."""

    gpus: dict[str, RayGpu] = field(default_factory=dict)  # slot -> GPU, of nodes seen alive
    ready: set[str] = field(default_factory=set)  # nodes whose cache is prepared and checked
    preparing: dict[Any, str] = field(default_factory=dict)  # ObjectRef -> node id
    lost: set[str] = field(default_factory=set)  # nodes that died or failed to prepare: never used again
    checked_at: float = 0.0


class RayRunner(Runner):
    """The head's runner for every GPU of a Ray cluster (claims, plans, judges and records as Runner)."""

    def __init__(
        self,
        repo: Path,
        board: Board,
        address: str,
        settings: RunnerSettings | None = None,
        noise: NoiseSettings | None = None,
        ray_settings: RaySettings | None = None,
        log=print,
        pruning: PruningSettings | None = None,
    ):
        super().__init__(repo, board, CLUSTER_RUNNER_SLOT, settings, noise, log, pruning)
        self.address = address
        self.ray_settings = ray_settings or RaySettings()
        self.nodes = Nodes()
        self.flights: dict[Any, Flight] = {}  # ObjectRef -> Flight
        self.busy: set[str] = set()  # slots with a flight

    @property
    def device(self) -> str:
        return f"Ray cluster {self.address}"

    def start(self) -> None:
        connect(self.address)
        super().start()  # the slot lock, a start record, and the jobs a previous head runner left running

    def data(self, profile: str) -> None:
        """The head trains nothing: each node checks its own cache against `data_pin` (node_plan)."""
        return None

    @property
    def data_pin(self) -> str | None:
        """The data manifest every node's cache must match: pinned by spawn, else the first node's."""
        run = self.state.run
        return (run.data_sha256 if run else None) or self._data_pin

    def close(self) -> None:
        super().close()
        ray.shutdown()

    def recover_orphans(self) -> list[dict[str, Any]]:
        """Ray ended the tasks of the runner that wrote these `running` records (a driver's tasks die with
        it): requeue each for its class, or past max_attempts record it as crash."""
        recovered = []
        with self.board.locked() as writer:
            self.state.refresh()
            for job in self.state.running_slots().values():
                if job.get("node"):
                    record = retry_or_crash(
                        job,
                        self.settings.max_attempts,
                        "the Ray runner died",
                        gpu=ray_pool(job["device"]),
                        node=None,
                    )
                    recovered.append(writer.append(record))
        for record in recovered:
            self.say(f"{record['id']}: {record['reason']}")
        return recovered

    # -- the loop --------------------------------------------------------------------------------------------

    def serve(self, max_jobs: int | None = None) -> int:
        """Keep every prepared GPU busy until stopped (SIGTERM / Ctrl-C) or `max_jobs` are recorded."""
        done = 0
        previous = signal.signal(signal.SIGTERM, _raise_stopped)
        try:
            self.say(f"runner {self.slot} ({self.device}) waiting for jobs on {self.board.directory}")
            while max_jobs is None or done < max_jobs:
                self.watch_nodes()
                self.dispatch()
                done += self.collect(self.settings.poll_interval_s)
        except (RunnerStopped, KeyboardInterrupt):
            self.say(f"runner {self.slot} stopping")
            self._land_flights()
        finally:
            signal.signal(signal.SIGTERM, previous)
        return done

    def watch_nodes(self, force: bool = False) -> None:
        """Take in nodes that joined (their cache is prepared first) and drop those that left."""
        if not force and time.monotonic() < self.nodes.checked_at + self.ray_settings.node_poll_s:
            return
        self.nodes.checked_at = time.monotonic()
        alive = {g.slot: g for g in cluster_gpus(ray.nodes()) if g.node_id not in self.nodes.lost}
        for slot in set(self.nodes.gpus) - set(alive):
            gone = self.nodes.gpus.pop(slot)
            self.nodes.ready.discard(gone.node_id)
        fresh = {g.node_id: g for g in alive.values() if g.slot not in self.nodes.gpus}
        self.nodes.gpus.update(alive)
        run = self.state.run
        if not fresh or run is None:
            return
        prepare = file_at(self.repo, run.base, PREPARE)
        if prepare is None:
            raise SwarmError(f"the base commit {run.base[:12]} has no prepare.py")
        for node_id, gpu in fresh.items():
            if node_id in self.nodes.preparing.values():
                continue
            self.say(f"node {gpu.node}: {gpu.device}, preparing its data cache")
            ref = _prepare_task.options(**_on(node_id)).remote(
                prepare,
                run.profile,
                self.ray_settings.prepare_args,
                self.ray_settings.prepare_timeout_s,
                self.sandboxed,
                self.settings.evaluation != REPORTED,
                self.data_pin,
            )
            self.nodes.preparing[ref] = node_id

    def dispatch(self) -> int:
        """Start a queued job of its class on every free, prepared GPU; returns how many started."""
        self.state.refresh()
        started = 0
        for slot, gpu in list(self.nodes.gpus.items()):
            if slot in self.busy or gpu.node_id not in self.nodes.ready:
                continue
            job = self.state.next_queued(ray_pool(gpu.device))
            if job is not None and self._launch(job, gpu):
                started += 1
        return started

    def _launch(self, queued: dict[str, Any], gpu: RayGpu) -> bool:
        with self.board.locked() as writer:
            self.state.refresh()
            latest = self.state.experiments.get(queued["id"])
            if latest is None or latest.get("status") != QUEUED:
                return False
            job = writer.append(
                evolve(
                    latest, status=RUNNING, started_at=now(), gpu=gpu.slot, node=gpu.node, finished_at=None
                )
            )
            self.state.apply(job)
        log_rel, log = self.log_for(job)
        run_dir = self.runs_dir / job["id"]
        self.say(
            f"{job['id']} {job.get('agent')} {str(job.get('commit'))[:10]}: running on {gpu.node} GPU slot {gpu.index}"
        )
        try:
            snapshot, plan, fields = self.plan(job, run_dir, log)
            packed = pack(run_dir) if snapshot is not None else b""
        except SwarmError as e:  # the job cannot run: a missing commit, a base without prepare.py, ...
            snapshot, plan, fields = None, None, {"status": CRASH, "reason": str(e)}
        finally:
            remove(run_dir)
        fields["log"] = log_rel
        if snapshot is None or plan is None:
            self._finish(job, fields)
            return True
        # the head's environment (API keys, the board's paths) never travels: the node uses its own
        shipped = dataclasses.replace(plan, environ={}, data=None, private_dir=None)
        hashes = (snapshot.train_sha256, snapshot.prepare_sha256)
        monitor = self._monitor(job, log)  # early stop: decided on the head, watched on the node's log
        pruning = (monitor.reference, monitor.settings) if monitor is not None else None
        ref = _train_task.options(**_on(gpu.node_id, num_gpus=1)).remote(
            packed, hashes, shipped, self.data_pin, self.ray_settings.log_cap_bytes, pruning
        )
        self.flights[ref] = Flight(job, gpu, fields, log)
        self.busy.add(gpu.slot)
        return True

    def collect(self, timeout_s: float) -> int:
        """Wait up to `timeout_s` for tasks to end; record the finished trainings, returns how many."""
        refs = list(self.flights) + list(self.nodes.preparing)
        if not refs:
            time.sleep(timeout_s)
            return 0
        ready, rest = ray.wait(refs, num_returns=1, timeout=timeout_s)
        if ready and rest:
            ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        recorded = 0
        for ref in ready:
            if ref in self.nodes.preparing:
                self._prepared(ref)
            else:
                recorded += self._landed(ref)
        return recorded

    def _prepared(self, ref: Any) -> None:
        node_id = self.nodes.preparing.pop(ref)
        try:
            code, output, data_sha256 = ray.get(ref)
        except RayError as e:
            code, output, data_sha256 = -1, str(e).splitlines()[0], None
        pin = self.data_pin
        if code == 0 and data_sha256 is not None and pin is not None and data_sha256 != pin:
            code, output = 1, f"data cache: its manifest {data_sha256[:12]} is not the run's {pin[:12]}"
        if code == 0:
            if data_sha256 is not None and pin is None:
                self._data_pin = data_sha256  # the first node's cache pins the rest (as a local runner's)
            self.nodes.ready.add(node_id)
            self.say(f"node {node_id[:8]}: cache ready")
        else:
            self.nodes.lost.add(node_id)
            self.say(f"node {node_id[:8]}: cannot serve ({code}), its GPUs stay unused: {output.strip()}")

    def _landed(self, ref: Any) -> int:
        flight = self.flights.pop(ref)
        self.busy.discard(flight.gpu.slot)
        try:
            result: NodeResult = ray.get(ref)
        except RayTaskError as e:  # the task itself failed on the node (e.g. a snapshot it could not unpack)
            self._finish(
                flight.job, {**flight.fields, "status": CRASH, "reason": f"on {flight.gpu.node}: {e.cause!r}"}
            )
            return 1
        except RayError as e:  # the node or its worker went away: not the job's fault
            self._lost(flight, e)
            return 0
        with open(flight.log, "ab") as f:
            f.write(
                f"# on {flight.gpu.node} ({result.host}), CUDA_VISIBLE_DEVICES={result.cuda_visible_devices}\n".encode()
            )
            f.write(result.log)
        if result.data_error is not None:  # nothing is recorded from a changed cache: that node is done
            self._drop_node(flight.gpu.node_id)
            reason = f"requeued: data cache of node {flight.gpu.node}: {result.data_error}"
            self._requeue_interrupted(flight.job, reason, gpu=ray_pool(flight.gpu.device), node=None)
            self.say(f"{flight.job['id']}: {reason}; node {flight.gpu.node} taken out of service")
            return 0
        self._finish(flight.job, flight.fields | result.fields)
        return 1

    def _drop_node(self, node_id: str) -> None:
        """Never use this node again (it died, or its cache changed)."""
        self.nodes.lost.add(node_id)
        self.nodes.ready.discard(node_id)
        for slot in [s for s, g in self.nodes.gpus.items() if g.node_id == node_id]:
            del self.nodes.gpus[slot]

    def _lost(self, flight: Flight, error: RayError) -> None:
        self._drop_node(flight.gpu.node_id)
        what = f"node {flight.gpu.node} was lost ({type(error).__name__})"
        with self.board.locked() as writer:
            self.state.refresh()
            record = retry_or_crash(
                flight.job, self.settings.max_attempts, what, gpu=ray_pool(flight.gpu.device), node=None
            )
            self.state.apply(writer.append(record))
        self.say(f"{record['id']}: {record['reason']}")

    def _finish(self, job: dict[str, Any], result: dict[str, Any]) -> None:
        record = self.record(job, result)
        self.say(f"{record['id']}: {record['status']} {_val(record)} {record.get('reason') or ''}".rstrip())

    def _land_flights(self) -> None:
        """Stopping: end the trainings in flight and requeue their jobs (no attempt used)."""
        for ref, flight in list(self.flights.items()):
            ray.cancel(ref, force=True)
            self._requeue_interrupted(flight.job, gpu=ray_pool(flight.gpu.device), node=None)
        self.flights.clear()
        self.busy.clear()


# ---------------------------------------------------------------------------------------------------------
# CLI


def serve_cluster(address: str, max_jobs: int | None = None) -> int:
    """`swarm runner --ray ADDRESS`: serve every GPU of the cluster from this (head) machine."""
    paths = run_paths()
    board = Board(paths.board)
    runner = RayRunner(
        paths.repo,
        board,
        address,
        load_section(paths.repo, "runner", RunnerSettings),
        load_section(paths.repo, "noise", NoiseSettings),
        load_section(paths.repo, "ray", RaySettings),
        log=lambda line: print(line, flush=True),
        pruning=load_section(paths.repo, "pruning", PruningSettings),
    )
    runner.start()
    try:
        runner.serve(max_jobs=max_jobs)
    finally:
        runner.close()
    return 0
