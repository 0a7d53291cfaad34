"""Scripted fake-model conversations and agent launchers, shared by the end-to-end tests and bench/.

Each script is what a model would do for one agent kind, in that agent's own tools: the API agent
(read_file / edit_file / run), Claude Code (Read / Edit / Bash) and Codex (exec_command / write_stdin).
All make the same change to the real train.py (the tiny profile's MATRIX_LR up by a quarter), commit
it, run it through the swarm, and read the status that comes back.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

from swarm.board.experiments import FINAL_STATUSES
from swarm.board.store import Board
from swarm.installation import swarm_argv
from swarm.testing.fake_model import (
    CODEX_KEY_VARIABLE,
    FakeModelServer,
    Reply,
    Script,
    ToolCall,
    claude_code_env,
    codex_env,
)
from tests.support.shell import outside_environ, tmux_servers
from tests.support.standins import latest_experiments, make_repo
from tests.support.swarm_run import SwarmRun, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_BIN = REPO_ROOT / ".node" / "node_modules" / ".bin"  # the pinned CLIs scripts/setup.sh installs


def cli(name: str) -> str:
    """Path of an agent CLI from scripts/setup.sh; a clear failure (not a skip) when it is missing."""
    path = NODE_BIN / name
    assert path.exists(), f"{path} is missing: run `bash scripts/setup.sh` (it installs the agent CLIs)"
    return str(path)


DESCRIPTION = "matrix lr x1.25"  # of the scripted change
STATUS_LINE = re.compile(r"^status: +(\w+)", re.MULTILINE)  # in the result block `swarm run` prints
TRAIN = (REPO_ROOT / "train.py").read_text()
PREPARE = (REPO_ROOT / "prepare.py").read_text()


def learning_rate_edit(train: str) -> tuple[str, str]:
    """An edit a researcher might make: the tiny profile's MATRIX_LR up by a quarter (exact old text)."""
    match = re.search(r"^    MATRIX_LR = ([0-9.]+)$", train, re.MULTILINE)
    assert match, "train.py's tiny block has no MATRIX_LR line"
    return match.group(0), f"    MATRIX_LR = {float(match.group(1)) * 1.25:g}"


def research_script(old: str, new: str) -> Script:
    """Baseline, one change, then act on the status the change got: keep it, or reset."""

    def keep_or_reset(request):
        result = request.tool_results()[0]
        assert "status:" in result, result
        if "status:           keep" in result:
            return Reply.calling("run", "It helped; checking the board.", command="swarm best")
        return Reply.calling("run", "No gain; going back.", command="git reset --hard HEAD~1")

    return Script(
        [
            Reply.calling("read_file", "Reading train.py first.", path="train.py"),
            Reply.calling("run", "Baseline first.", command='swarm run -m "baseline"'),
            Reply.calling("edit_file", path="train.py", old=old, new=new),
            Reply.calling("run", command=f'git commit -am "{DESCRIPTION}"'),
            Reply.calling("run", command=f'swarm run -m "{DESCRIPTION}"'),
            keep_or_reset,
        ]
    )


def start_api_agent(run: SwarmRun, agent: str, provider: str, server: FakeModelServer) -> subprocess.Popen:
    """`swarm agent api` in the agent's worktree with the environment `swarm spawn` gives an agent, in its
    sandbox (its `swarm run` and usage then go through its inbox to its runner).

    Its settings are swarm.toml's [api] table, which the agent reads once as it starts: this returns once
    the agent has sent its first request, so the next agent started may be given other settings."""
    base_url = server.url if provider == "anthropic" else server.url + "/v1"
    key_env = "ANTHROPIC_API_KEY" if provider == "anthropic" else "OPENAI_API_KEY"
    config = run.repo / "swarm.toml"
    shared = config.read_text().split(API_TABLE)[0]
    config.write_text(
        f'{shared}{API_TABLE}provider = "{provider}"\nbase_url = "{base_url}"\nmodel = "fake-model"\n'
        "max_turns = 6\n"
    )
    env = run.runner_env() | run.agent_environ(agent) | {key_env: server.api_key}
    argv, env = run.sealed(agent, "api", swarm_argv("agent", "api"), env)
    proc = subprocess.Popen(
        argv,
        cwd=run.worktree(agent),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_until(lambda: server.model_requests() or proc.poll() is not None, timeout=120, interval=0.1)
    return proc


API_TABLE = "\n[api]\n"  # start_api_agent's table, at the end of swarm.toml


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
def spawned_swarm(
    tmp_path: Path,
    kind: str,
    tiny_cache: Path,
    train: str = TRAIN,
    prepare: str = PREPARE,
    edit: tuple[str, str] | None = None,
) -> Iterator[tuple[Path, FakeModelServer]]:
    """A repository with the real prepare.py / train.py / program.md, a fake model server scripted for
    `kind`, and `swarm spawn --cpu 1 --kind KIND` started against it; torn down whatever happens."""
    root = tmp_path / kind
    program = (REPO_ROOT / "program.md").read_text()
    repo = make_repo(root / "repo", {"train.py": train, "prepare.py": prepare, "program.md": program})
    # Codex reads its key from the variable its config.toml names (codex_env): let it into its sandbox.
    (repo / "swarm.toml").write_text(
        f'[coordinator]\ntick_s = 0.5\n\n[agents.secrets]\ncodex = ["{CODEX_KEY_VARIABLE}"]\n'
    )
    worktree = repo / "worktrees" / "cpu0"
    old, new = edit or learning_rate_edit(train)
    script = claude_script(worktree, old, new) if kind == "claude" else codex_script(old, new)
    sockets = root / "sock"
    with FakeModelServer(script) as server:
        if kind == "claude":
            cli_env = claude_code_env(server, root / "claude-config")
        else:
            cli_env = codex_env(server, root / "codex-home")
        env = outside_environ()
        env |= cli_env | {
            "PATH": f"{NODE_BIN}{os.pathsep}{env['PATH']}",  # the pinned CLIs from scripts/setup.sh
            "SWARM_TMUX_DIR": str(sockets),
            "AUTORESEARCH_CACHE_DIR": str(tiny_cache),
        }
        with tmux_servers(sockets):
            spawn = subprocess.run(
                swarm_argv("spawn", "--cpu", "1", "--kind", kind, "--tag", "e2e"),
                cwd=repo,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert spawn.returncode == 0, spawn.stdout + spawn.stderr
            yield repo, server


def final_experiment(board: Board) -> dict | None:
    latest = latest_experiments(board.records())
    done = [e for e in latest.values() if e["status"] in FINAL_STATUSES]
    return done[0] if done else None


def usage_of(board: Board, kind: str) -> list[dict]:
    return [r for r in board.records() if r["type"] == "usage" and r.get("kind") == kind]
