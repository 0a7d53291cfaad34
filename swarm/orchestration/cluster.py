"""A Ray cluster's GPUs as a run's agents: `swarm spawn --ray ADDRESS|auto [--agents N] [--validate-on CLASS]`.

The cluster's GPUs are grouped by device class (each node's accelerator type). The agents run on the head,
in tmux as on one box, one per GPU of the screening classes (or `--agents N` of them, spread over the
classes in turn); an agent's `gpu` is its class's queue ("ray:H100"), which every GPU of the class serves
(swarm.runner.ray), so agents that submit ahead keep all of them busy. With `--validate-on CLASS` that
class gets no agents: its GPUs validate the screening classes' new bests (swarm.orchestration.validate).
Only a cluster run imports ray (through swarm.runner.ray), and only here and in its runner.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from swarm.board.slots import ray_queue
from swarm.errors import SwarmError
from swarm.orchestration.gpus import AgentPlace

MAX_AGENTS_PER_SLOT = 4  # more agents than this per GPU would mostly wait: a wave per agent keeps GPUs busy


def agent_name(device: str, index: int) -> str:
    """ "h100-0": the class in lower case (letters, digits, '-'), then the agent's number in its class."""
    slug = re.sub(r"[^a-z0-9]+", "-", device.lower()).strip("-") or "gpu"
    return f"{slug}-{index}"


def plan_agents(
    classes: list[str], agents: int | None, validate_on: str | None, queue: Callable[[str], str] = ray_queue
) -> list[AgentPlace]:
    """The agents for slots of these device classes (one entry per GPU), each queueing for its class's
    `queue` (a cluster's "ray:H100"; a box's "box:...", swarm.orchestration.spawn)."""
    counts = Counter(classes)
    if not counts:
        raise SwarmError("the Ray cluster has no GPUs (no node offers a GPU resource)")
    if validate_on is not None and validate_on not in counts:
        raise SwarmError(
            f"--validate-on {validate_on}: the cluster has no {validate_on} GPUs ({_describe(counts)})"
        )
    screening = {c: n for c, n in counts.items() if c != validate_on}
    if not screening:
        raise SwarmError(
            f"--validate-on {validate_on}: no other class is left to screen ({_describe(counts)})"
        )
    total = sum(screening.values())
    wanted = total if agents is None else agents
    if not 1 <= wanted <= MAX_AGENTS_PER_SLOT * total:
        raise SwarmError(
            f"--agents {agents}: between 1 and {MAX_AGENTS_PER_SLOT} per screening GPU ({_describe(counts)})"
        )
    order: list[str] = []  # classes in turn, each as often as it has GPUs (then again, for more agents)
    while len(order) < wanted:
        left = dict(screening)
        while len(order) < wanted and any(left.values()):
            for device in sorted(left):
                if left[device] and len(order) < wanted:
                    order.append(device)
                    left[device] -= 1
    taken: Counter[str] = Counter()
    places = []
    for device in order:
        places.append(AgentPlace(agent_name(device, taken[device]), queue(device), device))
        taken[device] += 1
    return places


def cluster_places(address: str, agents: int | None, validate_on: str | None) -> list[AgentPlace]:
    from swarm.runner.ray import discover  # imports ray: only a cluster run pays for it

    return plan_agents([gpu.device for gpu in discover(address)], agents, validate_on)


def _describe(counts: Counter[str]) -> str:
    return ", ".join(f"{n} x {c}" for c, n in sorted(counts.items()))
