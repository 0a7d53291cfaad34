"""What an agent's own object directory costs its runner: the time to copy a submitted commit into the
shared store (swarm.repo.stores.import_commit), against a history of N earlier submitted commits.

    .venv/bin/python bench/commit_store.py                 # N = 10, 100, 1000
    .venv/bin/python bench/commit_store.py --history 300

A repository with prepare.py and a 30 KB train.py at its base; N commits, each changing train.py, each
pinned under refs/swarm/experiments/ as a submitted one is; then an agent commits a change into its own
object directory (as its sandbox's git does) and the runner copies it: the median of 5 copies of 5 fresh
commits per N, and the time of the check that the commit is already there (every later request).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from swarm.repo.stores import agent_git_env, agent_objects, common_dir, import_commit, in_shared_store  # noqa: E402


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def history(repo: Path, n: int) -> None:
    """N commits changing train.py, each pinned as a submitted experiment."""
    train = repo / "train.py"
    for i in range(n):
        train.write_text(train.read_text() + f"# change {i}\n")
        git(repo, "commit", "-qam", f"change {i}")
        git(repo, "update-ref", f"refs/swarm/experiments/{i:08x}", "HEAD")


def measure(n: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        git(repo, "config", "user.email", "bench@example.com")
        git(repo, "config", "user.name", "bench")
        (repo / "prepare.py").write_text("PROFILES = {}\n")
        (repo / "train.py").write_text("x = 1  # a line of a model\n" * 1100)
        git(repo, "add", ".")
        git(repo, "commit", "-qm", "base")
        history(repo, n)
        common = common_dir(repo)
        own = agent_objects(common, "bench")
        own.mkdir(parents=True)
        env = agent_git_env(common, "bench")
        worktree = Path(tmp) / "agent"
        git(repo, "worktree", "add", "-q", "-b", "swarm/bench/agent/work", str(worktree))
        copies, checks = [], []
        for i in range(5):
            train = worktree / "train.py"
            train.write_text(train.read_text() + f"# agent's change {i}\n")
            git(worktree, "commit", "-qam", f"agent {i}", env=env)
            commit = git(worktree, "rev-parse", "HEAD", env=env)
            assert not in_shared_store(repo, commit)
            started = time.perf_counter()
            import_commit(repo, "bench", commit)
            copies.append(time.perf_counter() - started)
            started = time.perf_counter()
            import_commit(repo, "bench", commit)
            checks.append(time.perf_counter() - started)
            git(repo, "update-ref", f"refs/swarm/experiments/agent{i}", commit)
        return statistics.median(copies), statistics.median(checks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, nargs="*", default=[10, 100, 1000])
    args = parser.parse_args()
    print(f"{'history':>8}  {'copy (ms)':>10}  {'already there (ms)':>18}")
    for n in args.history:
        copy, check = measure(n)
        print(f"{n:>8}  {copy * 1000:>10.1f}  {check * 1000:>18.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
