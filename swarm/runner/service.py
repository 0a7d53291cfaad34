"""The runner of one slot (a GPU, or a CPU worker): takes that slot's jobs from the board one at a time,
trains each commit from a clean snapshot, measures the handed-over model with its own evaluator, and records
what it measured.

    swarm runner --gpu 3        swarm runner --cpu 0

One job at a time per slot keeps timings comparable; a lock under board/runners/ refuses a second runner
for the slot. A runner killed mid-run loses no job: the next one ends the old trainer and requeues the job
in its place, and a second death records `crash`, so one poisonous commit cannot wedge a slot. The checks
before a run (full shas, the allow-list, seed-only changes, the pinned prepare.py and data manifest),
claiming and recording stay here; the run itself is sealed.run_snapshot, called by an executor
(swarm.runner.executor). Long story: docs/trust.md.
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from swarm.board.charges import payer
from swarm.board.experiments import (
    CRASH,
    EVALUATIONS,
    INVALID,
    PINNED_CODE,
    QUEUED,
    REPORTED,
    RUNNING,
    SEED_ONLY,
    TRANSFER,
    evolve,
    group_of,
)
from swarm.board.fold import BoardState
from swarm.board.holdout import HOLDOUT_FIELD, private_dir, record_holdout
from swarm.board.noise import NoiseSettings
from swarm.board.reruns import after_result
from swarm.board.scheduling import pick
from swarm.board.slots import CLUSTER_RUNNER, cpu_slot, default_device, gpu_slot, is_cpu_slot, ray_queue
from swarm.board.store import RUNNER, Board, now
from swarm.config import load_section
from swarm.errors import DataError, SandboxError, SwarmError
from swarm.repo.git import FULL_SHA, file_at, require_sha
from swarm.repo.paths import RunPaths, run_paths
from swarm.runner.caches import CACHE_DIR as COMPILE_CACHE_DIR
from swarm.runner.caches import CompileCaches
from swarm.runner.executor import Executor, Landing, LocalExecutor, Place
from swarm.runner.inbox import Ingestor
from swarm.runner.process import end_stale_group
from swarm.runner.pruning import CurveCache, Monitor, PruningSettings, reference_curve
from swarm.runner.sandbox import sandbox_problem
from swarm.runner.sealed import RunPlan, data_manifest
from swarm.runner.settings import RunnerSettings, eval_timeout
from swarm.runner.snapshot import RunDirectory, materialise, remove
from swarm.runner.trust import (
    budget_limit,
    disallowed_changes,
    overhead_allowance,
    run_overhead,
    seed_only_change,
    sha256_bytes,
)
from swarm.target.data import Manifest
from swarm.target.profiles import profile_constants
from swarm.target.summary import is_finite

ADOPT_EVERY_S = 1.0  # how often an idle runner looks for jobs of its class whose slot's runner died


class RunnerStopped(Exception):
    """SIGTERM arrived: stop after ending the current trainer."""


def slot_from_args(gpu: str | None, cpu: str | None) -> str:
    if (gpu is None) == (cpu is None):
        raise SwarmError("give exactly one of --gpu K or --cpu K")
    value = gpu if gpu is not None else cpu
    if not value.isdigit():
        raise SwarmError(f"slot index must be a number, got {value!r}")
    return gpu_slot(value) if gpu is not None else cpu_slot(value)


def runner_flags(slot: str) -> list[str]:
    """The `swarm runner` flags that serve a slot: `--gpu 3` or `--cpu 0` (the inverse of slot_from_args)."""
    return ["--cpu", slot[3:]] if is_cpu_slot(slot) else ["--gpu", slot]


# ---------------------------------------------------------------------------------------------------------
# One runner per slot


def _lock_path(board_dir: Path, slot: str) -> Path:
    return Path(board_dir) / "runners" / f"{slot}.lock"


def runner_pid(board_dir: Path, slot: str) -> int | None:
    """The pid of the live runner of a slot, or None when no runner holds it."""
    path = _lock_path(board_dir, slot)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else -1
    finally:
        os.close(fd)  # closing drops a lock we may have taken
    return None


class SlotLock:
    """Held by a runner for its whole life (flock: released by the kernel when the process dies)."""

    def __init__(self, board_dir: Path, slot: str):
        self.path = _lock_path(board_dir, slot)
        self.slot = slot
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise SwarmError(
                f"a runner for slot {self.slot} is already running (pid {other or '?'})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# ---------------------------------------------------------------------------------------------------------
# The runner


class Runner:
    """The one runner loop: free places from the executor, a job for each from the scheduler, plan and
    launch, record what lands. `slot` names the runner (its lock and board records): a box's slot ("3",
    "cpu0", served by a LocalExecutor), or the cluster's one runner ("ray", swarm.runner.ray's executor)."""

    def __init__(
        self,
        repo: Path,
        board: Board,
        slot: str,
        settings: RunnerSettings | None = None,
        noise: NoiseSettings | None = None,
        log=print,
        pruning: PruningSettings | None = None,
        executor: Executor | None = None,
    ):
        self.repo = Path(repo)
        self.executor = executor or LocalExecutor(self.local_place)
        self.board = board
        self.slot = slot
        self.settings = settings or RunnerSettings()
        self.state = BoardState(board, noise)
        self.lock = SlotLock(board.directory, slot)
        self.say = log
        self.runs_dir = board.directory / "runs"
        # Requests of the sandboxed agents this runner serves (swarm.runner.inbox), taken on a thread of
        # their own so that an agent's `swarm submit` is answered in milliseconds also while a trainer runs.
        self.wake = threading.Event()
        self.ingestor = Ingestor(self.repo, board, slot, noise, on_job=self.wake.set)
        self._stop_ingest = threading.Event()
        self._ingest_thread: threading.Thread | None = None
        if self.settings.evaluation not in EVALUATIONS:
            raise SwarmError(
                f"[runner] evaluation = {self.settings.evaluation!r}: use one of {', '.join(EVALUATIONS)}"
            )
        self._data_pin: str | None = (
            None  # the data manifest this runner checked first (when spawn pinned none)
        )
        self.pruning = pruning or PruningSettings()
        self.curves = CurveCache(board.directory)  # loss curves of finished runs, for early stopping
        self._adopt_at = 0.0  # when an idle runner next looks for its class's orphaned jobs
        # id -> the record fields decided here (log, hashes) of each job launched and not yet landed
        self.flights: dict[str, dict[str, Any]] = {}

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Hold the slot, then recover any job a dead runner of this slot left `running`. A sealed run
        needs a working sandbox: without one the runner refuses to start (one line saying why)."""
        self.board.require()
        self.state.refresh()
        problem = sandbox_problem() if self.sandboxed else None
        if problem:
            raise SandboxError(f"{problem}; this run is sealed (spawn it with --unsealed to run without)")
        self.lock.acquire()
        self.board.append({"type": RUNNER, "slot": self.slot, "pid": os.getpid(), "event": "start"})
        self.recover_orphans()
        self._ingest_thread = threading.Thread(
            target=self.ingestor.serve, args=(self._stop_ingest,), name=f"inbox-{self.slot}", daemon=True
        )
        self._ingest_thread.start()
        self.state.refresh()
        if self.state.run is not None:
            self.data(
                self.state.run.profile
            )  # a changed or unprepared cache stops the runner now, not per job

    def data(self, profile: str) -> Manifest | None:
        """The profile's data manifest, checked against the pin (None with reported evaluation); DataError
        when the cache is missing or changed: then no result may be recorded, so the runner stops."""
        if self.settings.evaluation == REPORTED or not isinstance(self.executor, LocalExecutor):
            return None  # a cluster's head trains nothing: each node checks its own cache
        run = self.state.run
        pinned = (run.data_sha256 if run else None) or self._data_pin
        manifest = data_manifest(profile, pinned)
        self._data_pin = manifest.sha256
        return manifest

    @property
    def data_pin(self) -> str | None:
        """The data manifest every cache must match: pinned by spawn, else the first one checked."""
        run = self.state.run
        return (run.data_sha256 if run else None) or self._data_pin

    def pin_data(self, sha256: str) -> None:
        """The first cache checked pins the rest, when spawn pinned none (a cluster's first node)."""
        if self.data_pin is None:
            self._data_pin = sha256

    def close(self) -> None:
        self._stop_ingest.set()
        if self._ingest_thread is not None:
            self._ingest_thread.join(timeout=5.0)
        if self.lock.fd is not None:
            self.board.append({"type": RUNNER, "slot": self.slot, "pid": os.getpid(), "event": "stop"})
        self.lock.release()
        close = getattr(self.executor, "close", None)
        if close is not None:
            close()

    @property
    def device(self) -> str:
        if not isinstance(self.executor, LocalExecutor):
            return self.executor.describe()
        run = self.state.run
        if run is not None:
            return run.device_for_slot(self.slot)
        return default_device(self.slot)

    def local_place(self) -> Place:
        """This box slot as a place: its device class, and its class's queue when agents share it."""
        run = self.state.run
        queue = run.class_queue(self.slot) if run is not None else None
        return Place(self.slot, self.device, queue)

    def recover_orphans(self) -> list[dict[str, Any]]:
        """Requeue (or, past max_attempts, fail) the jobs this runner's previous life left `running`: a box
        slot's own (whose leftover trainer it ends first), or every job a cluster's head had on a node (Ray
        ended their tasks with their driver)."""
        cluster = not isinstance(self.executor, LocalExecutor)
        return self._requeue_orphans(
            lambda slot, job: bool(job.get("node")) if cluster else slot == self.slot,
            "the Ray runner died" if cluster else "the runner died",
        )

    def adopt_orphans(self) -> list[dict[str, Any]]:
        """Requeue the jobs of the other slots of this slot's class whose runner is dead (no lock holder), so
        that the rest of a wave does not wait for a dead slot's runner to come back."""
        run = self.state.run
        queue = run.class_queue(self.slot) if run is not None else None
        if queue is None:
            return []
        siblings = set(run.runners_of(queue)) - {self.slot}
        board_dir = self.board.directory

        def dead(slot: str, job: dict[str, Any]) -> bool:
            return slot in siblings and not job.get("node") and runner_pid(board_dir, slot) is None

        if not any(dead(slot, job) for slot, job in self.state.running_slots().items()):
            return []  # the common case costs no board lock
        return self._requeue_orphans(dead, "its slot's runner died")

    def _requeue_orphans(
        self, orphaned: Callable[[str, dict[str, Any]], bool], what: str
    ) -> list[dict[str, Any]]:
        recovered = []
        with self.board.locked() as writer:  # decided under the lock: a runner that starts meanwhile waits
            self.state.refresh()
            for slot, job in list(self.state.running_slots().items()):
                if not orphaned(slot, job):
                    continue
                run_dir = self.runs_dir / job["id"]
                evaluation = private_dir(self.board.directory) / f"{job['id']}.eval"  # sealed.Evaluator
                for leftover in (run_dir, run_dir.with_name(run_dir.name + ".eval"), evaluation):
                    if end_stale_group(leftover, self.settings.kill_grace_s):
                        self.say(f"ended the process a dead runner left for {job['id']} in {leftover.name}")
                    remove(leftover)
                record = retry_or_crash(job, self.settings.max_attempts, what, **back_to_queue(job))
                recovered.append(writer.append(record))
                self.state.apply(recovered[-1])
        for record in recovered:
            self.say(f"{record['id']}: {record['reason']}")
        return recovered

    # -- the loop --------------------------------------------------------------------------------------------

    def serve(self, max_jobs: int | None = None) -> int:
        """Take jobs until stopped (SIGTERM / Ctrl-C) or `max_jobs` are recorded; returns jobs recorded."""
        done = 0
        previous = signal.signal(signal.SIGTERM, _raise_stopped)
        try:
            self.say(f"runner {self.slot} ({self.device}) waiting for jobs on {self.board.directory}")
            while max_jobs is None or done < max_jobs:
                started, recorded = self.dispatch()
                recorded += self.collect(0.0 if started else self.settings.poll_interval_s)
                done += recorded
                if not started and not recorded and not self.flights:
                    if isinstance(self.executor, LocalExecutor) and time.monotonic() > self._adopt_at:
                        self._adopt_at = time.monotonic() + ADOPT_EVERY_S
                        self.state.refresh()
                        self.adopt_orphans()
                    self.wake.wait(self.settings.poll_interval_s)  # set early when a job is ingested
                    self.wake.clear()
        except (RunnerStopped, KeyboardInterrupt):
            self.say(f"runner {self.slot} stopping")
            self._land_flights()
        finally:
            signal.signal(signal.SIGTERM, previous)
        return done

    def step(self) -> dict[str, Any] | None:
        """Claim and run one job on a box slot; the final record, or None when nothing is queued for it."""
        self.state.refresh()  # the run record names the slot's class
        place = next(iter(self.executor.free()), None)
        job = self.claim(place) if place is not None else None
        if job is None:
            return None
        return self.execute(job, place)

    def dispatch(self) -> tuple[int, int]:
        """Start the job the scheduler picks on every free place: (how many started, how many of them were
        recorded already: refused before training, or a box slot's run, which ends in here)."""
        started = recorded = 0
        self.state.refresh()
        for place in self.executor.free():
            job = self.claim(place)
            if job is None:
                continue
            started += 1
            recorded += self.execute(job, place) is not None
        return started, recorded

    def collect(self, timeout_s: float) -> int:
        """Record the runs that ended (waiting up to `timeout_s` for one); returns how many were recorded."""
        recorded = 0
        for landing in self.executor.wait(timeout_s if self.flights else 0.0):
            recorded += self.land(landing)
        return recorded

    def next_job(self, place: Place) -> dict[str, Any] | None:
        """The job `place` takes next (swarm.board.scheduling.pick), from the board as this runner sees it."""
        pinned = self.state.queue(place.slot)
        pooled = self.state.queue(place.class_queue) if place.class_queue else []
        if not pooled:
            return pick(pinned, (), ())
        running = [j for j in self.state.running_slots().values() if j.get("device") == place.device]
        agents = [a.name for a in self.state.run.agents] if self.state.run else []

        def share(job: dict[str, Any]) -> str:  # whose turn a job takes: its payer (swarm.board.charges)
            return payer(job, agents) or ""

        served = self._served({share(j) for j in [*pooled, *pinned[:1]]})
        return pick(pinned, pooled, running, served, share)

    def _served(self, shares: set[str]) -> dict[str, float]:
        """When each share's last finished job had started (its running ones the scheduler sees itself)."""
        served = {}
        for share in shares:
            summary = self.state.agents.get(share)  # (agent_summary would recompute its best)
            last = self.state.experiments.get(summary.last) if summary and summary.last else None
            if last is not None:
                served[share] = last.get("started_at") or 0.0
        return served

    def claim(self, place: Place | None = None) -> dict[str, Any] | None:
        """Mark the job the scheduler picks for `place` as running there (under the board lock), or None."""
        self.state.refresh()  # lock-free look first: an idle runner never takes the lock
        place = place or self.local_place()  # after the refresh: the swarm record names the slot's class
        if self.next_job(place) is None:
            return None
        with self.board.locked() as writer:
            self.state.refresh()
            job = self.next_job(place)
            if job is None:
                return None
            claimed = evolve(
                job,
                status=RUNNING,
                started_at=now(),
                gpu=place.slot,
                queue=job.get("queue") or job.get("gpu"),
                device=job.get("device") if place.node else place.device,
                finished_at=None,
            )
            if place.node:
                claimed["node"] = place.node
            written = writer.append(claimed)
            self.state.apply(written)
            return written

    # -- one job ---------------------------------------------------------------------------------------------

    def execute(self, job: dict[str, Any], place: Place | None = None) -> dict[str, Any] | None:
        """Plan a claimed job and launch it on `place`; a job refused before training is recorded at once.
        On a box slot the run ends in here and its final record is returned; a stop request requeues it and
        re-raises."""
        place = place or self.local_place()
        log_rel, log = self.log_for(job)
        run_dir = self.runs_dir / job["id"]
        where = f" on {place.node} GPU slot {place.slot}" if place.node else ""
        self.say(f"{job['id']} {job.get('agent')} {str(job.get('commit'))[:10]}: running{where}")
        fields: dict[str, Any] = {"log": log_rel}
        self.flights[job["id"]] = fields
        try:
            snapshot, plan, planned = self.plan(job, run_dir, log)
            fields.update(planned)
            if snapshot is not None and plan is not None:
                self.executor.launch(job, place, snapshot, plan, log, self._monitor(job, log))
        except (RunnerStopped, KeyboardInterrupt):
            self.flights.pop(job["id"], None)
            self._requeue_interrupted(job)
            raise
        except DataError as e:  # nothing may be recorded from a changed cache: requeue the job and stop
            self.flights.pop(job["id"], None)
            self._requeue_interrupted(job, f"requeued: {e}")
            raise
        except SwarmError as e:  # the job cannot run: a missing commit, a base without prepare.py, ...
            fields.update(status=CRASH, reason=str(e))
            snapshot = None
        finally:
            if not self.settings.keep_run_dirs or not isinstance(self.executor, LocalExecutor):
                remove(run_dir)
        if snapshot is None or plan is None:
            return self._finish(job, self.flights.pop(job["id"]))
        if isinstance(self.executor, LocalExecutor):
            landed = self.executor.wait(0.0)
            return self._finish_landing(landed[0]) if landed else None
        return None

    def land(self, landing: Landing) -> int:
        """Record a run that ended (or requeue it); 1 when a result was recorded."""
        return 0 if self._finish_landing(landing) is None else 1

    def _finish_landing(self, landing: Landing) -> dict[str, Any] | None:
        job = landing.job
        fields = self.flights.pop(job["id"], {})
        if landing.log_tail:
            _, log = self.log_for(job)
            with open(log, "ab") as f:
                f.write(landing.log_tail)
        if landing.lost is not None:  # the place went away: not the job's fault, but an attempt is used
            with self.board.locked() as writer:
                self.state.refresh()
                record = retry_or_crash(job, self.settings.max_attempts, landing.lost, **back_to_queue(job))
                self.state.apply(writer.append(record))
            self.say(f"{record['id']}: {record['reason']}")
            return None
        if landing.requeue is not None:  # nothing may be recorded from it
            self._requeue_interrupted(job, landing.requeue, **back_to_queue(job))
            self.say(f"{job['id']}: {landing.requeue}")
            return None
        if isinstance(self.executor, LocalExecutor):
            # The evaluator read its data before the trainer started, but a cache changed during this run
            # points at this run: nothing of it is recorded (DataError requeues it and stops the runner).
            try:
                self.data(job["profile"])
            except DataError as e:
                self._requeue_interrupted(job, f"requeued: {e}")
                raise
        return self._finish(job, {**fields, **(landing.fields or {})})

    def _finish(self, job: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        record = self.record(job, result)
        self.say(f"{record['id']}: {record['status']} {_val(record)} {record.get('reason') or ''}".rstrip())
        return record

    def _land_flights(self) -> None:
        """Stopping: the executor ends the runs in flight; their jobs are requeued (no attempt used)."""
        for landing in self.executor.in_flight():
            self.flights.pop(landing.job["id"], None)
            self._requeue_interrupted(landing.job, **back_to_queue(landing.job))
        self.flights.clear()

    def log_for(self, job: dict[str, Any]) -> tuple[str, Path]:
        """(path relative to the board, absolute path) of a job's log for its current attempt."""
        attempt = int(job.get("attempt") or 1)
        log_rel = f"logs/{job['id']}.log" if attempt == 1 else f"logs/{job['id']}.{attempt}.log"
        log = self.board.directory / log_rel
        log.parent.mkdir(parents=True, exist_ok=True)
        return log_rel, log

    def plan(
        self, job: dict[str, Any], run_dir: Path, log: Path
    ) -> tuple[RunDirectory | None, RunPlan | None, dict[str, Any]]:
        """Check what a claimed job may run, decide how it runs and materialise it in `run_dir`: (snapshot,
        plan, fields for its record), or (None, None, its final status) when it must not run. Any executor
        runs the plan (sealed.run_snapshot); a Ray node adapts it to itself first (swarm.runner.ray)."""
        base, commit = require_sha(job.get("base"), "base"), require_sha(job.get("commit"), "commit")
        profile = job["profile"]
        refused = self._refusal(base, commit, job.get("parent"))
        if refused is not None:
            return None, None, refused
        prepare = file_at(self.repo, base, "prepare.py")
        if prepare is None:
            return None, None, {"status": CRASH, "reason": f"the base commit {base[:12]} has no prepare.py"}
        pinned = self.state.run.prepare_sha256 if self.state.run else None
        if pinned and sha256_bytes(prepare) != pinned:
            return (
                None,
                None,
                {
                    "status": INVALID,
                    "reason": f"{PINNED_CODE}: prepare.py of {base[:12]} is not the one pinned at spawn ({pinned[:12]})",
                },
            )
        device = job.get("device") or self.device  # a cluster's job: its node's device class
        constants = profile_constants(prepare, profile, where=f"prepare.py of {base[:12]}")
        budget_x = float(job.get("budget_x") or 1.0)  # a transfer check (swarm.board.transfer)
        if budget_x != 1.0:
            constants["time_budget"] = constants["time_budget"] * budget_x
        plan = RunPlan(
            profile=profile,
            constants=constants,
            slot=self.slot,
            settings=self.settings,
            allowance_s=self._allowance(profile, base, device, constants["time_budget"]),
            eval_cache=CompileCaches(self.board.directory / COMPILE_CACHE_DIR).evaluator(),
            data=self.data(profile),
            environ=dict(os.environ),
            sandboxed=self.sandboxed,
            eval_timeout_s=self._eval_timeout(profile, base, device),
            private_dir=private_dir(self.board.directory, create=True),
            budget_x=budget_x,
        )
        if run_dir.exists():
            remove(run_dir)
        snapshot = materialise(self.repo, commit, prepare, run_dir)
        base_train = file_at(self.repo, base, "train.py")
        trusted = base_train is not None and sha256_bytes(base_train) == snapshot.train_sha256
        caches = CompileCaches(self.board.directory / COMPILE_CACHE_DIR)
        if isinstance(self.executor, LocalExecutor):  # a node compiles in its own sandbox's /tmp
            plan = replace(plan, compile_cache=caches.for_run(trusted, run_dir))
        with open(log, "ab") as f:
            f.write(
                f"# swarm runner {job.get('gpu') or self.slot} ({device}): experiment {job['id']} attempt {job.get('attempt')}\n"
                f"# commit {commit} base {base} profile {profile} timeout {plan.timeout:.0f}s "
                f"overhead allowance {plan.allowance_s:.1f}s evaluation {self.settings.evaluation}\n"
                f"# train.py sha256 {snapshot.train_sha256} prepare.py sha256 {snapshot.prepare_sha256}\n".encode()
            )
        fields = {"train_sha256": snapshot.train_sha256, "prepare_sha256": snapshot.prepare_sha256}
        return snapshot, plan, fields

    def _refusal(self, base: str, commit: str, parent: Any) -> dict[str, Any] | None:
        """An invalid outcome for a commit that may not run at all: changes outside the allow-list, or
        nothing but a new random seed relative to its base or its parent."""
        outside = disallowed_changes(self.repo, base, commit, self.settings.allowed_paths)
        if outside:
            allowed = ", ".join(self.settings.allowed_paths)
            return {
                "status": INVALID,
                "reason": f"changes outside the allow-list ({allowed}): {', '.join(outside)}",
            }
        train = file_at(self.repo, commit, "train.py")
        for before in {base, parent if isinstance(parent, str) and FULL_SHA.fullmatch(parent) else base}:
            if seed_only_change(file_at(self.repo, before, "train.py"), train):
                return {
                    "status": INVALID,
                    "reason": f"{SEED_ONLY}: train.py differs from {before[:12]} only in random seeds",
                }
        return None

    def _allowance(self, profile: str, base: str, device: str, budget: float) -> float:
        """The overhead allowance of this slot's device class, learned from its baseline runs (the base's
        train.py run there, finished in any way: one that overran the allowance teaches it too): their
        largest wall time outside training, plus the configured slack."""
        s = self.settings
        baseline = file_at(self.repo, base, "train.py")
        sha = sha256_bytes(baseline) if baseline else None
        cap = budget_limit(budget, s.budget_tolerance, s.budget_tolerance_s)
        overheads = [
            overhead
            for record in self.state.experiments.values()
            if sha is not None
            and record.get("train_sha256") == sha
            and record.get("evaluation") == s.evaluation
            and record.get("status") not in (QUEUED, RUNNING)
            and group_of(record) == (device, profile)
            and (overhead := run_overhead(record, cap)) is not None
        ]
        return overhead_allowance(overheads, s.overhead_slack, s.overhead_slack_s, s.overhead_default_s)

    def _eval_timeout(self, profile: str, base: str, device: str) -> float:
        """The evaluator's limit on this slot's device class: a multiple of its baselines' evaluation time."""
        evals = [
            r["eval_seconds"]
            for r in self._baselines(profile, base, device)
            if is_finite(r.get("eval_seconds"))
        ]
        return eval_timeout(self.settings, evals)

    def _baselines(self, profile: str, base: str, device: str) -> list[dict[str, Any]]:
        """The measured runs of the base's train.py on this device class and profile."""
        baseline = file_at(self.repo, base, "train.py")
        content = self.state.content((device, profile), sha256_bytes(baseline)) if baseline else None
        return [self.state.experiments.get(eid) or {} for eid in (content.ids if content else ())]

    def _monitor(self, job: dict[str, Any], log: Path) -> Monitor | None:
        """The early-stop watch of a job (swarm.runner.pruning), or None: off, a rerun (its number is
        wanted whatever it is), or no trusted reference curve in its group yet."""
        if not self.pruning.enabled or job.get("verify_of") or job.get("validate_of") or job.get("budget_x"):
            return None
        device = job.get("device") or self.device  # a cluster's job: its class
        reference = reference_curve(self.state, (device, job["profile"]), self.curves, self.pruning)
        return Monitor(log, reference, self.pruning) if reference else None

    @property
    def sandboxed(self) -> bool:
        """Trainers and the evaluator run in sandboxes unless the run was spawned `--unsealed`."""
        run = self.state.run
        return not (run is not None and run.unsealed)

    # -- recording -------------------------------------------------------------------------------------------

    def record(self, job: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        """Write the final record of a job; a measured result gets keep / marginal / discard from the board."""
        with self.board.locked() as writer:
            self.state.refresh()
            holdout = result.pop(HOLDOUT_FIELD, None)  # never on the board: agents read it
            final = evolve(job, finished_at=now(), **result)
            if not self.sandboxed:
                final["unsealed"] = True
            if final["status"] is None and final.get("budget_x"):  # a number beside the 1x one, no decision
                final.update(status=TRANSFER, reason=f"trained for {final['budget_x']:g}x the budget")
            if final["status"] is None:
                status, reason, reference, band = self.state.decide(final)
                final.update(status=status, reason=reason, reference=reference, band=band)
            written = writer.append(final)
            if holdout is not None and written.get("val_bpb") is not None:
                record_holdout(self.board.directory, written["id"], holdout)
            self.state.apply(written)
            for follow in after_result(writer, self.state, written):  # confirmation, calibration, verdicts
                self.say(f"{follow.get('id')}: {follow.get('type')} {follow.get('status') or ''}".rstrip())
        return written

    def _requeue_interrupted(
        self,
        job: dict[str, Any],
        reason: str = "requeued: the runner was stopped during the run",
        **requeue: Any,
    ) -> None:
        """Queue a job again in the queue it came from, without using an attempt; `requeue`: fields the
        queued record changes."""
        requeue = {**back_to_queue(job), **requeue}
        with self.board.locked() as writer:
            writer.append(evolve(job, status=QUEUED, started_at=None, reason=reason, **requeue))


def retry_or_crash(job: dict[str, Any], max_attempts: int, what: str, **requeue: Any) -> dict[str, Any]:
    """The next record of a job whose attempt ended without an outcome (`what`: "the runner died"): queued
    again in its original place with the next attempt, or `crash` once `max_attempts` were used, so one
    poisonous commit cannot wedge a slot. `requeue`: fields the queued record changes (e.g. its queue)."""
    attempt = int(job.get("attempt") or 1)
    if attempt >= max_attempts:
        return evolve(job, status=CRASH, finished_at=now(), reason=f"{what} during this job {attempt} times")
    return evolve(
        job,
        status=QUEUED,
        started_at=None,
        attempt=attempt + 1,
        reason=f"requeued: {what} during attempt {attempt}",
        **requeue,
    )


def back_to_queue(job: dict[str, Any]) -> dict[str, Any]:
    """The fields that put a job that was taken back in the queue it waited in: its class's queue (any
    slot of the class may take it again) or the one slot it was queued for."""
    queue = job.get("queue")
    if not queue and job.get("node"):  # a cluster job from before `queue` was recorded
        queue = ray_queue(str(job.get("device")))
    return {"gpu": queue or job.get("gpu"), "node": None}


def _raise_stopped(signum, frame) -> None:
    raise RunnerStopped()


def _val(record: dict[str, Any]) -> str:
    value = record.get("val_bpb")
    return f"val_bpb {value:.6f}" if is_finite(value) else ""


# ---------------------------------------------------------------------------------------------------------
# CLI


def cmd_runner(args) -> int:
    """`swarm runner --gpu K | --cpu K | --ray ADDRESS`: serve one slot (or a Ray cluster's GPUs) in the
    foreground."""
    if getattr(args, "ray", None):
        from swarm.runner.ray import RayExecutor, RaySettings  # imports ray: only a cluster run pays for it

        paths = run_paths()
        ray_settings = load_section(paths.repo, "ray", RaySettings)
        return _serve(paths, CLUSTER_RUNNER, args.max_jobs, RayExecutor(args.ray, ray_settings))
    return _serve(run_paths(), slot_from_args(args.gpu, args.cpu), args.max_jobs, None)


def _serve(paths: RunPaths, slot: str, max_jobs: int | None, executor: Executor | None) -> int:
    """Serve `slot` in the foreground with `executor` (None: this box's slot)."""
    board = Board(paths.board)
    settings = load_section(paths.repo, "runner", RunnerSettings)
    noise = load_section(paths.repo, "noise", NoiseSettings)
    pruning = load_section(paths.repo, "pruning", PruningSettings)
    say = lambda line: print(line, flush=True)  # noqa: E731
    runner = Runner(paths.repo, board, slot, settings, noise, log=say, pruning=pruning, executor=executor)
    if executor is not None:
        executor.bind(runner)
    runner.start()
    try:
        runner.serve(max_jobs=max_jobs)
    finally:
        runner.close()
    return 0
