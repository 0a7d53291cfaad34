"""End to end: `swarm agent api` as a real process, driven by a scripted fake model over the Anthropic and
the OpenAI protocol, edits train.py, commits, runs `swarm run`, reads the status and acts on it, and
completes two experiments of the real train.py (tiny profile, CPU) that a real runner measured and
recorded on the board."""

import os
import re
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

from swarm.board import EXPERIMENT, USAGE
from swarm.fake_model import FakeModelServer, Reply, Script
from swarm.records import FINAL_STATUSES
from tests.support.swarm_run import git

TRAIN = (REPO_ROOT / "train.py").read_text()
PREPARE = (REPO_ROOT / "prepare.py").read_text()


def learning_rate_edit(train: str) -> tuple[str, str]:
    """An edit a researcher might make: the tiny profile's MATRIX_LR up by a quarter (exact old text)."""
    match = re.search(r"^    MATRIX_LR = ([0-9.]+)$", train, re.MULTILINE)
    assert match, "train.py's tiny block has no MATRIX_LR line"
    return match.group(0), f"    MATRIX_LR = {float(match.group(1)) * 1.25:g}"


def research_script(old: str, new: str) -> Script:
    """Baseline, one change, then act on the status the change got: keep it, or reset."""

    def keep_or_reset(request):
        result = request.tool_results()[0]
        assert "status:" in result, result
        if "status:           keep" in result:
            return Reply.calling("run", "It helped; checking the board.", command="swarm best")
        return Reply.calling("run", "No gain; going back.", command="git reset --hard HEAD~1")

    return Script(
        [
            Reply.calling("read_file", "Reading train.py first.", path="train.py"),
            Reply.calling("run", "Baseline first.", command='swarm run -m "baseline"'),
            Reply.calling("edit_file", path="train.py", old=old, new=new),
            Reply.calling("run", command='git commit -am "matrix lr x1.25"'),
            Reply.calling("run", command='swarm run -m "matrix lr x1.25"'),
            keep_or_reset,
        ]
    )


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_api_agent_completes_two_experiments(make_swarm_run, tiny_cache, monkeypatch, provider):
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(tiny_cache))  # the runner passes it on to train.py
    run = make_swarm_run(agents=("cpu0",), train=TRAIN, prepare=PREPARE)
    run.start_runner("cpu0")
    script = research_script(*learning_rate_edit(TRAIN))
    with FakeModelServer(script) as server:
        base_url = server.url if provider == "anthropic" else server.url + "/v1"
        key_env = "ANTHROPIC_API_KEY" if provider == "anthropic" else "OPENAI_API_KEY"
        env = run.runner_env() | {
            "SWARM_AGENT": "cpu0",
            "SWARM_GPU": "cpu0",
            "SWARM_TAG": run.run.tag,
            key_env: server.api_key,
        }
        argv = [sys.executable, "-m", "swarm", "agent", "api", "--provider", provider, "--base-url", base_url]
        proc = subprocess.Popen(
            [*argv, "--model", "fake-model", "--max-turns", "6"],
            cwd=run.worktree("cpu0"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            output, _ = proc.communicate(timeout=240)
        finally:
            if proc.poll() is None:  # SIGTERM: the agent stops the command it is running too
                proc.terminate()
                proc.wait()
        protocols = {r.protocol for r in server.model_requests()}
    assert proc.returncode == 0, output
    assert protocols == {"anthropic" if provider == "anthropic" else "responses"}
    records = run.board.records()
    experiments = {}
    for r in records:
        if r["type"] == EXPERIMENT:
            experiments[r["id"]] = r
    baseline, change = sorted(experiments.values(), key=lambda e: e["submitted_at"])
    assert [e["status"] in FINAL_STATUSES for e in (baseline, change)] == [True, True]
    assert (baseline["description"], change["description"]) == ("baseline", "matrix lr x1.25")
    # Measured by the runner from real training runs (the tiny profile's baseline is around 1.5).
    assert all(0.5 < e["val_bpb"] < 8.0 and e["num_steps"] > 0 for e in (baseline, change)), (
        baseline,
        change,
    )
    assert baseline["train_sha256"] != change["train_sha256"] and change["profile"] == "tiny"
    assert change["commit"] == git(run.worktree("cpu0"), "rev-parse", "HEAD") or change["status"] != "keep"
    # The scripted model read the status and acted on it: the sixth command is in the agent's output.
    follow_up = "swarm best" if change["status"] == "keep" else "git reset --hard HEAD~1"
    assert f"$ {follow_up}" in output
    usage = [r for r in records if r["type"] == USAGE]
    assert sum(u["requests"] for u in usage) == 6 and all(u["agent"] == "cpu0" for u in usage)
    assert os.path.exists(run.board.logs / os.path.basename(change["log"]))
