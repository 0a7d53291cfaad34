"""Every command's edges, as a user types them: a bad path or a missing run is one line on stderr and a
non-zero exit, no traceback, and nothing written (no picture, no table, no report in the checkout)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from swarm.board.run_record import AgentEntry, SwarmRecord, write_run_record
from swarm.board.store import Board
from tests.support.gitrepo import make_repo
from tests.support.shell import outside_environ


def swarm(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "swarm", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=outside_environ(("SWARM_",)),
    )


def one_line_error(proc: subprocess.CompletedProcess, message: str) -> None:
    err = proc.stderr.strip()
    assert proc.returncode != 0 and proc.stdout == "", proc
    assert err.startswith("swarm: ") and "\n" not in err and "Traceback" not in err, err
    assert message in err, err


def tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*") if ".git" not in p.parts}


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "repo")


def with_run(repo: Path) -> Board:
    board = Board(repo / "board").create()
    slot = AgentEntry("cpu0", "sweep", "cpu0", "cpu", str(repo / "worktrees" / "cpu0"), "swarm/t/cpu0")
    write_run_record(board, SwarmRecord("t", "0" * 40, "tiny", (slot,)))
    return board


@pytest.mark.parametrize(
    "args, message",
    [
        (("plot", "missing/progress.png"), "directory missing does not exist"),
        (("export", "missing/results.tsv"), "directory missing does not exist"),
        (("report", "--out", "missing/deeper"), "directory missing does not exist"),
        (("report", "--out", "train.py"), "it is a file, not a directory"),
        (("plot", "."), "it is a directory"),
        (("board", "--top", "-1"), "--top -1"),
    ],
)
def test_bad_output_paths_and_arguments(repo, args, message):
    with_run(repo)
    before = tree(repo)
    one_line_error(swarm(repo, *args), message)
    assert tree(repo) == before


def test_commands_that_need_a_run_say_so_without_writing(repo):
    board = Board(repo / "board").create()  # a board, no run on it
    before = tree(repo)
    one_line_error(swarm(repo, "report"), "no swarm on the board")
    one_line_error(swarm(repo, "note", "lr", "matters"), "no swarm on the board")
    one_line_error(swarm(repo, "resume"), "no swarm to resume on the board")
    assert tree(repo) == before and board.path.read_bytes() == b""


def test_resume_with_no_board_blames_the_missing_run_not_the_gpus(repo):
    one_line_error(swarm(repo, "resume"), "start one with `swarm spawn`")
    assert not (repo / "board").exists()


def test_watch_without_a_terminal_says_it_needs_one(repo):
    with_run(repo)
    proc = swarm(repo, "watch")
    one_line_error(proc, "needs a terminal")


@pytest.mark.parametrize(
    "args, message",
    [
        (("sumbit", "-m", "x"), "no command 'sumbit' (did you mean submit?)"),
        (("frobnicate",), "no command 'frobnicate'; `swarm --help` lists them"),
    ],
)
def test_an_unknown_command_is_one_line_naming_the_closest(repo, args, message):
    """Not argparse's list of every choice, which would name the internal commands `--help` hides."""
    one_line_error(swarm(repo, *args), message)
    assert "runner" not in swarm(repo, *args).stderr
