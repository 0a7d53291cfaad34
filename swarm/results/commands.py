"""Handlers of the read-only board commands: best, board, export.

Each takes the argparse namespace and returns an exit code; user mistakes raise SwarmError. Displaying
commands print JSON with the board's field names under --json. `best` and `board` print the answer saved
for the board as it is now when there is one (swarm.results.answers): this module imports the board's
state only when it has to compute an answer.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from swarm.errors import SwarmError
from swarm.results import answers
from swarm.results.output import output_file

# ---------------------------------------------------------------------------------------------------------
# Queries


def cmd_best(args) -> int:
    code = _answer("best", json=args.json)
    if not args.json:
        _print_holdout()
    return code


def _print_holdout() -> None:
    """The bests' holdout values and selection gaps, for the human: read from board/private/ after the
    saved answer (never part of it: agents read saved answers), so inside an agent's sandbox, where that
    directory is covered, nothing is printed."""
    from swarm.board.holdout import read_holdout

    named = os.environ.get("SWARM_BOARD")
    if named:
        board_dir = Path(named)
    else:
        from swarm.repo.paths import run_paths

        board_dir = run_paths().board
    if not read_holdout(board_dir):
        return
    from swarm.board.opening import open_board
    from swarm.results.holdout import baseline_sha, best_holdout_lines

    repo, board, state = open_board()
    lines = best_holdout_lines(state, board.directory, baseline_sha(repo, state))
    sys.stdout.write("".join(line + "\n" for line in lines))


def cmd_board(args) -> int:
    if args.top < 0:
        raise SwarmError(f"--top {args.top}: give a number of rows, 0 or more")
    return _answer("board", top=args.top, agent=args.agent, json=args.json)


def _answer(command: str, **options) -> int:
    """Print the answer to a query: the saved one when the board has not changed since it was saved, else
    computed from the board's state (and saved for the next process)."""
    query = answers.query_key(command, options)
    named = os.environ.get("SWARM_BOARD")
    # an agent's environment names its board: a saved answer is found without looking up the repository
    text = answers.lookup(Path(named), query) if named else None
    if text is None:
        from swarm.repo.paths import run_paths  # runs git: not needed for an agent's saved answer

        paths = run_paths()
        context = answers.context_key(paths.repo)
        text = None if named else answers.lookup(paths.board, query, context)
        if text is None:
            from swarm.results.queries import compute  # restores or folds the board: only on a miss

            text = compute(command, options, context)
    sys.stdout.write(text)
    return 0


def cmd_export(args) -> int:
    from swarm.board.opening import open_board
    from swarm.results.export import results_tsv

    target = None if args.file == "-" else output_file(args.file)  # before reading the board
    _, _, state = open_board()
    text = results_tsv(list(state.experiments.values()))
    if args.file == "-":
        sys.stdout.write(text)
    else:
        target.write_text(text)
        print(f"wrote {len(text.splitlines()) - 1} results to {args.file}", file=sys.stderr)
    return 0
