"""Without a working sandbox: `swarm spawn` refuses in one line unless --unsealed, and every result of an
unsealed run says so on the board, in `swarm best`, `swarm board`, the result block and watch."""

from __future__ import annotations

import json

import pytest

from swarm.agents.protocol import agent_context, submit
from swarm.board.noise import NoiseSettings
from swarm.errors import SandboxError
from swarm.orchestration.spawn import SpawnRequest, spawn
from swarm.results.display import UNSEALED_MARK, result_block
from swarm.runner import sandbox
from swarm.runner.service import Runner, RunnerSettings
from swarm.tui.header import header_text
from swarm.tui.model import WatchModel
from tests.support.swarm_run import STAND_IN_SETTINGS, commit_train, stand_in_train


@pytest.fixture
def no_bubblewrap(monkeypatch):
    """This machine as one without bubblewrap (the probe is cached per process: forget it around)."""
    monkeypatch.setattr(sandbox, "BWRAP", "bwrap-not-installed")
    sandbox.sandbox_problem.cache_clear()
    yield
    sandbox.sandbox_problem.cache_clear()


# one run decides (`swarm best` reads the rule from swarm.toml): these tests are about the unsealed marks
SINGLE = NoiseSettings(rule="single")
SINGLE_CONFIG = '[noise]\nrule = "single"\n'


def test_spawn_without_a_sandbox_refuses_in_one_line(no_bubblewrap, standin_repo, monkeypatch):
    monkeypatch.setenv("SWARM_FAKE_GPUS", "1")
    with pytest.raises(SandboxError) as refused:
        spawn(SpawnRequest(gpus="1", agent="standin", tag="s", wait=False), out=lambda line: None)
    message = str(refused.value)
    assert "\n" not in message and "bubblewrap is not installed" in message and "--unsealed" in message


def test_an_unsealed_run_marks_every_result(make_swarm_run, cli, no_bubblewrap):
    run = make_swarm_run(unsealed=True, signed=True, config=SINGLE_CONFIG)
    commit_train(run.worktree("cpu0"), stand_in_train(val_bpb=0.95), "unsealed try")
    runner = Runner(
        run.repo, run.board, "cpu0", RunnerSettings(**STAND_IN_SETTINGS), SINGLE, log=lambda line: None
    )
    runner.start()  # no sandbox here, and none needed: the run is unsealed
    try:
        with run.agent_env("cpu0"):
            job = submit(agent_context(), "unsealed try")
        record = runner.step()
    finally:
        runner.close()
    assert job["unsealed"] is True and record["unsealed"] is True and record["status"] == "keep"
    assert "sealed:           no" in result_block(record, run.board.directory)

    with run.agent_env("cpu0"):
        _, best, _ = cli("best")
        _, best_json, _ = cli("best", "--json")
        _, board, _ = cli("board")
    assert UNSEALED_MARK in best and json.loads(best_json)[0]["unsealed"] is True
    assert f"{record['id']}!" in board

    model = WatchModel(run.board.directory, control_for=lambda tag: None)
    header = model.refresh().header
    assert header.unsealed and "UNSEALED" in header_text(header).plain


def test_a_sealed_runner_without_a_sandbox_refuses_to_start(make_swarm_run, no_bubblewrap):
    run = make_swarm_run(config=SINGLE_CONFIG)
    runner = Runner(
        run.repo, run.board, "cpu0", RunnerSettings(**STAND_IN_SETTINGS), SINGLE, log=lambda line: None
    )
    with pytest.raises(SandboxError, match="this run is sealed"):
        runner.start()
    assert runner.lock.fd is None  # it took no slot: a runner of a sealed run never trains unsandboxed
