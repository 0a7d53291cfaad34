"""Red team: what one agent can do to another's git, slot and inbox, acted from its sandbox as the launcher
starts it (issue 23 items 4 and 5). Another agent's objects, branch and pinned commits stay as they were
and every commit on the board stays readable; a verify flood waits its turn behind the honest agent's next
job; an inbox refuses a directory at once and forgets unread answers; an agent's sandbox has no terminal;
a model made slow on purpose ends at the class's scaled evaluation limit."""

from __future__ import annotations

import os
import subprocess
import textwrap
import time

import pytest

from swarm.agents.protocol import agent_context, submit
from swarm.board.charges import VERIFY_QUOTA
from swarm.board.experiments import TIMEOUT
from swarm.board.fold import BoardState
from swarm.board.noise import NoiseSettings
from swarm.board.store import Board
from swarm.repo.paths import agent_branch
from swarm.repo.stores import agent_git_env, agent_objects, common_dir, in_shared_store
from swarm.repo.worktrees import GitRepo
from swarm.results.pick import pick
from swarm.runner.inbox import inbox_dir
from swarm.runner.sandbox import sandbox_problem
from swarm.runner.service import Runner
from tests.support.attacks import ATTEMPT
from tests.support.swarm_run import STAND_IN_RUNNER, commit_train, git, latest, stand_in_train, wait_until

pytestmark = pytest.mark.skipif(sandbox_problem() is not None, reason=f"{sandbox_problem()}")

SINGLE = '[noise]\nrule = "single"\n'  # one run decides: no confirmation or calibration reruns
ONE_RUN = NoiseSettings(rule="single")  # the same, for runners in this process
HONEST_BRANCH = agent_branch("test", "cpu0")
HONEST_REF = f"refs/heads/{HONEST_BRANCH}"


def in_sandbox(run, agent: str, script: str, timeout: float = 180) -> str:
    """Run a Python program as `agent`, sealed as the launcher seals a custom agent; its output."""
    done = run.run_as_agent(agent, script, timeout=timeout)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    return out


PRELUDE = (
    ATTEMPT
    + """\
import json, os, shutil, subprocess, sys
swarm = [sys.executable, "-P", "-m", "swarm"]
def sh(*args):
    return subprocess.run(list(args), capture_output=True, text=True)
def commit(text):
    with open("train.py", "a") as f:
        f.write(text)
    subprocess.run(["git", "commit", "-qam", text.strip()], check=True)
"""
)


@pytest.mark.slow  # agents and trainers in real sandboxes
def test_another_agents_objects_branch_and_pins_survive_every_git_command(make_swarm_run):
    run = make_swarm_run(agents=("cpu0", "cpu1"), signed=True, config=SINGLE)
    run.start_runner("cpu0")
    run.start_runner("cpu1")
    common = common_dir(run.repo)

    # The honest agent commits in its sandbox, submits once, then keeps a commit it has not submitted.
    honest = in_sandbox(
        run,
        "cpu0",
        PRELUDE
        + textwrap.dedent(
            """\
            commit("# honest 1\\n")
            done = subprocess.run(swarm + ["submit", "-m", "honest 1"], check=True, capture_output=True, text=True)
            print("submitted:", done.stdout.strip())
            commit("# honest 2, not submitted\\n")
            print("head:", sh("git", "rev-parse", "HEAD").stdout.strip())
            """
        ),
    )
    honest_id = honest.split("submitted:", 1)[1].split()[0]
    honest_head = honest.split("head:", 1)[1].split()[0]
    job = wait_until(
        lambda: (lambda r: r if r and r.get("status") not in ("queued", "running") else None)(
            latest(run.board, honest_id)
        )
    )
    # its commits were written to its own object directory, the submitted one copied to the shared store
    assert (agent_objects(common, "cpu0") / honest_head[:2] / honest_head[2:]).is_file()
    assert git(run.repo, "cat-file", "-t", job["commit"]) == "commit"
    # its runner copies the tip of its branch too, so that every agent's `git log --all` reads it
    wait_until(lambda: in_shared_store(run.repo, honest_head), timeout=60)
    branch_before = (common / HONEST_REF).read_text()

    shared = str(common / "objects")
    loose = next(p for p in (common / "objects").rglob("*") if p.is_file() and len(p.parent.name) == 2)
    attacker = in_sandbox(
        run,
        "cpu1",
        PRELUDE
        + textwrap.dedent(
            f"""\
            commit("# attacker\\n")
            target = {job["commit"]!r}
            attempt("delete-shared-objects", lambda: shutil.rmtree({shared!r} + "/" + {loose.parent.name!r}))
            attempt("rewrite-object", lambda: open({str(loose)!r}, "wb").write(b"x"))
            attempt("delete-their-objects", lambda: shutil.rmtree({str(agent_objects(common, "cpu0"))!r}))
            attempt("plant-their-object", lambda: open({str(agent_objects(common, "cpu0"))!r} + "/planted", "w").write("/tmp"))
            attempt("move-branch", lambda: sh("git", "update-ref", {HONEST_REF!r}, "HEAD"))
            attempt("force-branch", lambda: sh("git", "branch", "-f", {HONEST_BRANCH!r}, "HEAD"))
            attempt("delete-branch", lambda: sh("git", "branch", "-D", {HONEST_BRANCH!r}))
            attempt("lock-branch", lambda: open({str(common / HONEST_REF)!r} + ".lock", "x"))
            attempt("future-branch", lambda: sh("git", "branch", "swarm/test/cpu9/work", "HEAD"))
            attempt("rewrite-branch-file", lambda: open({str(common / HONEST_REF)!r}, "w").write("0" * 40))
            attempt("rename-over-branch", lambda: os.replace("train.py", {str(common / HONEST_REF)!r}))
            attempt("delete-pins", lambda: sh("git", "update-ref", "-d", "refs/swarm/experiments/{honest_id}"))
            attempt("delete-saved", lambda: sh("git", "update-ref", "refs/swarm/saved/cpu0/x", "HEAD"))
            attempt("pack-refs", lambda: sh("git", "pack-refs", "--all"))
            sh("git", "reflog", "expire", "--expire=now", "--all")
            sh("git", "gc", "--prune=now")
            sh("git", "prune", "--expire=now")
            print("log-all:", sh("git", "log", "--all", "--oneline").returncode)
            # still its own work: submit, and adopt the honest agent's commit
            done = subprocess.run(swarm + ["submit", "-m", "attacker"], capture_output=True, text=True)
            print("attacker-submit:", done.returncode, done.stdout.strip(), done.stderr.strip())
            done = subprocess.run(swarm + ["adopt", "{honest_id}"], capture_output=True, text=True)
            print("adopt:", done.returncode, done.stderr.strip())
            print("adopted-head:", sh("git", "rev-parse", "HEAD").stdout.strip())
            """
        ),
    )
    for attack in (
        "delete-shared-objects",
        "rewrite-object",
        "delete-their-objects",
        "plant-their-object",
        "move-branch",
        "force-branch",
        "delete-branch",
        "lock-branch",
        "future-branch",
        "rewrite-branch-file",
        "rename-over-branch",
        "delete-pins",
        "delete-saved",
    ):
        assert f"{attack}: blocked" in attacker, attacker
    assert "attacker-submit: 0" in attacker and "adopt: 0" in attacker and "log-all: 0" in attacker, attacker
    assert attacker.split("adopted-head:", 1)[1].split()[0] == job["commit"]

    # The honest agent's branch is where it left it, its unsubmitted commit still readable by its git,
    # and every commit the board names is readable from the shared store alone.
    assert (common / HONEST_REF).read_text() == branch_before
    env = {**os.environ, **agent_git_env(common, "cpu0")}
    assert (
        subprocess.run(["git", "cat-file", "-e", honest_head], cwd=run.worktree("cpu0"), env=env).returncode
        == 0
    )
    wait_until(lambda: all(r.get("status") not in ("queued", "running") for r in _experiments(run)))
    commits = {r["commit"] for r in _experiments(run) if r.get("commit")}
    assert len(commits) >= 2
    for sha in commits:
        assert git(run.repo, "cat-file", "-t", sha) == "commit"
        assert git(run.repo, "rev-parse", f"refs/swarm/experiments/{honest_id}") == job["commit"]
    # `swarm pick` finds every board commit, `swarm clean`'s check reads the unsubmitted one
    git(run.repo, "branch", "picked", run.base)
    for record in _experiments(run):
        if record.get("commit") and record.get("status") == "keep":
            assert pick(run.repo, record, onto="picked").commit
    assert honest_head in GitRepo(run.repo).unique_commits(HONEST_BRANCH)
    # the honest agent's next job still runs
    after = in_sandbox(
        run,
        "cpu0",
        PRELUDE
        + 'print("next:", subprocess.run(swarm + ["run", "-m", "honest 2"], capture_output=True, text=True).stdout.strip())\n',
    )
    assert "next:" in after and "crash" not in after, after


def test_a_fifo_in_an_agents_own_objects_fails_its_submit_at_once(make_swarm_run):
    run = make_swarm_run(agents=("cpu0",), signed=True, config=SINGLE)
    run.start_runner("cpu0")
    objects = agent_objects(common_dir(run.repo), "cpu0")
    out = in_sandbox(
        run,
        "cpu0",
        PRELUDE
        + textwrap.dedent(
            f"""\
            import time
            commit("# mine\\n")
            os.mkfifo({str(objects)!r} + "/info-stall")
            started = time.monotonic()
            done = subprocess.run(swarm + ["submit", "-m", "mine"], capture_output=True, text=True)
            print("submit:", done.returncode, round(time.monotonic() - started), done.stderr.strip())
            """
        ),
    )
    code, seconds = out.split("submit:", 1)[1].split()[:2]
    assert code != "0" and "not a file: info-stall" in out, out
    assert int(seconds) < 30, out


def _experiments(run) -> list[dict]:
    state = BoardState(Board(run.board.directory))
    state.refresh()
    return list(state.experiments.values())


def test_a_verify_flood_waits_its_turn_behind_the_honest_agents_next_job(make_swarm_run):
    run = make_swarm_run(agents=("cpu0", "cpu1"), signed=True, config=SINGLE)
    # the attacker's own result, measured on its slot
    commit_train(run.worktree("cpu1"), stand_in_train(val_bpb=0.95), "attacker's result")
    with run.agent_env("cpu1"):
        target = submit(agent_context(), "attacker's result")["id"]
    runner1 = Runner(run.repo, run.board, "cpu1", STAND_IN_RUNNER, ONE_RUN, log=lambda line: None)
    assert runner1.step()["status"] == "keep"

    # From its sandbox, through its inbox: 60 requests of 16 reruns each, without waiting for answers.
    run.start_runner("cpu1")
    flood = in_sandbox(
        run,
        "cpu1",
        textwrap.dedent(
            f"""\
            from swarm.agents.protocol import agent_context, deliver
            from swarm.errors import SwarmError
            ctx = agent_context()
            taken = refused = 0
            for _ in range(60):
                try:
                    taken += len(deliver(ctx, {{"op": "verify", "id": "{target}", "repeats": 16}}))
                except SwarmError as e:
                    refused += 1
                    reason = str(e)
            print("taken", taken, "refused", refused, reason)
            """
        ),
    )
    assert f"taken {VERIFY_QUOTA} refused 59" in flood and "pending already" in flood, flood
    # ... and the honest agent's next job: it runs after at most one of the attacker's reruns
    commit_train(run.worktree("cpu0"), stand_in_train(val_bpb=0.97), "honest next")
    with run.agent_env("cpu0"):
        honest = submit(agent_context(), "honest next")["id"]
    runner0 = Runner(run.repo, run.board, "cpu0", STAND_IN_RUNNER, ONE_RUN, log=lambda line: None)
    order = [runner0.step()["id"] for _ in range(3)]
    assert honest in order[:2], order


@pytest.mark.slow  # agents and trainers in real sandboxes
def test_a_directory_at_a_request_name_is_refused_once_and_unread_answers_go(make_swarm_run):
    run = make_swarm_run(agents=("cpu0",), signed=True)
    run.start_runner("cpu0")
    inbox = inbox_dir(run.board.directory, "cpu0")
    out = in_sandbox(
        run,
        "cpu0",
        textwrap.dedent(
            f"""\
            import os, json
            inbox = {str(inbox)!r}
            os.makedirs(inbox + "/.d/deep/er")  # made whole, then put at a request's name
            open(inbox + "/.d/deep/file", "w").write("x")
            os.rename(inbox + "/.d", inbox + "/5-00000000.json")
            for i in range(300):  # bad requests whose answers it never reads
                with open(inbox + "/.t", "w") as f:
                    f.write("not json")
                os.replace(inbox + "/.t", inbox + f"/{{10 + i}}-00000000.json")
            print("planted")
            """
        ),
    )
    assert "planted" in out
    error = wait_until(
        lambda: (inbox / "5-00000000.error").exists() and (inbox / "5-00000000.error").read_text()
    )
    assert "not a readable regular file" in error
    assert wait_until(lambda: not (inbox / "5-00000000.json").exists())
    wait_until(lambda: len(list(inbox.glob("*.error"))) == 301)
    # answered once: no second answer of the directory comes
    (inbox / "5-00000000.error").unlink()
    time.sleep(0.5)
    assert not (inbox / "5-00000000.error").exists()
    # nobody reads the 300 answers: once old, the runner removes them
    old = time.time() - 3600
    for answer in inbox.glob("*.error"):
        os.utime(answer, (old, old))
    wait_until(lambda: not list(inbox.glob("*.error")), timeout=60)


def test_an_agent_sandbox_starts_a_new_session_without_a_terminal(make_swarm_run):
    """Started from a terminal (as in its tmux pane), the agent's programs cannot reach that terminal: no
    controlling terminal to push keystrokes into (TIOCSTI), their session led inside the sandbox."""
    import fcntl
    import pty
    import termios

    run = make_swarm_run(agents=("cpu0",), signed=True)
    script = textwrap.dedent(
        """\
        import fcntl, os, termios
        print("session inside:", os.getsid(0) != 0)
        try:
            fd = os.open("/dev/tty", os.O_RDWR)
            fcntl.ioctl(fd, termios.TIOCSTI, b"x")
            print("injected")
        except OSError as e:
            print("no terminal:", e.errno)
        """
    )
    leader, follower = pty.openpty()

    def own_terminal() -> None:  # the terminal becomes the controlling one of the launched command
        fcntl.ioctl(follower, termios.TIOCSCTTY, 0)

    done = run.run_as_agent(
        "cpu0", script, timeout=120, stdin=follower, start_new_session=True, preexec_fn=own_terminal
    )
    os.close(follower)
    os.close(leader)
    assert "session inside: True" in done.stdout and "no terminal:" in done.stdout, done.stdout + done.stderr


@pytest.mark.slow  # an evaluation left to run to its time limit
def test_a_slow_model_times_out_at_the_classes_scaled_evaluation_limit(
    make_swarm_run, tiny_cache, tmp_path, monkeypatch
):
    import shutil

    from tests.support.target import REPO_ROOT
    from tests.test_redteam_sealed import handwritten

    cache = tmp_path / "cache"
    shutil.copytree(tiny_cache, cache)
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(cache))
    config = SINGLE + "[runner]\neval_timeout_floor_s = 5\neval_timeout_multiple = 3\n"
    run = make_swarm_run(prepare=(REPO_ROOT / "prepare.py").read_text(), train=handwritten(), config=config)
    from swarm.config import load_section
    from swarm.runner.settings import RunnerSettings

    settings = load_section(run.repo, "runner", RunnerSettings)
    runner = Runner(run.repo, run.board, "cpu0", settings, ONE_RUN, log=lambda line: None)
    with run.agent_env("cpu0"):
        submit(agent_context(), "baseline", rerun=True)
    baseline = runner.step()
    assert baseline["status"] == "keep", (run.board.directory / baseline["log"]).read_text()[-3000:]
    limit = max(5.0, 3 * baseline["eval_seconds"])
    slow = "return self.head(self.embed(idx)) + 0.0 * (torch.ones(idx.shape[0], 3000, 3000) @ torch.ones(3000, 3000)).sum()"
    commit_train(run.worktree("cpu0"), handwritten(forward=slow), "slow on purpose")
    with run.agent_env("cpu0"):
        submit(agent_context(), "slow on purpose")
    started = time.monotonic()
    record = runner.step()
    assert record["status"] == TIMEOUT and f"evaluation past {limit:.0f} s" in record["reason"], record
    assert record["eval_seconds"] < limit + settings.kill_grace_s + 5
    assert time.monotonic() - started < 120


def test_turns_charge_the_asker_and_keep_a_confirmation_back_to_back():
    from swarm.board.charges import admit_verify, fair_order, payer
    from swarm.errors import SwarmError

    agents = ["a", "b"]
    rerun_for_b = {"id": "r", "agent": "a", "requested_by": "b", "verify_of": "x", "status": "queued"}
    assert payer(rerun_for_b, agents) == "b"
    assert payer({**rerun_for_b, "requested_by": "human"}, agents) == "a"
    # a's confirmation started on this slot: its other runs stay together although b was served longer ago
    pair = [
        {
            "id": f"c{i}",
            "agent": "a",
            "requested_by": "confirmation",
            "verify_of": "x",
            "submitted_at": 2.0 + i,
        }
        for i in range(3)
    ]
    other = {"id": "o", "agent": "b", "submitted_at": 1.0}
    order = fair_order([*pair[1:], other], agents, served={"a": 9.0, "b": 5.0}, last=pair[0])
    assert [j["id"] for j in order] == ["c1", "c2", "o"]
    # otherwise the payer served longest ago goes first, each payer's jobs oldest first
    order = fair_order(
        [other, {"id": "n", "agent": "a", "submitted_at": 0.5}], agents, served={"a": 9.0, "b": 5.0}
    )
    assert [j["id"] for j in order] == ["o", "n"]
    # b's pending rerun counts against its quota; a second verification of x waits for the first
    with pytest.raises(SwarmError, match="quota"):
        admit_verify([rerun_for_b], {"id": "y"}, "b", VERIFY_QUOTA)
    admit_verify([rerun_for_b], {"id": "y"}, "b", VERIFY_QUOTA - 1)
    with pytest.raises(SwarmError, match="pending already"):
        admit_verify([rerun_for_b], {"id": "x"}, "a", 1)
