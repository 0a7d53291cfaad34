"""An agent in its sandbox, as the launcher starts it: what a hostile agent tries against the board, other
agents, the shared git setup, other slots' trainers and secrets all fails; committing and `swarm submit`
/ `swarm note` (through its inbox, written by its runner) still work, and the runner takes who asks from
the inbox, never from the request."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from swarm.board.fold import BoardState
from swarm.board.signing import key_path
from swarm.board.store import Board
from swarm.orchestration.launch import plan_process
from swarm.repo.paths import RunPaths
from swarm.runner.inbox import inbox_dir
from swarm.runner.sandbox import sandbox_problem
from tests.support.attacks import ATTEMPT
from tests.support.swarm_run import commit_train, latest, process_alive, stand_in_train, wait_until

pytestmark = pytest.mark.skipif(sandbox_problem() is not None, reason=f"{sandbox_problem()}")


def hostile_agent(run, trainer_pid: int, trainer_pgid: int) -> str:
    """An agent program: each attack prints `<name>: blocked` or `<name>: DONE`; then it does its job."""
    repo, board = str(run.repo), str(run.board.directory)
    other = str(run.worktree("cpu1"))
    return ATTEMPT + textwrap.dedent(
        f"""\
        import json, os, signal, subprocess, sys
        def append(path, text):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "a") as f:
                f.write(text)
        forged = json.dumps({{"type": "experiment", "id": "f0f0f0f0", "status": "keep", "val_bpb": 0.1}})
        attempt("board", lambda: append({board!r} + "/board.jsonl", forged + "\\n"))
        attempt("other-worktree", lambda: append({other!r} + "/train.py", "# sabotage\\n"))
        attempt("swarm.toml", lambda: append({repo!r} + "/swarm.toml", "[runner]\\ntimeout_s = 1\\n"))
        attempt("git-config", lambda: append({repo!r} + "/.git/config", "[core]\\nhooksPath = /tmp\\n"))
        attempt("git-hooks", lambda: append({repo!r} + "/.git/hooks/post-commit", "#!/bin/sh\\n"))
        attempt("git-attributes", lambda: append({repo!r} + "/.git/info/attributes", "* filter=x\\n"))
        attempt("replace-refs", lambda: append({repo!r} + "/.git/refs/replace/" + "0" * 40, "1" * 40))
        attempt("git-pointer", lambda: open(".git", "w").write("gitdir: /tmp/evil\\n"))
        admin = subprocess.run(["git", "rev-parse", "--absolute-git-dir"], capture_output=True, text=True).stdout.strip()
        attempt("git-commondir", lambda: open(admin + "/commondir", "w").write("/tmp/evil\\n"))
        attempt("board-key", lambda: open({str(key_path(run.board.directory))!r}).read())
        attempt("other-inbox", lambda: append({board!r} + "/inbox/cpu1/1-00000000.json", "{{}}"))
        attempt("kill-trainer", lambda: os.kill({trainer_pid}, signal.SIGKILL))
        attempt("killpg-trainer", lambda: os.killpg({trainer_pgid}, signal.SIGKILL))
        attempt("api-key", lambda: os.environ["OPENAI_API_KEY"])
        print("own-token:", os.environ.get("MY_TOKEN"), flush=True)
        # its job: commit, submit, note, and a request that claims to come from another agent
        with open("train.py", "a") as f:
            f.write("# tweak\\n")
        subprocess.run(["git", "commit", "-qam", "tweak"], check=True)
        swarm = [sys.executable, "-P", "-m", "swarm"]
        print("submitted:", subprocess.run(swarm + ["submit", "-m", "tweak"], check=True, capture_output=True, text=True).stdout.strip())
        subprocess.run(swarm + ["note", "from the sandbox"], check=True)
        inbox = {board!r} + "/inbox/cpu0/"
        request = {{"op": "note", "text": "who am I", "agent": "cpu1"}}
        with open(inbox + ".x.tmp", "w") as f:
            json.dump(request, f)
        os.replace(inbox + ".x.tmp", inbox + "2-00000000.json")
        os.symlink({str(key_path(run.board.directory))!r}, inbox + "3-00000000.json")
        """
    )


def test_a_sandboxed_agent_can_work_but_not_reach_others(make_swarm_run):
    run = make_swarm_run(agents=("cpu0", "cpu1"), signed=True)
    commit_train(run.worktree("cpu1"), stand_in_train(mode="hang"), "hangs")
    with run.agent_env("cpu1"):
        from swarm.agents.protocol import agent_context, submit

        other_job = submit(agent_context(), "another slot's run")
    run.start_runner("cpu1")
    trainer, _ = run.hang_pids()
    pgid = int((run.board.directory / "runs" / other_job["id"] / "trainer.pgid").read_text())
    run.start_runner("cpu0")
    inbox_dir(run.board.directory, "cpu1").mkdir(parents=True)  # as cpu1's launcher makes it
    commit_train(run.worktree("cpu0"), stand_in_train(val_bpb=0.9), "agent's base")

    shell_keys = {"OPENAI_API_KEY": "sk-other", "MY_TOKEN": "mine"}  # only its own kind's may pass
    script = hostile_agent(run, trainer, pgid)
    done = run.run_as_agent("cpu0", script, env=shell_keys, secrets=("MY_TOKEN",), timeout=120)
    assert done.args[0] == "bwrap"
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    for attack in (
        "board",
        "other-worktree",
        "swarm.toml",
        "git-config",
        "git-hooks",
        "git-attributes",
        "replace-refs",
        "git-pointer",
        "git-commondir",
        "board-key",
        "other-inbox",
        "kill-trainer",
        "killpg-trainer",
        "api-key",
    ):
        assert f"{attack}: blocked" in out, out
    assert "own-token: mine" in out
    assert process_alive(trainer)  # the other slot's trainer still runs

    # The runner of cpu0 wrote what its agent asked for, signed, as cpu0, and refused the planted link.
    eid = out.split("submitted:", 1)[1].split()[0]
    job = wait_until(lambda: latest(run.board, eid))
    assert job["agent"] == "cpu0" and job["gpu"] == "cpu0" and job["description"] == "tweak"
    notes = wait_until(
        lambda: (lambda n: n if len(n) == 2 else None)(
            [r for r in run.board.records() if r["type"] == "note"]
        )
    )
    assert {(n["agent"], n["text"]) for n in notes} == {("cpu0", "from the sandbox"), ("cpu0", "who am I")}
    inbox = inbox_dir(run.board.directory, "cpu0")
    error = wait_until(
        lambda: (inbox / "3-00000000.error").exists() and (inbox / "3-00000000.error").read_text()
    )
    assert "not a readable regular file" in error
    state = BoardState(Board(run.board.directory))
    state.refresh()
    assert state.forged == 0 and "f0f0f0f0" not in state.experiments
    assert "# sabotage" not in (run.worktree("cpu1") / "train.py").read_text()


def test_the_launcher_seals_every_agent_of_a_sealed_run_only(make_swarm_run):
    run = make_swarm_run(agents=("cpu0",), signed=True)
    paths = RunPaths.for_repo(run.repo)
    sealed = replace(run.run, agents=(replace(run.run.agent("cpu0"), kind="sweep"),))
    argv, cwd, env, _ = plan_process(sealed, "cpu0", paths, run.board, [])
    assert argv[0] == "bwrap" and cwd == run.worktree("cpu0")
    argv, _, _, _ = plan_process(replace(sealed, unsealed=True), "cpu0", paths, run.board, [])
    assert argv[0] != "bwrap" and "swarm" in argv and "sweep" in argv
    runner_argv, _, _, _ = plan_process(sealed, "runner-cpu0", paths, run.board, [])
    assert runner_argv[0] != "bwrap"  # the runner is trusted: it sandboxes its trainers itself
    assert json.dumps(env)  # plain strings only


def test_a_path_entry_holding_home_does_not_show_home(tmp_path):
    from swarm.orchestration.sealing import installations

    home, tools = tmp_path / "home", tmp_path / "home" / "bin"
    tools.mkdir(parents=True)
    places = installations("git", {"PATH": f"{tmp_path}:{home}:{tools}:relative:/usr/bin", "HOME": str(home)})
    assert tools in places and Path("/usr/bin") in places
    assert home not in places and tmp_path not in places and Path("relative") not in places
