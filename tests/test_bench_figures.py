"""Benches whose figures come from the real board code must measure that code: a bench that silently
stops exercising the rule it reports on prints confident nonsense (noise_decisions printed 100% keeps at
effect 0 once the runner's first claim stamped a device class the bench's swarm record did not name)."""

import importlib.util

from swarm.board.experiments import new_experiment
from swarm.board.run_record import AgentEntry, SwarmRecord
from swarm.board.store import Board
from swarm.runner.service import Runner
from tests.support.target import REPO_ROOT


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_runners_first_claim_takes_the_device_class_the_swarm_record_names(tmp_path):
    board = Board(tmp_path).create()
    agent = AgentEntry("gpu0", "sim", "0", "H200", str(tmp_path), "swarm/t/gpu0/work")
    board.append(SwarmRecord("t", "0" * 40, "tiny", (agent,)).to_record())
    job = new_experiment(
        agent="gpu0", gpu="0", device="H200", profile="tiny", tag="t", commit="a" * 40, base="0" * 40,
        train_sha256="a", description="x",
    )  # fmt: skip
    board.append(job)
    claimed = Runner(tmp_path, board, "0", log=lambda *_: None).claim()  # no start(), no refresh before
    assert claimed is not None and claimed["device"] == "H200"


def test_noise_decisions_measures_the_keep_rule_not_a_first_result_kept_unjudged(tmp_path):
    bench = _bench("noise_decisions")
    trials = [bench.run_trial("paired", 0.0, seed, tmp_path, 0.0) for seed in range(8)]
    kept = sum(k for k, _ in trials)
    assert kept <= 3, trials  # a change that does nothing is rarely kept (goal <= 5%; 8 trials: slack)
    assert any(reruns for _, reruns in trials), trials  # promising results were confirmed by reruns
