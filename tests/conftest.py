"""Shared test setup: one thread per BLAS pool, the repository root importable, and prepared tiny-profile data."""

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.swarm_run import make_run  # noqa: E402
from tests.support.target import run_prepare  # noqa: E402


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> Path:
    """A tiny-profile data cache prepared once per session with `prepare.py --source local` (a few seconds).
    Run train.py against it with env=tiny_env(tiny_cache). Tests must not modify it."""
    cache = tmp_path_factory.mktemp("autoresearch-tiny")
    proc = run_prepare(cache, "--source", "local")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return cache


@pytest.fixture
def make_swarm_run(tmp_path, monkeypatch):
    """Factory for a real run (tests/support/swarm_run.py); runners it started are stopped afterwards."""
    runs = []

    def factory(**kwargs):
        run = make_run(tmp_path, **kwargs)
        monkeypatch.setenv("STANDIN_STATE_DIR", str(run.state_dir))  # for in-process runners' trainers
        runs.append(run)
        return run

    yield factory
    for run in runs:
        run.stop_runners()


@pytest.fixture
def cli(capsys):
    """Run `swarm ARGS...` in this process; returns (exit code, stdout, stderr)."""
    from swarm.cli import main

    def invoke(*argv: str):
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke
