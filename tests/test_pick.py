"""`swarm pick` on real repositories: success, conflict (repo unchanged), dirty target (refused)."""

import pytest

from swarm import cli
from swarm.board.experiments import new_experiment
from swarm.board.store import Board
from swarm.errors import GitError, SwarmError
from swarm.results.pick import pick
from tests.support.gitrepo import commit_on, git, make_repo, repo_state


def experiment(commit, parent, val=0.991, status="keep", description="wider model", **fields):
    return new_experiment(
        agent="gpu3",
        gpu="3",
        device="NVIDIA H100 80GB HBM3",
        profile="h100",
        commit=commit,
        parent=parent,
        description=description,
        status=status,
        val_bpb=val,
        train_sha256="sha-" + commit[:8],
        **fields,
    )


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "repo")


def test_pick_brings_train_py_onto_the_checked_out_branch_as_one_commit(repo):
    # the agent changed two things in two commits; the experiment is the second
    first, _ = commit_on(repo, "swarm/t/gpu3", "main", {"DEPTH = 8": "DEPTH = 12"}, "deeper")
    commit, parent = commit_on(repo, "swarm/t/gpu3", first, {"MATRIX_LR = 0.04": "MATRIX_LR = 0.03"}, "lr")
    record = experiment(commit, parent, description="lower LR [bold]x[/]\x1b[31m")
    before = git(repo, "rev-parse", "main")

    result = pick(repo, record)

    assert result.branch == "main" and result.previous == before and result.worktree == repo
    assert git(repo, "rev-parse", "main") == result.commit
    assert git(repo, "rev-parse", "main^") == before  # exactly one new commit
    text = (repo / "train.py").read_text()  # the main worktree follows its branch
    assert "DEPTH = 12" in text and "MATRIX_LR = 0.03" in text
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    assert git(repo, "diff", "--name-only", before, "main") == "train.py"
    message = git(repo, "log", "-1", "--format=%B", "main")
    assert message.startswith(f"pick {record['id']} (gpu3): lower LR [bold]x[/]\\x1b[31m")
    for line in (
        f"experiment: {record['id']}",
        "val_bpb: 0.991000 (single run)",
        "agent: gpu3",
        f"source commit: {commit}",
    ):
        assert line in message


def test_cherry_pick_mode_applies_only_the_experiments_own_change(repo):
    first, _ = commit_on(repo, "swarm/t/gpu3", "main", {"DEPTH = 8": "DEPTH = 12"}, "deeper")
    commit, parent = commit_on(repo, "swarm/t/gpu3", first, {"MATRIX_LR = 0.04": "MATRIX_LR = 0.03"}, "lr")
    # main moved on meanwhile, in another line of the same file
    commit_on(repo, "main", "main", {"WEIGHT_DECAY = 0.2": "WEIGHT_DECAY = 0.08"}, "wd")
    git(repo, "reset", "-q", "--hard", "main")

    result = pick(repo, experiment(commit, parent), mode="cherry-pick")

    text = git(repo, "show", f"{result.commit}:train.py")
    assert "MATRIX_LR = 0.03" in text and "WEIGHT_DECAY = 0.08" in text
    assert "DEPTH = 8" in text  # the earlier commit of the agent's branch was not brought along
    assert (repo / "train.py").read_text().strip() == text.strip()


def test_conflict_leaves_the_repository_exactly_as_it_was(repo):
    commit, parent = commit_on(repo, "swarm/t/gpu3", "main", {"MATRIX_LR = 0.04": "MATRIX_LR = 0.03"}, "lr")
    commit_on(repo, "main", "main", {"MATRIX_LR = 0.04": "MATRIX_LR = 0.05"}, "other lr")
    git(repo, "reset", "-q", "--hard", "main")
    (repo / "notes.txt").write_text("untracked, must survive\n")
    before = repo_state(repo)

    with pytest.raises(GitError, match="conflict in train.py.*nothing was changed"):
        pick(repo, experiment(commit, parent), mode="cherry-pick")

    assert repo_state(repo) == before


def test_dirty_target_is_refused_and_left_alone(repo):
    commit, parent = commit_on(repo, "swarm/t/gpu3", "main", {"DEPTH = 8": "DEPTH = 12"}, "deeper")
    (repo / "train.py").write_text((repo / "train.py").read_text() + "# my local edit\n")
    before = repo_state(repo)

    with pytest.raises(GitError, match="uncommitted changes \\(train.py\\)"):
        pick(repo, experiment(commit, parent))

    assert repo_state(repo) == before


def test_pick_onto_a_branch_not_checked_out_moves_only_that_branch(repo):
    commit, parent = commit_on(repo, "swarm/t/gpu3", "main", {"DEPTH = 8": "DEPTH = 12"}, "deeper")
    git(repo, "branch", "winners", "main")
    main_before = git(repo, "rev-parse", "main")
    (repo / "train.py").write_text("dirty main worktree does not matter here\n")

    result = pick(repo, experiment(commit, parent), onto="winners")

    assert result.worktree is None
    assert git(repo, "rev-parse", "winners") == result.commit
    assert git(repo, "rev-parse", "main") == main_before
    assert "DEPTH = 12" in git(repo, "show", "winners:train.py")


def test_refuses_what_cannot_be_picked(repo):
    commit, parent = commit_on(repo, "swarm/t/gpu3", "main", {"DEPTH = 8": "DEPTH = 12"}, "deeper")
    with pytest.raises(SwarmError, match="no measured result"):
        pick(repo, experiment(commit, parent, status="crash", val=None))
    with pytest.raises(GitError, match="no branch 'nope'"):
        pick(repo, experiment(commit, parent), onto="nope")
    with pytest.raises(GitError, match="not in this repository"):
        pick(repo, experiment("0" * 40, parent))
    pick(repo, experiment(commit, parent))
    with pytest.raises(SwarmError, match="already has the train.py"):
        pick(repo, experiment(commit, parent))


def test_cli_resolves_a_prefix_from_the_board(repo, monkeypatch, capsys):
    commit, parent = commit_on(repo, "swarm/t/gpu3", "main", {"DEPTH = 8": "DEPTH = 12"}, "deeper")
    record = experiment(commit, parent)
    Board(repo / "board").create().append(record)
    monkeypatch.chdir(repo)
    monkeypatch.delenv("SWARM_BOARD", raising=False)

    assert cli.main(["pick", record["id"][:5]]) == 0
    # a single run is labelled as one (the board's best is a confirmed mean: swarm.results.display.mean_text)
    assert f"picked {record['id']} (val_bpb 0.991000 (single run), gpu3) onto main" in capsys.readouterr().out

    assert cli.main(["pick", "zzzz"]) == 1
    assert "unknown experiment id 'zzzz'" in capsys.readouterr().err
