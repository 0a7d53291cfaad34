"""End to end with the real agent CLIs: `swarm spawn --cpu 1 --agent claude` (Claude Code) and
`--agent codex` (Codex), each pointed at a scripted fake model server, edit train.py, commit, run one
real tiny-profile experiment through the swarm's runner, and read its status; their usage lands on the
board. The two swarms run side by side (one CPU core each), each on its own tmux socket."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT
from swarm_helpers import kill_tmux_servers, make_repo, wait_until
from test_api_agent_e2e import PREPARE, TRAIN, learning_rate_edit
from test_cli_agents import NODE_BIN, cli

from swarm.board import Board
from swarm.fake_model import FakeModelServer, Reply, Script, ToolCall, claude_code_env, codex_env
from swarm.records import FINAL_STATUSES

DESCRIPTION = "matrix lr x1.25"
STATUS_LINE = re.compile(r"^status: +(\w+)", re.MULTILINE)


def claude_script(worktree: Path, old: str, new: str) -> Script:
    """Claude Code's own tools: Read, Edit, then Bash to commit and run; the last turn reads the status."""
    train = str(worktree / "train.py")
    command = f'git commit -qam "{DESCRIPTION}" && swarm run -m "{DESCRIPTION}"'
    return Script(
        [
            Reply.calling("Read", "Reading train.py.", file_path=train),
            Reply.calling("Edit", file_path=train, old_string=old, new_string=new),
            Reply.calling("Bash", command=command, description="commit and run", timeout=600_000),
            lambda request: Reply(f"The experiment finished: {_status(request)}."),
        ]
    )


def codex_script(old: str, new: str) -> Script:
    """Codex's exec_command (a PTY session that yields after a while), polled with write_stdin until the
    experiment's result block arrives; then the status is read."""
    command = f"sed -i 's/^{old}$/{new}/' train.py && git commit -qam '{DESCRIPTION}' && swarm run -m '{DESCRIPTION}'"

    def poll(request):
        output = "".join(request.tool_results())
        if not output:  # a new session (the coordinator resumed the agent): nothing to poll
            return Reply("Resumed; nothing to do.")
        if STATUS_LINE.search(output) or "Process exited" in output:
            return Reply(f"The experiment finished: {_status(request)}.")
        session = int(re.search(r"session ID (\d+)", output).group(1))
        return Reply(
            "", (ToolCall("write_stdin", {"session_id": session, "chars": "", "yield_time_ms": 30_000}),)
        )

    run = ToolCall("exec_command", {"cmd": command, "yield_time_ms": 30_000})
    return Script([Reply("Editing, committing, running.", (run,)), *[poll] * 12])


def _status(request) -> str:
    found = STATUS_LINE.search("\n".join(request.tool_results()))
    return found.group(1) if found else "unknown"


@contextlib.contextmanager
def spawned_swarm(tmp_path: Path, kind: str, tiny_cache: Path):
    """A repository with the real prepare.py / train.py / program.md, a fake model server scripted for
    `kind`, and `swarm spawn --cpu 1 --agent KIND` started against it; torn down whatever happens."""
    root = tmp_path / kind
    program = (REPO_ROOT / "program.md").read_text()
    repo = make_repo(root / "repo", {"train.py": TRAIN, "prepare.py": PREPARE, "program.md": program})
    (repo / "swarm.toml").write_text("[coordinator]\ntick_s = 0.5\n")
    worktree = repo / "worktrees" / "cpu0"
    old, new = learning_rate_edit(TRAIN)
    script = claude_script(worktree, old, new) if kind == "claude" else codex_script(old, new)
    sockets = root / "sock"
    with FakeModelServer(script) as server:
        if kind == "claude":
            cli_env = claude_code_env(server, root / "claude-config")
        else:
            cli_env = codex_env(server, root / "codex-home")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SWARM_", "TMUX"))}
        env |= cli_env | {
            "PATH": f"{NODE_BIN}{os.pathsep}{env['PATH']}",  # the pinned CLIs from scripts/setup.sh
            "SWARM_TMUX_DIR": str(sockets),
            "AUTORESEARCH_CACHE_DIR": str(tiny_cache),
        }
        try:
            spawn = subprocess.run(
                [sys.executable, "-P", "-m", "swarm", "spawn", "--cpu", "1", "--agent", kind, "--tag", "e2e"],
                cwd=repo,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert spawn.returncode == 0, spawn.stdout + spawn.stderr
            yield repo, server
        finally:
            kill_tmux_servers(sockets)


def final_experiment(board: Board) -> dict | None:
    latest = {r["id"]: r for r in board.records() if r["type"] == "experiment"}
    done = [e for e in latest.values() if e["status"] in FINAL_STATUSES]
    return done[0] if done else None


def usage_of(board: Board, kind: str) -> list[dict]:
    return [r for r in board.records() if r["type"] == "usage" and r.get("kind") == kind]


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
        [first, *_] = usage_of(board, kind)
        assert first["agent"] == "cpu0" and first["tag"] == "e2e" and first["input_tokens"] > 0
        assert (first["cost_usd"] or 0) > 0 if kind == "claude" else first["cost_usd"] is None
        # The relay turned the JSON events into readable lines in the agent's window.
        assert (
            "$ Bash: git commit" if kind == "claude" else '$ /bin/bash -c "sed -i'
        ) in pane_log  # non-login shell
