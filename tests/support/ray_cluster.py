"""A local multi-node Ray cluster for tests, held by this process: `python -m tests.support.ray_cluster DIR`.

Run it inside a private network namespace (`unshare --net`, loopback up): every Ray process then listens
and talks on loopback only. It writes DIR/cluster.json (address and node ids), then obeys one command per
line on stdin, answering one line on stdout:
    add CLASS        a node with one fake GPU of that accelerator type -> its node id
    remove NODEID    kill that node (by id prefix) at once, as a machine that dies -> "removed"
    quit             shut the cluster down and exit
Health checks are fast so that a dead node is noticed in about a second.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ray.cluster_utils import Cluster

FAST_HEALTH_CHECKS = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 200,
    "health_check_timeout_ms": 200,
    "health_check_failure_threshold": 3,
}


def add_gpu_node(cluster: Cluster, device: str):
    return cluster.add_node(num_cpus=1, num_gpus=1, resources={f"accelerator_type:{device}": 1})


def main(directory: Path, classes: list[str]) -> int:
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "num_gpus": 0,
            "include_dashboard": False,
            "_system_config": FAST_HEALTH_CHECKS,
        },
    )
    nodes = {}
    try:
        for device in classes:
            node = add_gpu_node(cluster, device)
            nodes[node.node_id] = node
        cluster.wait_for_nodes()
        info = {
            "address": cluster.address,
            "nodes": {n.node_id: d for n, d in zip(nodes.values(), classes, strict=True)},
        }
        (directory / "cluster.json").write_text(json.dumps(info))
        for line in sys.stdin:
            command, _, arg = line.strip().partition(" ")
            if command == "add":
                node = add_gpu_node(cluster, arg)
                nodes[node.node_id] = node
                cluster.wait_for_nodes()
                print(node.node_id, flush=True)
            elif command == "remove":
                (node_id,) = [n for n in nodes if n.startswith(arg)]
                cluster.remove_node(nodes.pop(node_id), allow_graceful=False)
                print("removed", flush=True)
            elif command == "quit":
                break
    finally:
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2].split(",")))
