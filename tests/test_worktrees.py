"""Worktrees on real git: created, reused, re-attached with their commits, removed only when nothing is lost."""

from __future__ import annotations

from swarm.repo.worktrees import GitRepo
from tests.support.standins import git, make_repo


def test_worktree_created_reused_and_reattached_keeping_its_commits(tmp_path):
    repo = GitRepo(make_repo(tmp_path / "repo"))
    base = repo.resolve("HEAD")
    path = repo.path / "worktrees" / "gpu0"
    assert repo.ensure_worktree(path, "swarm/t/gpu0", base) == "created"
    assert repo.ensure_worktree(path, "swarm/t/gpu0", base) == "reused"
    (path / "train.py").write_text("DEPTH = 9\n")
    git(path, "commit", "-q", "-am", "deeper")
    work = repo.resolve("swarm/t/gpu0")
    git(repo.path, "worktree", "remove", "--force", str(path))  # worktree lost, branch still there
    assert repo.ensure_worktree(path, "swarm/t/gpu0", base) == "re-attached"
    assert git(path, "rev-parse", "HEAD") == work


def test_removal_never_loses_a_commit(tmp_path):
    repo = GitRepo(make_repo(tmp_path / "repo"))
    base = repo.resolve("HEAD")
    paths = {n: repo.path / "worktrees" / n for n in ("a", "b", "c", "d")}
    for name, path in paths.items():
        repo.ensure_worktree(path, f"swarm/t/{name}", base)
    (paths["b"] / "train.py").write_text("DEPTH = 10\n")
    git(paths["b"], "commit", "-q", "-am", "b's work")
    git(paths["c"], "reset", "-q", "--hard", "swarm/t/b")  # c and b hold the same unique commit
    (paths["d"] / "train.py").write_text("uncommitted\n")

    assert repo.remove_worktree_if_safe(paths["a"], "swarm/t/a").removed  # only base commits
    assert not repo.branch_exists("swarm/t/a") and not paths["a"].exists()
    first = repo.remove_worktree_if_safe(paths["b"], "swarm/t/b")
    second = repo.remove_worktree_if_safe(paths["c"], "swarm/t/c")
    assert first.removed and not second.removed and "1 commit(s) only on swarm/t/c" in second.reason
    kept = repo.remove_worktree_if_safe(paths["d"], "swarm/t/d")
    assert not kept.removed and kept.reason == "uncommitted changes" and paths["d"].exists()
    assert "b's work" in git(repo.path, "log", "--all", "--format=%s")


def test_unique_commits_ignore_worktree_heads(tmp_path):
    repo = GitRepo(make_repo(tmp_path / "repo"))
    path = repo.path / "worktrees" / "x"
    repo.ensure_worktree(path, "swarm/t/x", repo.resolve("HEAD"))
    git(path, "commit", "-q", "--allow-empty", "-m", "mine")
    # The worktree's own HEAD points at the branch; it must not count as "another ref".
    assert repo.unique_commits("swarm/t/x") == [repo.resolve("swarm/t/x")]
