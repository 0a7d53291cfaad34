"""Shared test setup: one thread per BLAS pool, the repository root importable, prepared tiny-profile data,
and fixtures for real runs, the CLI in-process, and a shell outside any swarm (tests/support/ holds the code)."""

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.shell import clear_identity, tmux_servers  # noqa: E402
from tests.support.standins import make_repo, write_standin_config  # noqa: E402
from tests.support.swarm_run import init_repo, make_run  # noqa: E402
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


@pytest.fixture
def swarm_shell(tmp_path, monkeypatch) -> Iterator[Path]:
    """This process as a user's shell outside any swarm (tests/support/shell.py): the swarm identity unset,
    SWARM_TMUX_DIR a socket directory of this test's own; the tmux servers started there are killed
    afterwards. Yields that directory."""
    clear_identity(monkeypatch)
    sockets = tmp_path / "sock"
    monkeypatch.setenv("SWARM_TMUX_DIR", str(sockets))
    with tmux_servers(sockets):
        yield sockets


@pytest.fixture
def standin_repo(swarm_shell, tmp_path, monkeypatch) -> Path:
    """A project repository, the working directory, whose swarm.toml names the stand-in agent kind
    `standin` (tests/support/standin_agent.py; it reports each start in tmp_path/reports)."""
    path = make_repo(tmp_path / "repo")
    write_standin_config(path, tmp_path / "reports")
    monkeypatch.chdir(path)
    return path


@pytest.fixture
def worktree(tmp_path) -> Path:
    """A small git repository standing for an agent's worktree (train.py with two knobs, a prepare.py), for
    the agents' tools."""
    repo = tmp_path / "wt"
    init_repo(repo, {"train.py": "DEPTH = 8\nLR = 0.04\n", "prepare.py": "MAX_SEQ_LEN = 2048\n"})
    return repo
