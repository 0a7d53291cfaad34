"""The sweep agent on the tiny profile: real train.py runs through a real runner, driven only by the
agent commands. Three experiments (the baseline and two proposals), about a minute and a half on 2 cores."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from swarm.installation import swarm_argv
from swarm.target.hparams import read_knobs
from tests.support.standins import latest_experiments
from tests.support.swarm_run import git, make_run
from tests.support.target import REPO_ROOT

pytestmark = pytest.mark.slow  # real tiny trainer runs

MEASURED = {"keep", "marginal", "discard"}
FINAL = MEASURED | {"crash", "timeout", "invalid"}


def test_sweep_agent_completes_real_experiments_and_acts_on_their_status(
    tmp_path, tiny_cache, monkeypatch, swarm_shell
):
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(tiny_cache))
    run = make_run(
        tmp_path,
        signed=True,
        agents=("cpu0",),
        train=(REPO_ROOT / "train.py").read_text(),
        prepare=(REPO_ROOT / "prepare.py").read_text(),
        profile="tiny",
        # one run decides (the `single` noise rule): three real runs, no calibration or confirmation reruns
        config='[noise]\nrule = "single"\n',
    )
    run.start_runner("cpu0")
    worktree = run.worktree("cpu0")
    # in its sandbox, as the launcher starts it: its submissions go through its inbox to its runner
    argv, env = run.sealed(
        "cpu0",
        "sweep",
        swarm_argv("agent", "sweep", "--max-experiments", "3"),
        {**os.environ, **run.agent_environ("cpu0")},
    )
    with run.agent_env("cpu0"):
        proc = subprocess.run(
            argv,
            env=env,
            cwd=worktree,
            capture_output=True,
            text=True,
            timeout=300,
        )
    run.stop_runners()
    assert proc.returncode == 0, proc.stdout + proc.stderr

    records = run.board.records()
    latest = latest_experiments(records)
    experiments = sorted(latest.values(), key=lambda e: e["submitted_at"])
    assert [e["agent"] for e in experiments] == ["cpu0"] * 3
    assert all(e["status"] in FINAL for e in experiments), [
        (e["id"], e["status"], e["reason"]) for e in experiments
    ]
    baseline, *proposals = experiments
    assert (
        baseline["description"] == "sweep: baseline (train.py unchanged)" and baseline["commit"] == run.base
    )
    assert any(e["status"] in MEASURED for e in experiments), [e["reason"] for e in experiments]

    # Each proposal is one commit on top of the best: train.py differs in exactly the knobs it names.
    base_knobs = read_knobs(git(run.repo, "show", f"{run.base}:train.py") + "\n", "tiny")
    for e in proposals:
        named = set(re.findall(r"\b([A-Z][A-Z0-9_]+) \S", e["description"].split(": ", 1)[1]))
        knobs = read_knobs(git(run.repo, "show", f"{e['commit']}:train.py") + "\n", "tiny")
        changed = {name for name in knobs if knobs[name].value != base_knobs[name].value}
        assert changed == named and e["parent"] == run.base, (e["description"], changed)

    # The branch sits at the best: the last kept proposal, else the base; discarded commits are not on it.
    head = git(worktree, "rev-parse", "HEAD")
    kept = [e for e in proposals if e["status"] == "keep"]
    assert head == (kept[-1]["commit"] if kept else run.base)
    for e in proposals:
        if e["status"] != "keep":
            on_branch = subprocess.run(
                ["git", "merge-base", "--is-ancestor", e["commit"], head], cwd=worktree
            )
            assert on_branch.returncode != 0, e
    assert git(worktree, "status", "--porcelain") == ""

    # What it learned is on the board as a note, negative results included, with the board's statuses.
    notes = " ".join(r["text"] for r in records if r["type"] == "note" and r["agent"] == "cpu0")
    for e in proposals:
        assert f"({e['status']})" in notes and e["description"].split(": ", 1)[1].split(",")[0] in notes
