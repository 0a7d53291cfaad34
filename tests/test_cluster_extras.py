"""The cluster extras stay optional, and the SkyPilot recipe is valid: the one-box path never imports ray
or sky, `swarm spawn --ray` plans agents per device class, and SkyPilot's own loader reads the YAML. A
node adapts the head's plan to itself: its own environment, and its own cache checked against the pin."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from swarm.errors import DataError, SwarmError
from swarm.orchestration.cluster import plan_agents
from swarm.runner.sealed import RunPlan
from swarm.runner.settings import RunnerSettings
from swarm.target.data import load_manifest
from tests.support.swarm_run import commit_train, run_queued, stand_in_train
from tests.support.target import REPO_ROOT

ONE_BOX = """
import sys
from swarm.cli import main
from swarm.orchestration import spawn, launch, coordinator, status  # what a one-box swarm runs
from swarm.runner import service
from swarm.runner import executor, sealed
print(sorted(m for m in sys.modules if m.split(".")[0] in ("ray", "sky")))
"""


def test_the_one_box_path_imports_neither_ray_nor_skypilot(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", ONE_BOX],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_local_runner_serves_a_job_without_importing_ray(make_swarm_run, cli):
    run = make_swarm_run()
    commit_train(run.worktree("cpu0"), stand_in_train(val_bpb=1.1), "one")
    with run.agent_env("cpu0"):
        assert cli("submit", "-m", "one")[0] == 0
    record, *calibration = run_queued(run, "cpu0")  # a first keep also asks for calibration reruns (noise)
    assert record["status"] == "keep" and record["node"] is None
    assert all(r["node"] is None for r in calibration)
    assert not [m for m in sys.modules if m.split(".")[0] == "ray"]


def test_agents_are_planned_per_device_class():
    slots = plan_agents(["H100", "H100", "H100", "H200", "H200"], None, "H200")
    assert [(s.agent, s.queue, s.device) for s in slots] == [
        ("h100-0", "ray:H100", "H100"),
        ("h100-1", "ray:H100", "H100"),
        ("h100-2", "ray:H100", "H100"),
    ]
    mixed = plan_agents(["A100", "H100", "H100", "A100"], 3, None)
    assert [s.agent for s in mixed] == ["a100-0", "h100-0", "a100-1"]  # the classes take turns
    # more agents than GPUs: each class's GPUs are shared by its agents (any number, as on one box)
    many = plan_agents(["H100"] * 8, 16, None)
    assert len(many) == 16 and {s.queue for s in many} == {"ray:H100"} and many[-1].agent == "h100-15"
    for classes, agents, validate_on, message in [
        ([], None, None, "no GPUs"),
        (["H100"], None, "H200", "no H200 GPUs"),
        (["H200"], None, "H200", "no other class"),
        (["H100"], 5, None, "between 1 and 4 per screening GPU"),
    ]:
        with pytest.raises(SwarmError, match=message):
            plan_agents(classes, agents, validate_on)


def test_the_skypilot_recipe_loads_with_skypilots_own_loader():
    import sky  # scripts/setup.sh --dev installs the [sky] extra

    task = sky.Task.from_yaml(str(REPO_ROOT / "deploy" / "skypilot.yaml"))
    assert task.num_nodes == 2
    (resources,) = task.resources
    assert resources.accelerators == {"H100": 8}
    assert "swarm spawn --ray auto" in task.run and "ray start --head" in task.run
    # the API key is a secret given at launch (`--secret ANTHROPIC_API_KEY`), never written in the file
    config = yaml.safe_load((REPO_ROOT / "deploy" / "skypilot.yaml").read_text())
    assert config["secrets"] == {"ANTHROPIC_API_KEY": None}
    launched = sky.Task.from_yaml_config(config, secrets_overrides=[("ANTHROPIC_API_KEY", "sk-test")])
    assert set(launched.secrets) == {"ANTHROPIC_API_KEY"}
    assert "'.[ray]'" in task.setup


@pytest.mark.slow  # prepares a node's own data cache
def test_a_node_runs_on_its_own_environment_and_checks_its_own_cache(tiny_cache, tmp_path, monkeypatch):
    from swarm.runner.ray import node_plan, prepare_on_node

    cache = tmp_path / "node-cache"
    shutil.copytree(tiny_cache, cache)
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(cache))  # this "node"'s cache
    pin = load_manifest(cache).sha256
    # what the head ships: no environment of its own (a secret there would otherwise travel), no cache
    shipped = RunPlan("tiny", {}, "ray", RunnerSettings(), 1.0, None, {})
    local = node_plan(shipped, pin, "cpu0")
    assert local.environ == dict(os.environ) and local.slot == "cpu0"
    assert local.data is not None and local.data.sha256 == pin and local.data.root == cache
    assert (
        node_plan(dataclasses.replace(shipped, settings=RunnerSettings(evaluation="reported")), pin, "0").data
        is None
    )

    prepare = (REPO_ROOT / "prepare.py").read_bytes()
    args = ("--source", "local")
    code, output, sha = prepare_on_node(prepare, "tiny", args, 120.0, False, True, pin)
    assert (code, sha) == (0, pin), output
    code, output, sha = prepare_on_node(prepare, "tiny", args, 120.0, False, True, "0" * 64)
    assert code == 1 and sha is None and output.startswith("data cache:")  # not the run's data: no jobs

    with pytest.raises(DataError):  # another manifest than the run's pin
        node_plan(shipped, "0" * 64, "cpu0")
    shard = next(p for p in sorted((cache / "eval").iterdir()) if p.is_file())
    shard.chmod(0o644)
    with open(shard, "ab") as f:  # the node's cache changed after it was prepared
        f.write(b"\0")
    with pytest.raises(DataError):
        node_plan(shipped, pin, "cpu0")
