"""Who pays for a job, and the order a slot's jobs run in so that no agent's asking delays another's work.

Every queued job is charged to one agent, its payer: the agent that asked for it. An experiment is its
agent's; a rerun an agent asked for (`swarm verify`) is the asker's, whoever's result it reruns; the runs
the board asks for itself (confirmation, calibration) or a person asks for (`swarm verify` by hand, the
watch screen, the coordinator) are the experiment's agent's.

Two rules keep a verify flood (60 requests of 16 reruns) from taking another agent's slot:
- admission (`admit_verify`): an agent has at most VERIFY_QUOTA reruns of its asking pending at a time,
  and an experiment at most one pending verification asked by an agent;
- order (`fair_order`): on each slot the payers take turns: the payer whose latest job there started
  longest ago goes next, each payer's jobs in order of submission (calibration reruns first as before; a
  confirmation's reruns back to back). An agent whose next job waits behind another agent's reruns
  therefore waits for at most one of them per agent asking, whatever they queued.
A new scheduler calls the same two functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from swarm.board.experiments import CALIBRATION, CONFIRMATION, PENDING_STATUSES, submitted
from swarm.errors import SwarmError

VERIFY_QUOTA = 16  # reruns of an agent's asking pending at once (one full `swarm verify --repeats 16`)


def payer(job: dict[str, Any], agents: Iterable[str]) -> str | None:
    """The agent a job is charged to: the agent that asked for a rerun, else the job's agent."""
    asker = job.get("requested_by")
    return asker if asker is not None and asker in set(agents) else job.get("agent")


def pending_charged(jobs: Iterable[dict[str, Any]], agent: str) -> int:
    """How many pending reruns `agent` asked for among `jobs` (the latest record of each experiment)."""
    return sum(1 for j in jobs if j.get("requested_by") == agent and j.get("status") in PENDING_STATUSES)


def admit_verify(
    jobs: Iterable[dict[str, Any]],
    original: dict[str, Any],
    asker: str,
    repeats: int,
    quota: int = VERIFY_QUOTA,
) -> None:
    """Refuse (SwarmError) an agent's request for `repeats` reruns of `original` when a verification of it
    asked by an agent is still pending, or when the reruns would take the asker past its quota."""
    jobs = list(jobs)
    system = (CONFIRMATION, CALIBRATION)
    for job in jobs:
        if (
            job.get("verify_of") == original["id"]
            and job.get("status") in PENDING_STATUSES
            and job.get("requested_by") not in system
        ):
            raise SwarmError(
                f"experiment {original['id']} has a verification pending already (asked by "
                f"{job.get('requested_by')}): wait for its verdict"
            )
    pending = pending_charged(jobs, asker)
    if pending + repeats > quota:
        raise SwarmError(
            f"{asker} has {pending} rerun(s) of its asking pending; {repeats} more would pass its quota of "
            f"{quota}: wait for them to finish"
        )


def fair_order(
    jobs: Iterable[dict[str, Any]],
    agents: Iterable[str],
    served: dict[str, float] | None = None,
    last: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """A slot's queued jobs in the order they run: calibration reruns first; then the rest of a
    confirmation whose rerun ran last on the slot (its runs stay back to back); then the payer served
    longest ago on this slot (`served`: payer -> when its latest job there started) first, each payer's
    jobs oldest first."""
    agents = set(agents)
    served = served or {}
    last_unit = _unit(last) if last else None
    return sorted(
        jobs,
        key=lambda j: (
            j.get("requested_by") != CALIBRATION,
            last_unit is None or _unit(j) != last_unit,
            served.get(payer(j, agents) or "", 0.0),
            submitted(j),
        ),
    )


def _unit(job: dict[str, Any]) -> Any:
    """What runs back to back: a confirmation's reruns (and controls) of one result; any other job alone."""
    return (
        ("confirmation", job.get("verify_of")) if job.get("requested_by") == CONFIRMATION else job.get("id")
    )
