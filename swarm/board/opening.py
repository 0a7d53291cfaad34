"""A command's board and its state: the fold (swarm.board.fold) restored from the board's checkpoint when it
has a valid one (swarm.board.checkpoint). The one place besides the checkpoint that knows both."""

from __future__ import annotations

from pathlib import Path

from swarm.board.checkpoint import open_state
from swarm.board.fold import BoardState
from swarm.board.noise import NoiseSettings
from swarm.board.store import Board
from swarm.config import load_section
from swarm.repo.paths import run_paths


def open_board(cwd: Path | None = None, noise: NoiseSettings | None = None) -> tuple[Path, Board, BoardState]:
    """The repository, board and freshly read state for a command run anywhere in the repository, folded
    under the repository's [noise] settings unless `noise` is given."""
    paths = run_paths(cwd)
    board = Board(paths.board).require()
    state = open_state(board, noise or load_section(paths.repo, "noise", NoiseSettings))
    return paths.repo, board, state
