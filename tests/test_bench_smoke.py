"""Every bench script runs, at toy sizes: a bench that no longer runs (an API it used moved, a sandbox it
did not expect) fails here instead of on the day someone wants its figures. Only that it runs to the end
and prints its figures is checked; the figures themselves mean nothing at these sizes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.shell import outside_environ, tmux_servers
from tests.support.target import REPO_ROOT

BENCH = REPO_ROOT / "bench"
HELPERS = {"realswarm.py"}  # imported by the benches that run a real swarm, not run on its own
# needs a GPU; without one it says so in one line (tests/test_doctor_gpu.py checks that)
ELSEWHERE = {"first_gpu.py"}

# script -> toy arguments ("{board}": a small synthetic board; "{cache}": the session's tiny data cache)
TOY = {
    "agents_fake_model.py": ["--trainer", "standin", "--kinds", "api-anthropic"],
    "bench_train.py": ["--threads", "1", "--cache-dir", "{cache}", "--log-dir", "{tmp}"],
    "board_appends.py": ["--writers", "2", "--records", "5"],
    "board_queries.py": ["--records", "200", "--repeats", "1"],
    "board_signing.py": ["--experiments", "50", "--repeats", "1"],
    "causality_cost.py": ["--cache", "{cache}", "--runs", "1"],
    "commit_store.py": ["--history", "2"],
    "holdout_cost.py": ["--repeats", "1"],
    "gpu_busy.py": ["--train-seconds", "0.2", "--agents", "1", "--experiments", "2"],
    "noise_decisions.py": ["--trials", "5", "--effects", "0,2", "--drifts", "0"],
    "noise_real.py": ["--workers", "1", "--nulls", "1", "--cache", "{cache}"],
    "noise_tiny.py": ["--runs", "1", "--cache", "{cache}"],
    "pruning_replay.py": ["{board}"],
    "ray_dispatch.py": ["--experiments", "2"],
    "report_time.py": ["--experiments", "100", "--agents", "2"],
    "runner_overhead.py": ["--experiments", "2"],
    "sandbox_start.py": ["--repeats", "2"],
    "sealed_overhead.py": ["--runs", "1", "--threads", "1"],
    "search_race.py": ["--kinds", "optuna", "--seeds", "1", "--minutes", "0.75", "--workers", "1", "--cache", "{cache}"],
    "spawn_bench.py": ["--agents", "2", "--skip-clawteam", "--cpu-seconds", "1"],
    "watch_refresh.py": ["--agents", "2", "--experiments", "100", "--repeats", "2"],
}  # fmt: skip


def test_every_bench_script_has_a_smoke_run():
    scripts = {p.name for p in BENCH.glob("*.py")} - HELPERS - ELSEWHERE
    assert scripts == set(TOY), "give each bench script toy arguments in TOY"


@pytest.mark.slow  # every bench script, some of them real swarms
@pytest.mark.parametrize("script", sorted(TOY))
def test_bench_runs_at_toy_size(script, tmp_path, request):
    args = TOY[script]
    values = {"{tmp}": str(tmp_path)}
    if "{cache}" in args:
        values["{cache}"] = str(request.getfixturevalue("tiny_cache"))
    if "{board}" in args:
        from swarm.testing.synthetic import synthetic_run, write_board

        write_board(tmp_path / "board", list(synthetic_run(agents=2, experiments=40, seed=1)))
        values["{board}"] = str(tmp_path / "board")
    env = outside_environ(("SWARM_",), OMP_NUM_THREADS="1", SWARM_TMUX_DIR=str(tmp_path / "sock"))
    with tmux_servers(tmp_path / "sock"):  # a bench that dies leaves no swarm behind
        proc = subprocess.run(
            [sys.executable, str(BENCH / script), *(values.get(a, a) for a in args)],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    assert proc.stdout.strip(), proc.stderr[-3000:]  # it printed its figures
