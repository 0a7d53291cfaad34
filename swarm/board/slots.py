"""Slot and queue keys: the one place that writes and reads the strings naming where a job waits and runs.

A *slot* executes one run at a time: "3" (GPU 3 of the box), "cpu0" (a CPU worker), "a1b2c3d4/0" (GPU 0 of
a Ray node). A *queue* is where a job waits: a slot's own (its slot key) or a device class's, "box:cpu"
(any slot of the class on the box serves it) or "ray:H100" (the Ray cluster's GPUs of the class). On the
board both sit in the experiment's `gpu` field (a queue while it waits, the slot once one takes it) and an
agent entry's `gpu` (its queue): the field keeps its name, a contract (docs/glossary.md).
"""

from __future__ import annotations

BOX_QUEUE_PREFIX = "box:"  # the queue of a device class of one box: every local slot of the class serves it
RAY_QUEUE_PREFIX = "ray:"
CPU_PREFIX = "cpu"
CLUSTER_RUNNER = "ray"  # the one runner of a cluster swarm (its lock and records), on the head


def gpu_slot(index: int | str) -> str:
    """GPU `index` of the box ("3"): also its CUDA_VISIBLE_DEVICES."""
    return str(index)


def cpu_slot(index: int | str) -> str:
    """CPU worker `index` ("cpu0")."""
    return f"{CPU_PREFIX}{index}"


def ray_slot(node_id: str, index: int) -> str:
    """GPU `index` of a Ray node ("a1b2c3d4/0"): the node id's first 8 characters keep it short and unique."""
    return f"{node_id[:8]}/{index}"


def is_cpu_slot(slot: str) -> bool:
    """A slot that is a CPU worker ("cpu0") rather than a GPU index ("3")."""
    return slot.startswith(CPU_PREFIX)


def box_queue(device: str) -> str:
    """The queue of a device class on one box ("box:cpu"): the `gpu` of its agents and of their jobs while
    they wait; any free slot of the class takes them (swarm.board.scheduling), and a job that runs gets
    the slot it ran on instead."""
    return BOX_QUEUE_PREFIX + device


def ray_queue(device: str) -> str:
    """The queue of a Ray cluster's device class ("ray:H100"): the `gpu` of its agents and of the jobs
    waiting for any GPU of that class; a job that runs gets the GPU it ran on instead (swarm.runner.ray)."""
    return RAY_QUEUE_PREFIX + device


def is_ray_queue(key: str) -> bool:
    return key.startswith(RAY_QUEUE_PREFIX)


def is_class_queue(key: str) -> bool:
    """A device class's queue (a box's or a cluster's) rather than one slot."""
    return key.startswith((BOX_QUEUE_PREFIX, RAY_QUEUE_PREFIX))


def queue_device(queue: str) -> str:
    """The device class of a class queue ("box:cpu" -> "cpu")."""
    return queue.removeprefix(BOX_QUEUE_PREFIX).removeprefix(RAY_QUEUE_PREFIX)


def runner_of(queue: str) -> str:
    """The runner that serves jobs queued in `queue`: the slot's own, or for a Ray class the cluster's runner."""
    return CLUSTER_RUNNER if is_ray_queue(queue) else queue


def local_gpu(queue: str) -> str:
    """CUDA_VISIBLE_DEVICES for an agent of this queue: its GPU index, or none (a CPU worker; a class's
    queue, whose jobs train on whichever slot takes them)."""
    return "" if is_cpu_slot(queue) or is_class_queue(queue) else queue


def default_device(slot: str) -> str:
    """The device class of a slot no swarm record names: "cpu" for a CPU worker, else "gpuK"."""
    return "cpu" if is_cpu_slot(slot) else f"gpu{slot}"
