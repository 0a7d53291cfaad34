"""The API agent's tools: what the whitelist lets through, and that a refusal changes nothing."""

import json

import pytest

from swarm.agents.api.client import ToolUse
from swarm.agents.api.tools import Toolbox
from tests.support.swarm_run import git, process_alive, wait_until


def call(toolbox: Toolbox, name: str, **arguments):
    return toolbox.call(ToolUse("id1", name, arguments, json.dumps(arguments)))


def test_edit_commit_reset_loop(worktree):
    tools = Toolbox(worktree)
    assert not call(tools, "edit_file", path="train.py", old="DEPTH = 8", new="DEPTH = 12").is_error
    committed = call(tools, "run", command='git commit -am "deeper model"')
    assert not committed.is_error and committed.output.startswith("exit 0")
    assert git(worktree, "log", "-1", "--format=%s").strip() == "deeper model"
    read = call(tools, "read_file", path="train.py")
    assert "    1  DEPTH = 12" in read.output
    assert not call(tools, "run", command="git reset --hard HEAD~1").is_error
    assert (worktree / "train.py").read_text().startswith("DEPTH = 8")


@pytest.mark.parametrize(
    "command, reason",
    [
        ("curl http://example.com", "'curl' is not an allowed command"),
        ("rm -rf /", "'rm' is not an allowed command"),
        ("python train.py", "'python' is not an allowed command"),
        ("git status && rm -rf /", "no shell here"),
        ("git log | head", "no shell here"),
        ("echo $(id)", "no shell here"),
        ("git -c core.pager=sh status", "git -c is not allowed"),
        ("git push origin HEAD", "git push is not allowed"),
        ("git branch -D main", "git branch is not allowed"),
        ("git diff --output=/tmp/x", "git option --output is not allowed"),
        ("git add prepare.py", "takes only the path train.py"),
        ("git restore --source=HEAD~1 prepare.py", "takes only the path train.py"),
        ("swarm spawn --cpu 4", "swarm spawn is not allowed"),
        ("swarm export /tmp/results.tsv", "swarm export is not allowed"),
        ("git commit -m 'unbalanced", "cannot parse the command"),
    ],
)
def test_commands_outside_the_whitelist_are_refused(worktree, command, reason):
    before = git(worktree, "status", "--porcelain") + git(worktree, "rev-parse", "HEAD")
    outcome = call(Toolbox(worktree), "run", command=command)
    assert outcome.is_error and outcome.output.startswith("refused: ") and reason in outcome.output
    assert git(worktree, "status", "--porcelain") + git(worktree, "rev-parse", "HEAD") == before


@pytest.mark.parametrize(
    "name, arguments, reason",
    [
        ("edit_file", {"path": "prepare.py", "old": "2048", "new": "64"}, "only train.py may be changed"),
        ("write_file", {"path": "../wt/prepare.py", "content": "x"}, "only train.py may be changed"),
        ("write_file", {"path": "/etc/passwd", "content": "x"}, "only train.py may be changed"),
        ("read_file", {"path": "/etc/passwd"}, "outside your worktree"),
        ("read_file", {"path": "../../etc/passwd"}, "outside your worktree"),
        ("read_file", {"path": ".git/config"}, "git's own files"),
        ("edit_file", {"path": "train.py", "old": "x"}, "missing argument 'new'"),
        ("read_file", {"path": "train.py", "offset": "1"}, "offset must be a integer"),
        ("delete_file", {"path": "train.py"}, "unknown tool 'delete_file'"),
    ],
)
def test_file_tools_refuse_everything_but_train_py(worktree, name, arguments, reason):
    outcome = call(Toolbox(worktree), name, **arguments)
    assert outcome.is_error and reason in outcome.output
    assert (worktree / "prepare.py").read_text() == "MAX_SEQ_LEN = 2048\n"
    assert git(worktree, "status", "--porcelain") == ""


def test_a_symlinked_train_py_is_not_written_through(worktree, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (worktree / "train.py").unlink()
    (worktree / "train.py").symlink_to(outside)
    outcome = call(Toolbox(worktree), "write_file", path="train.py", content="x")
    assert outcome.is_error and "symlink" in outcome.output
    assert outside.read_text() == "keep me"
    assert call(Toolbox(worktree), "read_file", path="train.py").is_error  # resolves outside the worktree


def test_edit_needs_a_unique_match_and_bad_json_is_an_error(worktree):
    tools = Toolbox(worktree)
    outcome = call(tools, "edit_file", path="train.py", old="=", new="==")
    assert outcome.is_error and "occurs 2 times" in outcome.output
    garbled = tools.call(ToolUse("id2", "run", None, '{"command": "git sta'))
    assert garbled.is_error and "not a JSON object" in garbled.output


def test_run_logs_are_readable_and_long_output_keeps_its_tail(worktree, tmp_path):
    logs = tmp_path / "board" / "logs"
    logs.mkdir(parents=True)
    (logs / "abcd1234.log").write_text("".join(f"step {i}\n" for i in range(3000)) + "val_bpb: 1.234\n")
    tools = Toolbox(worktree, logs=logs, max_output_chars=500)
    outcome = call(tools, "read_file", path=str(logs / "abcd1234.log"), offset=2990, limit=50)
    assert not outcome.is_error and "val_bpb: 1.234" in outcome.output
    shown = call(tools, "run", command="git log -p --format=%H")
    assert len(shown.output) < 600


def test_a_command_past_its_time_limit_is_stopped_with_its_children(worktree, tmp_path):
    pid_file = tmp_path / "hook.pid"
    hook = worktree / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nsleep 30\n")
    hook.chmod(0o755)
    (worktree / "train.py").write_text("DEPTH = 9\n")
    outcome = call(Toolbox(worktree, command_timeout_s=0.5), "run", command="git commit -am slow")
    assert outcome.is_error and "timed out after 0.5 s" in outcome.output
    hook_pid = int(pid_file.read_text())
    # the hook (a grandchild of the command) goes with it, not outliving the time limit
    wait_until(lambda: not process_alive(hook_pid), timeout=5)


def test_commit_without_a_message_aborts_instead_of_waiting_for_an_editor(worktree):
    (worktree / "train.py").write_text("DEPTH = 9\n")
    outcome = call(Toolbox(worktree, command_timeout_s=20), "run", command="git commit -a")
    assert outcome.is_error and "empty commit message" in outcome.output
