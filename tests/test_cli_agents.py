"""The real Claude Code and Codex CLIs against the fake model server: they take the scripted tool calls,
edit and commit, their JSON events are relayed as readable lines with usage for the ledger, and they
reach for no other host. (Through `swarm spawn`, with training, in test_cli_agents_e2e.py.)"""

import io
import os
from pathlib import Path

import pytest

from swarm.agents.relay import ClaudeEvents, CodexEvents, relay
from swarm.testing.fake_model import FakeModelServer, Reply, Script, ToolCall, claude_code_env, codex_env
from tests.support.agent_scripts import cli
from tests.support.swarm_run import git, init_repo


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "wt"
    init_repo(repo, {"train.py": "DEPTH = 8\n"})
    return repo


def _run(argv, repo, env, reader):
    out, usage = io.StringIO(), []
    base = {"PATH": os.environ["PATH"], "HOME": str(repo.parent), "LANG": "C.UTF-8", "IS_SANDBOX": "1"}
    code = relay(reader, argv, cwd=str(repo), env=base | env, record=usage.append, out=out)
    return code, out.getvalue(), usage


def _last_commit(repo: Path) -> str:
    return git(repo, "log", "-1", "--format=%s")


def test_claude_code_edits_and_commits_through_the_fake(repo, tmp_path):
    train = str(repo / "train.py")
    script = Script(
        [
            Reply.calling("Read", "Reading train.py.", file_path=train),
            Reply.calling("Edit", file_path=train, old_string="DEPTH = 8", new_string="DEPTH = 10"),
            Reply.calling(
                "Bash", command='git commit -qam "depth 10" && git log --oneline -1', description="commit"
            ),
        ]
    )
    with FakeModelServer(script) as server:
        argv = [
            cli("claude"),
            "-p",
            "go",
            "--dangerously-skip-permissions",
            "--output-format",
            "stream-json",
            "--verbose",
        ]
        code, shown, usage = _run(argv, repo, claude_code_env(server, tmp_path / "claude"), ClaudeEvents())
        assert not server.unexpected(), [f"{r.method} {r.path}" for r in server.unexpected()]
        tool_results = [r.tool_results() for r in server.model_requests("anthropic")]
    assert code == 0, shown
    assert (repo / "train.py").read_text() == "DEPTH = 10\n" and _last_commit(repo) == "depth 10"
    assert any("depth 10" in result for results in tool_results for result in results)
    assert "$ Bash: git commit" in shown and "Reading train.py." in shown and "[session success" in shown
    [report] = usage
    assert report["usage"].input_tokens > 0 and report["usage"].output_tokens > 0
    assert report["requests"] == 4 and report["cost_usd"] > 0  # 3 scripted turns and the closing reply


def test_codex_edits_and_commits_through_the_fake(repo, tmp_path):
    command = (
        "sed -i 's/DEPTH = 8/DEPTH = 10/' train.py && git commit -qam 'depth 10' && git log --oneline -1"
    )
    script = Script([Reply("Editing.", (ToolCall("exec_command", {"cmd": command}),))])
    with FakeModelServer(script) as server:
        argv = [
            cli("codex"),
            "exec",
            "--dangerously-bypass-approvals-and-sandbox",
            "--json",
            "--skip-git-repo-check",
            "go",
        ]
        code, shown, usage = _run(argv, repo, codex_env(server, tmp_path / "codex"), CodexEvents())
        assert not server.unexpected(), [f"{r.method} {r.path}" for r in server.unexpected()]
        [request, answer] = server.model_requests("responses")
    assert code == 0, shown
    assert (repo / "train.py").read_text() == "DEPTH = 10\n" and _last_commit(repo) == "depth 10"
    assert "depth 10" in answer.tool_results()[0] and request.headers["authorization"].startswith("Bearer ")
    assert "$ /bin/bash -lc" in shown and "Editing." in shown and "(exit 0)" in shown
    [report] = usage
    assert report["usage"].input_tokens > 0 and report["cost_usd"] is None
