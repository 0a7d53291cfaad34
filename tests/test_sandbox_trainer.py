"""A trainer in its sandbox, run by the real runner: what a hostile train.py tries all fails, and what it
leaves running (a double-forked `setsid` child) is gone when its run ends, also when its runner is killed."""

from __future__ import annotations

import signal
import socket
import textwrap

import pytest

from swarm.agents.protocol import agent_context, submit
from swarm.runner.sandbox import EVAL_DIR, sandbox_problem
from swarm.runner.service import Runner, RunnerSettings
from tests.support.attacks import ATTEMPT
from tests.support.processes import processes_with
from tests.support.swarm_run import STAND_IN_SETTINGS, commit_train, latest, process_alive, wait_until

pytestmark = pytest.mark.skipif(sandbox_problem() is not None, reason=f"{sandbox_problem()}")

MARKER = "swarm-escapee-7f3a"
# The board write is checked on the real board: under pytest the board sits in /tmp, where the trainer
# writes, if anything, into its own private /tmp.
ESCAPES = ("network", "validation", "cache-write", "git", "swarm.toml", "api-key", "home")


def hostile_train(port: int, board: str, cache: str, repo: str, home: str, hang: bool = False) -> str:
    """A train.py that tries each escape and prints `<name>: blocked` or `<name>: DONE`, leaves a
    double-forked `setsid` grandchild behind, then prints an honest summary block (or hangs)."""
    return ATTEMPT + textwrap.dedent(
        f"""\
        import os, socket, sys, time
        attempt("network", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2))
        attempt("board", lambda: open({board!r} + "/board.jsonl", "a").write('{{"type": "experiment"}}\\n'))
        attempt("validation", lambda: open({cache!r} + "/{EVAL_DIR}/val.bin", "rb").read())
        attempt("cache-write", lambda: open({cache!r} + "/planted", "w").write("x"))
        attempt("git", lambda: open({repo!r} + "/.git/HEAD").read())
        attempt("swarm.toml", lambda: open({repo!r} + "/swarm.toml").read())
        attempt("api-key", lambda: os.environ["ANTHROPIC_API_KEY"])
        attempt("home", lambda: os.listdir({home!r}) and open({home!r} + "/secret").read())
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(300)", {MARKER!r}])
            os._exit(0)
        time.sleep(0.2)
        while {hang!r}:
            time.sleep(1)
        print("---")
        print("val_bpb:          0.900000")
        print("training_seconds: 0.0")
        print("profile:          tiny")
        """
    )


def escapees() -> list[int]:
    """Host pids of the grandchildren hostile trainers left (their command line carries MARKER)."""
    return [pid for pid in processes_with(MARKER) if process_alive(pid)]


@pytest.fixture
def hostile(make_swarm_run, tmp_path, monkeypatch):
    """A run whose cache has a validation file, a loopback listener outside, an API key in the runner's
    environment, a secret in its HOME; returns a factory of hostile train.py sources for it."""
    cache = tmp_path / "cache"
    (cache / EVAL_DIR).mkdir(parents=True)
    (cache / EVAL_DIR / "val.bin").write_bytes(b"validation tokens")
    home = tmp_path / "home"
    home.mkdir()
    (home / "secret").write_text("ssh key")
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(cache))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-not-for-trainers")
    monkeypatch.setenv("HOME", str(home))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    run = make_swarm_run()
    port = listener.getsockname()[1]
    yield (
        run,
        cache,
        lambda hang=False: hostile_train(
            port, str(run.board.directory), str(cache), str(run.repo), str(home), hang
        ),
    )
    listener.close()


def test_every_escape_fails_and_the_setsid_grandchild_ends_with_the_run(hostile):
    run, cache, source = hostile
    commit_train(run.worktree("cpu0"), source(), "hostile")
    runner = Runner(run.repo, run.board, "cpu0", RunnerSettings(**STAND_IN_SETTINGS), log=lambda line: None)
    before = run.board.path.read_bytes()
    with run.agent_env("cpu0"):
        job = submit(agent_context(), "hostile")
        record = runner.step()
    log = (run.board.directory / record["log"]).read_text()
    assert record["id"] == job["id"] and record["status"] == "keep", (record["reason"], log)
    for escape in ESCAPES:
        assert f"{escape}: blocked" in log, log
    assert not (cache / "planted").exists()
    assert "board: " in log and b'{"type": "experiment"}' not in run.board.path.read_bytes()[len(before) :]
    assert escapees() == []  # the double-forked setsid child died with the sandbox


def test_a_killed_runner_leaves_no_process_of_its_trainer(hostile):
    run, _, source = hostile
    commit_train(run.worktree("cpu0"), source(hang=True), "hostile, hangs")
    with run.agent_env("cpu0"):
        job = submit(agent_context(), "hangs")
    runner = run.start_runner("cpu0")
    wait_until(lambda: escapees(), timeout=30)
    assert latest(run.board, job["id"])["status"] == "running"
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    wait_until(lambda: not escapees(), timeout=10)


def test_the_evaluator_sees_the_validation_files_and_writes_only_its_result(tmp_path):
    """The policy issue 10's evaluator starts under (start_in_group(..., sandbox=evaluator_sandbox(...)))."""
    import subprocess
    import sys

    from swarm.runner.sandbox import evaluator_sandbox, reduced_environment

    cache, run_dir = tmp_path / "cache", tmp_path / "run"
    (cache / EVAL_DIR).mkdir(parents=True)
    (cache / EVAL_DIR / "val.bin").write_bytes(b"validation tokens")
    run_dir.mkdir()
    (run_dir / "model.pt2").write_bytes(b"artifact")
    script = textwrap.dedent(
        f"""\
        import socket
        print(open({str(cache / EVAL_DIR / "val.bin")!r}, "rb").read().decode(), open("model.pt2").read())
        open("result/score.json", "w").write("{{}}")
        for name, action in (("run-dir", lambda: open("model.pt2", "w")), ("cache", lambda: open({str(cache)!r} + "/x", "w"))):
            try:
                action()
                print(name, "DONE")
            except OSError:
                print(name, "blocked")
        """
    )
    sandbox = evaluator_sandbox(run_dir, cache, run_dir / "result")
    done = subprocess.run(
        sandbox.wrap([sys.executable, "-c", script]),
        env=reduced_environment({"PATH": "/usr/bin:/bin"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["validation tokens artifact", "run-dir blocked", "cache blocked"]
    assert (run_dir / "result" / "score.json").read_text() == "{}"
    assert (run_dir / "model.pt2").read_bytes() == b"artifact"


def test_the_private_tmp_never_covers_a_bound_path(tmp_path):
    """A checkout (its venv, run directories, caches) may live under /tmp, as CI's clone can: every bind
    under /tmp must come after the private /tmp, or the sandbox would not see it."""
    from swarm.runner.sandbox import SANDBOX_TMP, trainer_sandbox

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    python = tmp_path / "venv" / "bin" / "python"  # an interpreter of a checkout under /tmp
    python.parent.mkdir(parents=True)
    python.write_text("")
    mounts = list(trainer_sandbox(run_dir, tmp_path / "cache", str(python)).mounts)
    tmp_at = next(i for i, m in enumerate(mounts) if m.kind == "tmpfs" and m.path == SANDBOX_TMP)
    under_tmp = {m.path: i for i, m in enumerate(mounts) if m.path.startswith(SANDBOX_TMP + "/")}
    assert str(tmp_path / "venv") in under_tmp and str(run_dir) in under_tmp
    assert all(i > tmp_at for i in under_tmp.values())
