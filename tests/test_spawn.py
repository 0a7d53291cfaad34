"""`swarm spawn` with stand-in agents on a real tmux server (private socket per test) and real git."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import signal
from pathlib import Path

import pytest

from swarm.board.store import Board
from swarm.errors import SwarmError
from swarm.orchestration.clean import clean
from swarm.orchestration.spawn import SpawnRequest, spawn
from swarm.orchestration.status import collect
from swarm.orchestration.stop import cmd_attach, stop
from swarm.orchestration.tmux import RunTmux
from swarm.repo.paths import RunPaths, agent_branch
from tests.support.processes import processes_with
from tests.support.standins import (
    git,
    reports,
    wait_for_reports,
    wait_until,
)
from tests.support.swarm_run import process_alive


@pytest.fixture
def repo(standin_repo):
    return standin_repo


def window_names(repo: Path, tag: str) -> list[str]:
    """Every window name of the run's session, duplicates included."""
    tmux = RunTmux(repo, tag)
    return sorted(tmux.cmd("list-windows", "-t", f"={tag}", "-F", "#{window_name}"))


def running_agents(repo: Path, tag: str, agents: list[str]) -> dict[str, int]:
    panes = RunTmux(repo, tag).panes()
    return {a: panes[a].pid for a in agents if a in panes and not panes[a].dead}


CLASS_QUEUE = "box:NVIDIA H100 80GB HBM3"


@pytest.mark.slow  # a real swarm spawned in tmux
def test_spawn_four_agents_in_worktrees_with_their_gpu_identity_and_secret(
    repo, tmp_path, monkeypatch, caplog
):
    secret = "sk-test-" + secrets.token_hex(16)
    monkeypatch.setenv("SWARM_TEST_SECRET", secret)
    monkeypatch.setenv("SWARM_FAKE_GPUS", "4:NVIDIA H100 80GB HBM3")
    caplog.set_level(logging.DEBUG, logger="libtmux")  # libtmux logs every tmux command line it runs
    run = spawn(SpawnRequest(gpus="4", agent="standin", tag="t4"), out=lambda line: None)

    agents = [f"gpu{i}" for i in range(4)]
    worktrees = git(repo, "worktree", "list", "--porcelain")
    for i, agent in enumerate(agents):
        assert f"worktree {repo / 'worktrees' / agent}\n" in worktrees + "\n"
        assert f"branch refs/heads/{agent_branch('t4', agent)}" in worktrees
        # agents own no GPU: each queues for the class, which every GPU's runner serves
        assert run.agents[i].queue == CLASS_QUEUE and run.agents[i].device == "NVIDIA H100 80GB HBM3"
    assert [(w.name, w.slot) for w in run.workers] == [(f"gpu{i}", str(i)) for i in range(4)]
    assert window_names(repo, "t4") == sorted(["coordinator", *agents, *(f"runner-{a}" for a in agents)])

    wait_for_reports(tmp_path / "reports", agents)
    for agent in agents:
        (report,) = reports(tmp_path / "reports", agent)
        assert report["cwd"] == str(repo / "worktrees" / agent)
        assert report["env"]["CUDA_VISIBLE_DEVICES"] == ""  # trainers get the GPU of the slot that runs them
        assert report["env"]["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
        assert report["env"]["SWARM_AGENT"] == agent and report["env"]["SWARM_GPU"] == CLASS_QUEUE
        assert report["env"]["SWARM_TAG"] == "t4" and report["env"]["SWARM_BOARD"] == str(repo / "board")
        assert report["profile_set"] is False
        assert report["secret_sha256"] == __import__("hashlib").sha256(secret.encode()).hexdigest()
        assert f"You are {agent}" in report["prompt"] and "program.md" in report["prompt"]

    # `swarm status` sees the same run: every agent and runner up, nothing measured yet.
    status = wait_until(
        lambda: (
            (s := collect(RunPaths.for_repo(repo), "t4"))
            and all(a.runner == "running" for a in s.agents)
            and s
        )
    )
    assert status.coordinator == "running" and status.profile == "h100"
    assert [(a.name, a.kind, a.gpu, a.state, a.experiments, a.best) for a in status.agents] == [
        (agent, "standin", CLASS_QUEUE, "thinking", 0, None) for agent in agents
    ]

    # The secret reached every agent through the environment only: no file and no command line has it.
    tmux_commands = [str(getattr(r, "tmux_cmd", "")) for r in caplog.records]
    assert any("new-session" in c for c in tmux_commands) and not any(secret in c for c in tmux_commands)
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert secret.encode() not in path.read_bytes(), path
    assert not processes_with(secret)

    (record,) = [r for r in Board(repo / "board").records() if r["type"] == "run"]
    assert (
        record["tag"] == "t4"
        and record["base"] == git(repo, "rev-parse", "HEAD")
        and record["profile"] == "h100"
    )
    assert record["agents"][2] == {
        "name": "gpu2",
        "kind": "standin",
        "gpu": CLASS_QUEUE,
        "device": "NVIDIA H100 80GB HBM3",
        "worktree": str(repo / "worktrees" / "gpu2"),
        "branch": agent_branch("t4", "gpu2"),
        "stopped": False,
    }


@pytest.mark.slow  # a real swarm spawned in tmux
def test_killed_agent_restarts_and_killed_coordinator_and_server_resume_without_duplicates(
    repo, tmp_path, monkeypatch
):
    monkeypatch.setenv("SWARM_FAKE_GPUS", "2")
    request = SpawnRequest(gpus="2", agent="standin", tag="r")
    spawn(request, out=lambda line: None)
    agents = ["gpu0", "gpu1"]
    first = wait_for_reports(tmp_path / "reports", agents)
    # Agents run in their sandboxes, each in its own PID namespace: the pid a stand-in reports is its
    # namespace's, so an agent is killed and checked by its pane's process (bwrap, which the launcher
    # exec'd, and with which the whole sandbox ends).
    panes = running_agents(repo, "r", agents)

    # An agent killed with -9 is restarted in its worktree, with a resume prompt.
    os.kill(panes["gpu0"], signal.SIGKILL)
    again = wait_for_reports(tmp_path / "reports", ["gpu0"], count=2)["gpu0"]
    assert again["cwd"] == first["gpu0"]["cwd"] and "You are being resumed" in again["prompt"]

    # `swarm stop gpu1` holds it down: later reconcile passes (proved by another restart) leave it stopped.
    stop(RunPaths.for_repo(repo), "r", "gpu1", out=lambda line: None)
    os.kill(wait_until(lambda: running_agents(repo, "r", ["gpu0"]).get("gpu0")), signal.SIGKILL)
    wait_for_reports(tmp_path / "reports", ["gpu0"], count=3)
    assert "gpu1" not in RunTmux(repo, "r").panes() and not process_alive(panes["gpu1"])

    # Work in a worktree, then kill -9 the coordinator and the whole tmux server.
    (repo / "worktrees" / "gpu0" / "train.py").write_text("DEPTH = 9\n")
    git(repo / "worktrees" / "gpu0", "commit", "-q", "-am", "deeper")
    work = git(repo, "rev-parse", agent_branch("r", "gpu0"))
    tmux = RunTmux(repo, "r")
    last = wait_until(lambda: running_agents(repo, "r", ["gpu0"]).get("gpu0"))
    os.kill(tmux.panes()["coordinator"].pid, signal.SIGKILL)
    server_pid = int(tmux.cmd("display-message", "-p", "#{pid}")[0])
    os.kill(server_pid, signal.SIGKILL)
    wait_until(lambda: not process_alive(server_pid) and not process_alive(last), 10)

    spawn(request, out=lambda line: None)  # the same command again resumes the run
    assert window_names(repo, "r") == ["coordinator", "gpu0", "gpu1", "runner-gpu0", "runner-gpu1"]
    pids = running_agents(repo, "r", agents)
    latest_reports = wait_for_reports(tmp_path / "reports", ["gpu0"], count=4)  # 1 + 2 restarts + resume
    latest_reports |= wait_for_reports(tmp_path / "reports", ["gpu1"], count=2)  # resume lifts its stop
    for agent in agents:
        latest = latest_reports[agent]
        assert pids[agent] and "You are being resumed" in latest["prompt"]
        assert latest["cwd"] == str(repo / "worktrees" / agent)
    assert git(repo, "rev-parse", agent_branch("r", "gpu0")) == work
    records = Board(repo / "board").records()
    runs = [r for r in records if r["type"] == "run"]  # spawned, gpu1 stopped, resumed
    assert [[a["stopped"] for a in r["agents"]] for r in runs] == [
        [False, False],
        [False, True],
        [False, False],
    ]
    assert (
        len({(r["tag"], r["base"], r["created_at"], tuple(a["worktree"] for a in r["agents"])) for r in runs})
        == 1
    )


@pytest.mark.slow  # a real swarm spawned in tmux
def test_stop_ends_every_process_and_clean_keeps_branches_with_unique_commits(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("SWARM_FAKE_GPUS", "3")
    spawn(SpawnRequest(gpus="3", agent="standin", tag="c"), out=lambda line: None)
    paths = RunPaths.for_repo(repo)
    wait_for_reports(tmp_path / "reports", ["gpu0", "gpu1", "gpu2"])
    pids = list(running_agents(repo, "c", ["gpu0", "gpu1", "gpu2"]).values())  # host pids (their sandboxes)
    assert len(pids) == 3
    with pytest.raises(SwarmError, match="is running"):
        clean(paths, "c", out=lambda line: None)
    with pytest.raises(SwarmError, match="no agent 'gpu7'"):
        cmd_attach(argparse.Namespace(agent="gpu7", tag="c"))

    # gpu1 commits work of its own; gpu2 moves to gpu1's commit (so each of them holds the other's commit).
    (repo / "worktrees" / "gpu1" / "train.py").write_text("DEPTH = 10\n")
    git(repo / "worktrees" / "gpu1", "commit", "-q", "-am", "unique work")
    git(repo / "worktrees" / "gpu2", "reset", "-q", "--hard", agent_branch("c", "gpu1"))

    stop(paths, "c", out=lambda line: None, grace_s=5)
    assert not RunTmux(repo, "c").is_running()
    with pytest.raises(SwarmError, match="is not running"):
        cmd_attach(argparse.Namespace(agent="gpu0", tag="c"))
    assert not any(process_alive(pid) for pid in pids)
    assert all((repo / "worktrees" / f"gpu{i}").is_dir() for i in range(3))  # stop keeps worktrees
    # A run the user stopped reads as stopped, not dead (that is what a kill -9 or a reboot leaves).
    assert {a.state for a in collect(paths, "c").agents} == {"stopped"}

    removals = {r.branch: r for r in clean(paths, "c", out=lambda line: None)}
    assert removals[agent_branch("c", "gpu0")].removed  # nothing but the base: nothing to lose
    assert (
        removals[agent_branch("c", "gpu1")].removed != removals[agent_branch("c", "gpu2")].removed
    )  # exactly one goes
    branches = git(repo, "branch", "--list", "swarm/*")
    assert git(
        repo,
        "branch",
        "--contains",
        agent_branch("c", "gpu1") if agent_branch("c", "gpu1") in branches else agent_branch("c", "gpu2"),
    )
    unique = git(repo, "log", "--all", "--format=%s")
    assert "unique work" in unique
    assert not (repo / "worktrees" / "gpu0").exists()


@pytest.mark.parametrize(
    "request_, message",
    [
        (SpawnRequest(gpus="0", agent="standin"), "at least one GPU"),
        (SpawnRequest(gpus="0,1,0", agent="standin"), "GPU 0 named twice"),
        (SpawnRequest(gpus="3", agent="standin"), "this machine has 2 GPU"),
        (SpawnRequest(gpus="0,7", agent="standin"), "no GPU 7"),
        (SpawnRequest(gpus="2", agent="gpt"), "unknown agent kind 'gpt'"),
        (SpawnRequest(gpus="2", agent="standin:3"), "names 3 agent"),
        (SpawnRequest(gpus="2", agent="claude"), "npm install -g @anthropic-ai/claude-code"),
        (SpawnRequest(gpus="2", agent="codex"), "npm install -g @openai/codex"),
        (SpawnRequest(gpus="2", agent="standin", tag="a/b"), "invalid tag"),
    ],
)
def test_user_mistakes_are_one_clear_error_before_anything_starts(repo, monkeypatch, request_, message):
    monkeypatch.setenv("SWARM_FAKE_GPUS", "2")
    monkeypatch.setenv(
        "PATH",
        os.pathsep.join(
            p
            for p in os.environ["PATH"].split(os.pathsep)
            if not (Path(p) / "claude").exists() and not (Path(p) / "codex").exists()
        ),
    )
    with pytest.raises(SwarmError, match=message):
        spawn(request_, out=lambda line: None)
    assert not RunTmux(repo, request_.tag or "x").socket.exists()
    assert git(repo, "branch", "--list", "swarm/*") == ""


def test_dirty_main_tree_and_non_repository_are_refused(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("SWARM_FAKE_GPUS", "1")
    (repo / "train.py").write_text("DEPTH = 12\n")
    with pytest.raises(SwarmError, match="uncommitted changes in train.py"):
        spawn(SpawnRequest(gpus="1", agent="standin"), out=lambda line: None)
    elsewhere = tmp_path / "plain"
    elsewhere.mkdir()
    with pytest.raises(SwarmError, match="not a git repository"):
        spawn(SpawnRequest(gpus="1", agent="standin"), cwd=elsewhere, out=lambda line: None)
    only_git = tmp_path / "bin"
    only_git.mkdir()
    (only_git / "git").symlink_to(shutil.which("git"))
    monkeypatch.setenv("PATH", str(only_git))
    with pytest.raises(SwarmError, match="tmux not found"):
        spawn(SpawnRequest(gpus="1", agent="standin", base="HEAD"), out=lambda line: None)
