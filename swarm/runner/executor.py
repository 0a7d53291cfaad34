"""The executor seam: where a planned, materialised snapshot runs sealed, and what comes back.

One runner loop (swarm.runner.service.Runner) serves every place a job can train: it asks its executor for
the free places, picks, checks and plans a job for each, hands it over, and records what lands. An executor
runs `sealed.run_snapshot(snapshot, plan, log)`: LocalExecutor in the runner's own process for one slot of
this machine, swarm.runner.ray on a Ray cluster's node. So a change to how a run is sealed is made once,
in swarm.runner.sealed, and a change to scheduling, claiming, requeueing or recording once, in the runner.
Long story: docs/cluster.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from swarm.board.fold import BoardState
from swarm.runner.pruning import Monitor
from swarm.runner.sealed import RunPlan, run_snapshot
from swarm.runner.settings import RunnerSettings
from swarm.runner.snapshot import RunDirectory


@dataclass(frozen=True)
class Place:
    """Where one job trains: a slot, the device class its results are compared within, and the queues it
    takes jobs from (its own slot's, and its class's when agents share the class)."""

    slot: str  # "3", "cpu0", or a cluster GPU "a1b2c3d4/0"
    device: str
    class_queue: str | None = (
        None  # the class queue it serves ("box:cpu", "ray:H100"), None: its own slot only
    )
    node: str | None = None  # a cluster node ("a1b2c3d4@10.0.0.5"), None on one box


@dataclass
class Landing:
    """A job whose run ended on its place. Exactly one of: `fields` (its record fields: a result to
    record), `lost` (the place went away, e.g. a node died: not the job's fault, an attempt is used),
    `requeue` (nothing may be recorded, e.g. the node's data cache changed: requeued, no attempt used)."""

    job: dict[str, Any]
    place: Place
    fields: dict[str, Any] | None = None
    lost: str | None = None
    requeue: str | None = None
    log_tail: bytes = field(default=b"", repr=False)  # output that came back from elsewhere, for the log


class RunnerView(Protocol):
    """What an executor that prepares places of its own (a cluster's nodes) may read of its runner."""

    repo: Path
    settings: RunnerSettings
    state: BoardState

    @property
    def sandboxed(self) -> bool: ...

    @property
    def data_pin(self) -> str | None: ...

    def pin_data(self, sha256: str) -> None: ...

    def say(self, line: str) -> None: ...


class Executor(Protocol):
    def describe(self) -> str:
        """What it serves, for the runner's log line ("gpu3", "Ray cluster auto")."""
        ...

    def free(self) -> list[Place]:
        """The places ready to take a job now."""
        ...

    def launch(
        self,
        job: dict[str, Any],
        place: Place,
        snapshot: RunDirectory,
        plan: RunPlan,
        log: Path,
        monitor: Monitor | None,
    ) -> None:
        """Start the job's sealed run on `place` (the runner already marked it running there)."""
        ...

    def wait(self, timeout_s: float) -> list[Landing]:
        """Wait up to `timeout_s` for runs to end (and do the executor's own upkeep meanwhile)."""
        ...

    def in_flight(self) -> list[Landing]:
        """Stopping: end the runs in flight; each comes back (no fields) for the runner to requeue."""
        ...


class LocalExecutor:
    """One slot of this machine, one job at a time, run in this process: `launch` returns when the run
    ended, so a SIGTERM during it stops the runner right there (the runner requeues the job), and a data
    cache that changed raises DataError through it (the runner requeues the job and stops)."""

    def __init__(self, where: Callable[[], Place] | None = None):
        self.where = where  # the slot's place, as the run record says now (set by the runner)
        self.landed: list[Landing] = []
        self.busy = False

    def describe(self) -> str:
        return self.where().device if self.where else "?"

    def free(self) -> list[Place]:
        return [] if self.busy or self.where is None else [self.where()]

    def launch(
        self,
        job: dict[str, Any],
        place: Place,
        snapshot: RunDirectory,
        plan: RunPlan,
        log: Path,
        monitor: Monitor | None,
    ) -> None:
        self.busy = True
        try:
            fields = self.run(snapshot, plan, log, monitor)
        finally:
            self.busy = False
        self.landed.append(Landing(job, place, fields=fields))

    def run(
        self, snapshot: RunDirectory, plan: RunPlan, log: Path, monitor: Monitor | None = None
    ) -> dict[str, Any]:
        return run_snapshot(snapshot, plan, log, monitor)

    def wait(self, timeout_s: float) -> list[Landing]:
        landed, self.landed = self.landed, []
        return landed

    def in_flight(self) -> list[Landing]:
        return []  # a local run never outlives launch()
