"""Slot and queue keys (swarm.board.slots) and the agent entry's queue under its board name `gpu`."""

import json

import pytest

from swarm.board.run_record import AgentEntry, SwarmRecord, Worker, latest_run, write_run_record
from swarm.board.slots import (
    CLUSTER_RUNNER,
    box_queue,
    cpu_slot,
    default_device,
    gpu_slot,
    is_class_queue,
    is_cpu_slot,
    is_ray_queue,
    local_gpu,
    queue_device,
    ray_queue,
    ray_slot,
    runner_of,
)
from swarm.board.store import Board


@pytest.mark.parametrize(
    "key, cpu, class_queue, ray, runner, cuda, device",
    [
        (gpu_slot(3), False, False, False, "3", "3", "gpu3"),
        (cpu_slot(0), True, False, False, "cpu0", "", "cpu"),
        (ray_slot("a1b2c3d4e5f6", 0), False, False, False, "a1b2c3d4/0", "a1b2c3d4/0", "gpua1b2c3d4/0"),
        (box_queue("cpu"), False, True, False, "box:cpu", "", "gpubox:cpu"),
        (ray_queue("H100"), False, True, True, CLUSTER_RUNNER, "", "gpuray:H100"),
    ],
)
def test_every_key_form_is_written_and_read_by_one_module(key, cpu, class_queue, ray, runner, cuda, device):
    assert is_cpu_slot(key) is cpu
    assert is_class_queue(key) is class_queue
    assert is_ray_queue(key) is ray
    assert runner_of(key) == runner
    if not class_queue:
        assert local_gpu(key) == cuda and default_device(key) == device
    else:
        assert local_gpu(key) == ""


def test_the_keys_keep_the_strings_boards_already_hold():
    # boards written before this module hold these exact strings: the formats must never drift
    assert (gpu_slot(3), gpu_slot("03"), cpu_slot(1)) == ("3", "03", "cpu1")
    assert ray_slot("a1b2c3d4e5f6a7b8", 2) == "a1b2c3d4/2"
    assert (box_queue("NVIDIA H100 80GB HBM3"), ray_queue("H200")) == (
        "box:NVIDIA H100 80GB HBM3",
        "ray:H200",
    )
    assert queue_device(box_queue("cpu")) == "cpu" and queue_device(ray_queue("H200")) == "H200"


def test_an_agent_entrys_queue_is_written_and_read_as_gpu(tmp_path):
    board = Board(tmp_path / "board").create()
    agent = AgentEntry("gpu0", "claude", box_queue("cpu"), "cpu", "/w/gpu0", "swarm/t/gpu0/work")
    run = SwarmRecord(
        tag="t", base="a" * 40, profile="tiny", agents=(agent,), workers=(Worker("gpu0", "cpu0", "cpu"),)
    )
    write_run_record(board, run)
    line = json.loads(board.path.read_text().splitlines()[-1])
    assert (
        line["agents"][0]["gpu"] == "box:cpu" and "queue" not in line["agents"][0]
    )  # the board's field name
    assert latest_run(board.records()) == run


def test_a_run_record_written_before_the_rename_still_reads(tmp_path):
    board = Board(tmp_path / "board").create()
    entry = {"name": "gpu3", "kind": "codex", "gpu": "3", "device": "H100", "worktree": "/w", "branch": "b"}
    board.append({"type": "run", "tag": "old", "base": "b" * 40, "profile": "h100", "agents": [entry]})
    run = latest_run(board.records())
    assert run.agents[0].queue == "3" and run.agent_of_queue("3") == run.agents[0]
    assert run.device_for_slot("3") == "H100" and run.slots() == ["3"]
