"""The executor seam: where a planned, materialised snapshot runs sealed, and what comes back.

The runner decides everything that must not depend on where a job trains: what may run (allow-list,
seed-only, the pinned prepare.py), the snapshot (raw blobs), the budget, timeout and overhead allowance (a
`sealed.RunPlan`), and afterwards the status and the record. Between the two an executor runs
`sealed.run_snapshot(snapshot, plan, log)`, which returns the record fields of the run (trainer in its
sandbox, the runner's clock, then the evaluator in its own). Two executors exist, one family:

    LocalExecutor        this machine: run_snapshot in the runner's own process -- `swarm runner --gpu K`
    swarm.runner.ray     a GPU of some node of a Ray cluster: the snapshot's bytes and the plan travel with a
                         Ray task, the node adapts the plan to itself (its environment, the GPU Ray gave the
                         task, its data cache checked against the run's pin) and runs run_snapshot there; the
                         fields and the capped log come back to the head, which alone writes the board

So a change to how a run is sealed (sandbox, evaluator, clock) is made once, in swarm.runner.sealed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from swarm.runner.pruning import Monitor
from swarm.runner.sealed import RunPlan, run_snapshot
from swarm.runner.snapshot import RunDirectory


class Executor(Protocol):
    def run(
        self, snapshot: RunDirectory, plan: RunPlan, log: Path, monitor: Monitor | None = None
    ) -> dict[str, Any]:
        """Run the snapshot sealed, appending its output to `log`, stopped early by `monitor` when hopeless
        (swarm.runner.pruning); the record fields of the run (DataError when the data cache no longer
        matches the pin: nothing may be recorded)."""
        ...


class LocalExecutor:
    """Runs on this machine, on the slot the plan names."""

    def run(
        self, snapshot: RunDirectory, plan: RunPlan, log: Path, monitor: Monitor | None = None
    ) -> dict[str, Any]:
        return run_snapshot(snapshot, plan, log, monitor)
