"""Custom agents as README shows them (`mybot = ["python3", "/opt/mybot.py", "--task", "{prompt}"]`),
spawned sealed on a real tmux server: the script a command names is readable in its sandbox, and an agent
that dies at start is reported by `spawn` with its own last line, then by `swarm status`, and left down
as a crash loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarm.errors import SwarmError
from swarm.orchestration.spawn import SpawnRequest, spawn
from swarm.orchestration.status import collect, render
from swarm.repo.paths import RunPaths
from swarm.runner.sandbox import sandbox_problem
from tests.support.standins import make_repo, wait_until

MYBOT = """\
import pathlib, sys, time
pathlib.Path(sys.argv[1], sys.argv[3] + ".up").write_text(sys.argv[2][:40])
print("mybot: working", flush=True)
time.sleep(600)
"""
BROKEN = """\
import sys
print("starting", flush=True)
print("mybot: MYBOT_TOKEN is not set", file=sys.stderr, flush=True)
sys.exit(3)
"""


@pytest.fixture
def repo(swarm_shell, tmp_path, monkeypatch):
    if sandbox_problem():
        pytest.skip(sandbox_problem())
    monkeypatch.setenv("SWARM_FAKE_GPUS", "1")
    path = make_repo(tmp_path / "repo")
    opt = tmp_path / "opt"  # outside the repository, the installation and PATH, like /opt
    opt.mkdir()
    (opt / "mybot.py").write_text(MYBOT)
    (opt / "broken.py").write_text(BROKEN)
    (tmp_path / "reports").mkdir()
    (path / "swarm.toml").write_text(
        f'[agents]\nwritable = ["{tmp_path / "reports"}"]\n'
        "[agents.commands]\n"
        f'mybot = ["python3", "{opt / "mybot.py"}", "{tmp_path / "reports"}", "{{prompt}}", "{{agent}}"]\n'
        f'broken = ["python3", "{opt / "broken.py"}"]\n'
        "[coordinator]\ntick_s = 0.3\nhealthy_s = 5.0\nmax_backoff_s = 1.0\n"
    )
    monkeypatch.chdir(path)
    return path


@pytest.mark.slow  # a real swarm spawned in tmux, sealed
def test_readme_custom_agent_runs_sealed_with_its_script(repo, tmp_path):
    spawn(SpawnRequest(gpus="1", agent="mybot", tag="c1"), out=lambda line: None)
    up = tmp_path / "reports" / "gpu0.up"
    assert up.exists() and up.read_text()  # its script ran in the sandbox, with its prompt
    status = collect(RunPaths.for_repo(repo), "c1")
    assert [a.state for a in status.agents] != ["crashed"] and status.agents[0].reason is None


@pytest.mark.slow  # a real swarm spawned in tmux, sealed
def test_an_agent_dying_at_start_is_reported_then_left_down_as_a_crash_loop(repo):
    with pytest.raises(SwarmError) as caught:
        spawn(SpawnRequest(gpus="1", agent="broken", tag="c2"), out=lambda line: None)
    message = str(caught.value)
    assert message.startswith("agent gpu0 exited at start (status 3): mybot: MYBOT_TOKEN is not set"), message
    log = message.rsplit("(log: ", 1)[1].rstrip(")")
    assert Path(log).is_file()  # a log path that exists
    paths = RunPaths.for_repo(repo)
    looped = wait_until(
        lambda: (lambda a: a if a.reason and a.reason.startswith("crash loop") else None)(
            collect(paths, "c2").agents[0]
        ),
        timeout=90,
        interval=0.5,
    )
    assert looped.state == "crashed" and looped.reason == "crash loop: mybot: MYBOT_TOKEN is not set"
    lines = render(collect(paths, "c2"))
    assert "gpu0 crashed: crash loop: mybot: MYBOT_TOKEN is not set" in lines


def test_named_paths_are_the_existing_files_a_command_names(tmp_path):
    from swarm.orchestration.sealing import named_paths

    script, data = tmp_path / "mybot.py", tmp_path / "data"
    script.write_text("")
    data.mkdir()
    home = tmp_path / "home" / "me"
    home.mkdir(parents=True)
    args = [str(script), f"--data={data}", "/no/such/file", "relative.py", "/" + "x" * 5000, "line\n/etc"]
    assert named_paths(args, home) == [script, data]
    with pytest.raises(SwarmError, match=f"names {tmp_path / 'home'}, which holds your home directory"):
        named_paths([str(tmp_path / "home")], home)
