"""End to end: `swarm agent api` as a real process, driven by a scripted fake model over the Anthropic and
the OpenAI protocol, edits train.py, commits, runs `swarm run`, reads the status and acts on it, and
completes two experiments of the real train.py (tiny profile, CPU) that a real runner measured and
recorded on the board."""

import contextlib
import subprocess
import sys

import pytest

from swarm.board.experiments import FINAL_STATUSES
from swarm.board.store import USAGE, Board
from swarm.testing.fake_model import FakeModelServer, Reply, Script
from tests.support.agent_scripts import (
    DESCRIPTION,
    PREPARE,
    TRAIN,
    learning_rate_edit,
    research_script,
    start_api_agent,
)
from tests.support.processes import processes_with
from tests.support.shell import tmux_servers
from tests.support.standins import latest_experiments, make_repo
from tests.support.swarm_run import STAND_IN_CONFIG, STAND_IN_PREPARE, git, stand_in_train, wait_until

PROTOCOLS = {"cpu0": "anthropic", "cpu1": "openai"}  # agent -> provider (openai: the Responses API)


@pytest.mark.slow  # real tiny trainer runs
def test_api_agent_completes_two_experiments_over_each_protocol(make_swarm_run, tiny_cache, monkeypatch):
    # One agent per protocol, side by side on two CPU slots (one core each), so the four real training
    # runs take the time of two.
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(tiny_cache))  # the runner passes it on to train.py
    # one run decides (the `single` noise rule): no calibration or confirmation reruns join the agents' runs
    run = make_swarm_run(
        agents=tuple(PROTOCOLS),
        train=TRAIN,
        prepare=PREPARE,
        signed=True,
        config='[noise]\nrule = "single"\n',
    )
    for agent in PROTOCOLS:
        run.start_runner(agent)
    with contextlib.ExitStack() as stack:
        servers = {
            a: stack.enter_context(FakeModelServer(research_script(*learning_rate_edit(TRAIN))))
            for a in PROTOCOLS
        }
        procs = {a: start_api_agent(run, a, provider, servers[a]) for a, provider in PROTOCOLS.items()}
        outputs = {}
        try:
            for agent, proc in procs.items():
                outputs[agent], _ = proc.communicate(timeout=300)
        finally:
            for proc in procs.values():
                if proc.poll() is None:  # SIGTERM: the agent stops the command it is running too
                    proc.terminate()
                    proc.wait()
        protocols = {a: {r.protocol for r in servers[a].model_requests()} for a in PROTOCOLS}
    assert protocols == {"cpu0": {"anthropic"}, "cpu1": {"responses"}}
    records = run.board.records()
    latest = latest_experiments(records)
    for agent in PROTOCOLS:
        output = outputs[agent]
        assert procs[agent].returncode == 0, output
        baseline, change = sorted(
            (e for e in latest.values() if e["agent"] == agent), key=lambda e: e["submitted_at"]
        )
        assert (baseline["description"], change["description"]) == ("baseline", DESCRIPTION)
        assert baseline["status"] in FINAL_STATUSES and change["status"] in FINAL_STATUSES
        # Measured by the runner from real training runs (the tiny profile's baseline is around 1.5).
        for e in (baseline, change):
            assert 0.5 < e["val_bpb"] < 8.0 and e["num_steps"] > 0 and e["profile"] == "tiny", e
        assert baseline["commit"] == run.base and change["parent"] == run.base
        assert baseline["train_sha256"] != change["train_sha256"]
        # The scripted model read the status and acted on it: kept the commit, or reset to the baseline.
        head = git(run.worktree(agent), "rev-parse", "HEAD")
        if change["status"] == "keep":
            assert head == change["commit"] and "$ swarm best" in output, output
        else:
            assert head == baseline["commit"] and "$ git reset --hard HEAD~1" in output, output
        usage = [r for r in records if r["type"] == USAGE and r["agent"] == agent]
        assert sum(u["requests"] for u in usage) == 6 and sum(u["input_tokens"] for u in usage) > 0


@pytest.mark.slow  # a real swarm spawned in tmux
def test_spawned_api_agent_gets_the_swarm_prompt_and_is_resumed(swarm_shell, tmp_path, monkeypatch):
    """`swarm spawn --cpu 1 --kind api` with its settings in swarm.toml [api]: the agent starts with the
    launcher's prompt, runs an experiment (stand-in trainer: seconds), and after its session ends the
    coordinator resumes it with the resume prompt."""
    repo = make_repo(
        tmp_path / "repo", {"train.py": stand_in_train(val_bpb=1.0), "prepare.py": STAND_IN_PREPARE}
    )
    monkeypatch.setenv("STANDIN_STATE_DIR", str(tmp_path))
    script = Script(
        [
            Reply.calling("edit_file", path="train.py", old="VAL_BPB = 1.0", new="VAL_BPB = 0.9"),
            Reply.calling("run", command='git commit -am "lower"'),
            Reply.calling("run", command='swarm run -m "lower"'),
        ]
    )
    with FakeModelServer(script) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", server.api_key)
        (repo / "swarm.toml").write_text(
            f'[api]\nprovider = "anthropic"\nbase_url = "{server.url}"\nmodel = "fake-model"\nmax_turns = 4\n'
            "[coordinator]\ntick_s = 0.3\n"
            '[noise]\nrule = "single"\n'  # one experiment, no calibration reruns of it
            # a stand-in trainer hands over no model (its summary's val_bpb is taken) and keeps its state in
            # STANDIN_STATE_DIR, outside its sandbox's run directory
            f'[runner]\nevaluation = "reported"\n{STAND_IN_CONFIG}'
        )
        with tmux_servers(swarm_shell):  # before the model server goes
            spawn = subprocess.run(
                [
                    sys.executable,
                    "-P",
                    "-m",
                    "swarm",
                    "spawn",
                    "--cpu",
                    "1",
                    "--kind",
                    "api",
                    "--tag",
                    "api",
                ],
                cwd=repo,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert spawn.returncode == 0, spawn.stdout + spawn.stderr
            board = Board(repo / "board")
            openings = lambda: [r.body["messages"][0]["content"] for r in server.model_requests()]  # noqa: E731
            wait_until(
                lambda: any("You are being resumed" in o for o in openings()), timeout=90, interval=0.3
            )
    first = openings()[0]
    assert first.startswith("You are cpu0, one of 1 agents of the autoresearch swarm 'api'"), first
    [experiment] = latest_experiments(board.records()).values()
    assert (
        experiment["status"] == "keep"
        and experiment["val_bpb"] == 0.9
        and experiment["description"] == "lower"
    )
    resumed = next(o for o in openings() if "You are being resumed" in o)
    assert experiment["id"] in resumed  # the resume prompt lists the agent's last results
    assert [r for r in board.records() if r["type"] == USAGE and r["kind"] == "api"]


def test_a_stopped_api_agent_stops_its_command_and_records_its_usage(make_swarm_run):
    # No runner: `swarm run` would wait for ever. Unsealed: in a sandbox the agent's usage goes through its
    # inbox to its runner, and a stopped sandbox ends at once with everything in it (see README, Sandboxes).
    run = make_swarm_run(agents=("cpu0",), unsealed=True)
    with FakeModelServer(Script([Reply.calling("run", command='swarm run -m "waits"')])) as server:
        proc = start_api_agent(run, "cpu0", "anthropic", server)
        try:
            waiting = wait_until(lambda: processes_with("swarm run -m waits"), timeout=30)
            proc.terminate()
            proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode != 0
    wait_until(lambda: not processes_with("swarm run -m waits"), timeout=10)
    assert waiting  # it was there, and went with the agent
    [usage] = [r for r in run.board.records() if r["type"] == USAGE]
    assert usage["requests"] == 1 and usage["agent"] == "cpu0"
