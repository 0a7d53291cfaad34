"""Helpers for tests that spawn real swarms: a git repository with a stand-in agent kind and the reports its
agents write, polling with a deadline (tmux clean-up: tests/support/shell.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.support.swarm_run import git, init_repo, wait_until  # noqa: F401 (re-exported for tests)

STANDIN = Path(__file__).resolve().parent / "standin_agent.py"


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    """A git repository with one commit, laid out like the project (board/ and worktrees/ ignored)."""
    init_repo(path, {".gitignore": "/worktrees/*\n/board/*\n", **(files or {"train.py": "DEPTH = 8\n"})})
    return path


def latest_experiments(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The latest record of each experiment id among board records: the experiment's state."""
    return {r["id"]: r for r in records if r["type"] == "experiment"}


def write_standin_config(repo: Path, reports: Path, tick_s: float = 0.3) -> None:
    """swarm.toml naming the stand-in agent kind `standin` (not committed: untracked files may stay)."""
    # In their sandboxes, stand-in agents may write their reports and see the test's secret.
    (repo / "swarm.toml").write_text(
        f'[agents]\nwritable = ["{reports}"]\n'
        "[agents.commands]\n"
        f'standin = ["{sys.executable}", "{STANDIN}", "{reports}", "{{agent}}", "{{prompt}}"]\n'
        '[agents.secrets]\nstandin = ["SWARM_TEST_SECRET"]\n'
        "[coordinator]\n"
        f"tick_s = {tick_s}\n"
        "healthy_s = 1.0\n"
    )


def reports(directory: Path, agent: str) -> list[dict[str, Any]]:
    path = directory / f"{agent}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for_reports(
    directory: Path, agents: list[str], count: int = 1, timeout: float = 15
) -> dict[str, dict]:
    """The latest report of each agent, once each has reported `count` starts (an agent reports just
    after its launcher exec'd it, which is when `swarm spawn` returns)."""
    wait_until(lambda: all(len(reports(directory, a)) >= count for a in agents), timeout)
    return {a: reports(directory, a)[-1] for a in agents}
