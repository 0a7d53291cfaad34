"""The cluster extras stay optional, and the SkyPilot recipe is valid: the one-box path never imports ray
or sky, `swarm spawn --ray` plans agents per device class, and SkyPilot's own loader reads the YAML."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from swarm.errors import SwarmError
from swarm.orchestration.cluster import plan_agents
from tests.support.swarm_run import commit_train, run_queued, stand_in_train
from tests.support.target import REPO_ROOT

ONE_BOX = """
import sys
from swarm.cli import main
from swarm.orchestration import spawn, launch, coordinator, status  # what a one-box swarm runs
from swarm.runner import service
from swarm.runner import local
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
    (record,) = run_queued(run, "cpu0")
    assert record["status"] == "keep" and record["node"] is None
    assert not [m for m in sys.modules if m.split(".")[0] == "ray"]


def test_agents_are_planned_per_device_class():
    slots = plan_agents(["H100", "H100", "H100", "H200", "H200"], None, "H200")
    assert [(s.agent, s.gpu, s.device) for s in slots] == [
        ("h100-0", "ray:H100", "H100"),
        ("h100-1", "ray:H100", "H100"),
        ("h100-2", "ray:H100", "H100"),
    ]
    mixed = plan_agents(["A100", "H100", "H100", "A100"], 3, None)
    assert [s.agent for s in mixed] == ["a100-0", "h100-0", "a100-1"]  # the classes take turns
    for classes, agents, validate_on, message in [
        ([], None, None, "no GPUs"),
        (["H100"], None, "H200", "no H200 GPUs"),
        (["H200"], None, "H200", "no other class"),
        (["H100"], 2, None, "between 1 and the 1 screening GPUs"),
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
