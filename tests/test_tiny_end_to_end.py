"""A real tiny-profile train.py run through `swarm run` end to end: an agent worktree, a CPU runner
process, the repository's own prepare.py and train.py, the sealed evaluator, and the result on the board."""

import json

import pytest

from swarm.target.summary import is_finite
from tests.support.swarm_run import commit_train, latest
from tests.support.target import REPO_ROOT

pytestmark = pytest.mark.slow  # the real train.py through a real runner


def test_swarm_run_trains_tiny_profile_on_cpu(make_swarm_run, tiny_cache, monkeypatch):
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(tiny_cache))
    train = (REPO_ROOT / "train.py").read_text()
    run = make_swarm_run(prepare=(REPO_ROOT / "prepare.py").read_text(), train=train)
    run.start_runner("cpu0")
    worktree = run.worktree("cpu0")
    commit_train(worktree, train + "\n# the agent's first experiment: the baseline\n", "baseline")
    proc = run.submit_and_wait("cpu0", "baseline", timeout_s=240)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record == latest(run.board, record["id"])
    log = (run.board.directory / record["log"]).read_text()
    assert record["status"] == "keep", (record["reason"], log[-2000:])
    assert record["profile"] == "tiny" and record["device"] == "cpu" and record["gpu"] == "cpu0"
    assert is_finite(record["val_bpb"]) and 0 < record["val_bpb"] < 10
    assert record["window_seconds"] <= 15 + 3 and record["num_steps"] > 0  # the runner's clock, its limit
    assert record["prepare_sha256"] and record["train_sha256"]
    assert "profile:          tiny" in log and '"outcome": "measured"' in log  # trainer, then evaluator
    assert record["evaluation"] == "sealed" and record["eval_seconds"] > 0
    assert record["wall_seconds"] >= record["training_seconds"]
    busy = record["wall_seconds"] + record["eval_seconds"]
    assert busy <= record["finished_at"] - record["started_at"] <= busy + 10
