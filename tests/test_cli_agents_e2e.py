"""End to end with the real agent CLIs: `swarm spawn --cpu 1 --kind claude` (Claude Code) and
`--kind codex` (Codex), each pointed at a scripted fake model server, edit train.py, commit, run one
real tiny-profile experiment through the swarm's runner, and read its status; their usage lands on the
board. Both run in their sandboxes (swarm.orchestration.sealing), as every agent of a sealed run does. The two swarms run side by side (one CPU core each), each on its own tmux socket."""

from __future__ import annotations

import contextlib
import subprocess

import pytest

from swarm.board.store import Board
from tests.support.agent_scripts import (
    DESCRIPTION,
    STATUS_LINE,
    TRAIN,
    cli,
    final_experiment,
    learning_rate_edit,
    spawned_swarm,
    usage_of,
)
from tests.support.swarm_run import wait_until

pytestmark = pytest.mark.slow  # Claude Code and Codex spawned in tmux on the real tiny trainer


def test_claude_code_and_codex_each_run_an_experiment_through_the_swarm(tmp_path, tiny_cache):
    cli("claude"), cli("codex")  # installed by scripts/setup.sh, or the test says how to get them
    with contextlib.ExitStack() as stack:
        swarms = {
            kind: stack.enter_context(spawned_swarm(tmp_path, kind, tiny_cache))
            for kind in ("claude", "codex")
        }
        boards = {kind: Board(repo / "board") for kind, (repo, _) in swarms.items()}
        # Done: the experiment is measured and the CLI reported its session's usage (it ends after the
        # scripted conversation; the coordinator then resumes it, which only adds sessions).
        wait_until(
            lambda: all(final_experiment(b) and usage_of(b, kind) for kind, b in boards.items()),
            timeout=360,
            interval=0.5,
        )
        requests = {kind: server.model_requests() for kind, (_, server) in swarms.items()}
        unexpected = {
            kind: [f"{r.method} {r.path}" for r in server.unexpected()]
            for kind, (_, server) in swarms.items()
        }
    assert unexpected == {"claude": [], "codex": []}  # no call to any host but the fake server
    assert {kind: server.errors for kind, (_, server) in swarms.items()} == {"claude": [], "codex": []}
    for kind, (repo, _) in swarms.items():
        board = boards[kind]
        experiment = final_experiment(board)
        pane_log = (board.directory / "logs" / "panes" / "cpu0.log").read_text(errors="replace")
        assert experiment["agent"] == "cpu0" and experiment["description"] == DESCRIPTION, pane_log[-3000:]
        assert experiment["status"] in ("keep", "marginal", "discard"), (
            experiment["reason"],
            pane_log[-3000:],
        )
        assert 0.5 < experiment["val_bpb"] < 8.0 and experiment["profile"] == "tiny"
        worktree = repo / "worktrees" / "cpu0"
        committed = subprocess.run(
            ["git", "show", f"{experiment['commit']}:train.py"], cwd=worktree, capture_output=True, text=True
        ).stdout
        assert learning_rate_edit(TRAIN)[1] in committed and experiment["parent"] != experiment["commit"]
        # The model was handed the result block and read the status from it.
        statuses = [
            m.group(1) for r in requests[kind] for m in STATUS_LINE.finditer("\n".join(r.tool_results()))
        ]
        assert experiment["status"] in statuses
        # The agent ran in its sandbox (and its runner wrote what it asked for: swarm.runner.inbox).
        starts = [
            r
            for r in board.records()
            if r["type"] == "process" and r["window"] == "cpu0" and r["event"] == "started"
        ]
        assert starts and all(r["sandboxed"] for r in starts)
        [first, *_] = usage_of(board, kind)
        assert first["agent"] == "cpu0" and first["tag"] == "e2e" and first["input_tokens"] > 0
        assert (first["cost_usd"] or 0) > 0 if kind == "claude" else first["cost_usd"] is None
        # The relay turned the JSON events into readable lines in the agent's window.
        assert (
            "$ Bash: git commit" if kind == "claude" else '$ /bin/bash -c "sed -i'
        ) in pane_log  # non-login shell
