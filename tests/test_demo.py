"""`swarm demo`, as README runs it: offline, no GPU, no API keys, bounded time, real results on a board,
and the user's checkout left exactly as it was."""

from __future__ import annotations

import math
import subprocess

import pytest

from swarm.board.fold import BoardState
from swarm.board.store import Board
from swarm.installation import swarm_argv
from swarm.results.display import mean_text
from swarm.results.standing import standing
from tests.support.shell import outside_environ
from tests.support.standins import latest_experiments
from tests.support.swarm_run import git
from tests.support.target import REPO_ROOT

pytestmark = pytest.mark.slow  # the demo: a real swarm for two minutes

FINAL = {"keep", "marginal", "discard", "crash", "timeout", "invalid"}


def checkout_state() -> tuple[str, str, list[str]]:
    """HEAD, status and branches of the checkout; branches checked out in other worktrees of it (a
    developer's own, which move while the test runs) are not the demo's to touch and are left out."""
    elsewhere = {
        line.split(" ", 1)[1]
        for line in git(REPO_ROOT, "worktree", "list", "--porcelain").splitlines()[1:]
        if line.startswith("branch ")
    } - {git(REPO_ROOT, "symbolic-ref", "-q", "HEAD")}
    refs = git(REPO_ROOT, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads").splitlines()
    return (
        git(REPO_ROOT, "rev-parse", "HEAD"),
        git(REPO_ROOT, "status", "--porcelain"),
        [ref for ref in refs if ref.split(" ")[0] not in elsewhere],
    )


def test_demo_runs_to_completion_and_leaves_results_on_a_board(tmp_path, swarm_shell):
    # swarm_shell kills a tmux server the demo left only at teardown: after this test checked it left none
    before = checkout_state()
    env = outside_environ(SWARM_TMUX_DIR=str(swarm_shell), AUTORESEARCH_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run(
        swarm_argv("demo", "--minutes", "2", "--settle", "1", "--dir", str(tmp_path / "demo")),
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=330,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "stopped run demo" in proc.stdout and "experiments:" in proc.stdout

    clone = tmp_path / "demo" / "autoresearch-swarm"
    records = Board(clone / "board").records()
    latest = latest_experiments(records)
    finished = [e for e in latest.values() if e["status"] in FINAL]
    assert {e["agent"] for e in latest.values()} == {"cpu0", "cpu1"}
    assert finished, [(e["id"], e["status"]) for e in latest.values()]
    assert any(isinstance(e["val_bpb"], float) and math.isfinite(e["val_bpb"]) for e in finished)
    assert all(e["profile"] == "tiny" and e["device"] == "cpu" for e in latest.values())

    # The closing lines are commands that run exactly as printed, from anywhere (README's setup gives no PATH)
    commands = {
        line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip()
        for line in proc.stdout.splitlines()
        if line.startswith("  ") and " && " in line
    }
    assert set(commands) == {"look", "watch", "report", "go on"}
    ran = {
        name: subprocess.run(
            ["bash", "-c", commands[name]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        for name in ("look", "report")
    }
    for name, shown in ran.items():
        assert shown.returncode == 0, (name, commands[name], shown.stdout[-2000:], shown.stderr[-2000:])
    assert "noise band" in ran["look"].stdout
    # the report of this real tiny-profile run: its best, its lineage, the picture beside it
    report = (clone / "report-demo" / "report.md").read_text()
    state = BoardState(Board(clone / "board"))
    state.refresh()
    # the demo's closing line says in words where the run stands, as the board has it
    words = next(line for line in proc.stdout.splitlines() if line.startswith("cpu / tiny: "))
    where = standing(state, ("cpu", "tiny"))
    assert words == f"cpu / tiny: {where.in_words().split(': ', 1)[1]}"
    best = state.bests().get(("cpu", "tiny"))
    if best is None:  # a loaded machine: the baseline's three runs did not all land in 2 minutes
        assert "no confirmed result yet" in words and "best on cpu/tiny" not in proc.stdout
        assert report.startswith(
            ("# Swarm run demo: no confirmed result yet", "# Swarm run demo: no measured")
        )
        assert "swarm pick" not in report
    else:  # idle: a confirmed best (at least the baseline: two agents' first runs and a calibration rerun)
        assert report.startswith("# Swarm run demo: val_bpb")
        assert "## How the best came about: cpu / tiny" in report and f"{best.mean:.6f}" in report
        # the demo's summary names the same best as `swarm best`
        assert f"best on cpu/tiny: {mean_text(best.mean, best.sigma, best.n)}" in proc.stdout
        assert ("a confirmed gain of" in words) == (where.confirmed_gain is not None)
        if where.confirmed_gain is None:
            assert "no change beat the noise band yet" in words
        if best.train_sha256 != where.baseline.train_sha256:
            assert f"swarm pick {best.experiment['id']}" in report
        else:
            assert "nothing to pick" in report
    assert (clone / "report-demo" / "progress.png").read_bytes().startswith(b"\x89PNG")

    # Every process is gone, and the user's checkout is as it was: no new files, no moved branch.
    assert not list((tmp_path / "sock").glob("*")) or all(
        subprocess.run(["tmux", "-S", str(s), "has-session"], capture_output=True).returncode != 0
        for s in (tmp_path / "sock").iterdir()
    )
    leftover = subprocess.run(["pgrep", "-f", str(clone)], capture_output=True, text=True).stdout.split()
    assert leftover == []
    assert checkout_state() == before
