"""The CPU mirror of the CUDA path, end to end: with `[runner] cuda_mirror = true` a real tiny-profile run goes
the way a GPU run goes but for the device. train.py compiles and trains under bf16 autocast inside the real
trainer sandbox (its compile cache the agent's own, writable there), hands over model.pt2, and the evaluator
runs the program compiled under bf16 autocast in its sandbox (--mirror); the result lands on the board."""

import json

import pytest

from swarm.runner.sandbox import sandbox_problem
from swarm.target.summary import is_finite
from tests.support.swarm_run import commit_train, latest
from tests.support.target import REPO_ROOT

pytestmark = pytest.mark.slow  # cold compiles of the tiny model in sandboxes

# A cold compile of the tiny model on a loaded CPU takes minutes: the clock's default allowance is for a GPU.
MIRROR_CONFIG = "[runner]\ncuda_mirror = true\noverhead_default_s = 1200.0\n"


@pytest.mark.timeout(2400)  # two cold compiles (trainer, evaluator): minutes of CPU, more on a loaded machine
@pytest.mark.skipif(sandbox_problem() is not None, reason=f"{sandbox_problem()}")
def test_a_mirrored_run_is_compiled_under_autocast_in_both_sandboxes(make_swarm_run, tiny_cache, monkeypatch):
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(tiny_cache))
    train = (REPO_ROOT / "train.py").read_text()
    prepare = (REPO_ROOT / "prepare.py").read_text()
    run = make_swarm_run(prepare=prepare, train=train, config=MIRROR_CONFIG)
    run.start_runner("cpu0")
    worktree = run.worktree("cpu0")
    commit_train(worktree, train + "\n# the agent's first experiment: the baseline\n", "baseline")
    proc = run.submit_and_wait("cpu0", "baseline", timeout_s=2400)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    log = (run.board.directory / record["log"]).read_text()
    assert record["status"] == "keep", (record["reason"], log[-3000:])
    assert record["evaluation"] == "sealed" and is_finite(record["val_bpb"]) and 0 < record["val_bpb"] < 10
    assert record == latest(run.board, record["id"])
    assert "(compiled, bf16 autocast)" in log and '"outcome": "measured"' in log
    caches = run.board.directory / "compile-cache"
    # a changed train.py compiles into a private copy, never the persistent cache (swarm.runner.caches)
    assert not (caches / "base" / "inductor").exists() or not any((caches / "base" / "inductor").iterdir())
    assert any((caches / "evaluator" / "inductor").iterdir())  # the evaluator compiled (--mirror)
