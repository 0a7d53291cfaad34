"""Saved answers of `swarm best` / `swarm board` (swarm.results.answers): a hit prints exactly what computing
the answer prints, without importing the board's state; an answer of another board, another length, other
code or another swarm.toml, or one that is torn or forged, is never printed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from swarm.board import envelope
from swarm.board.fold import BoardState
from swarm.board.keys import load_key
from swarm.board.signing import sign_file
from swarm.board.store import Board
from swarm.cli import build_parser
from swarm.results import answers
from swarm.results.queries import common_answers
from swarm.testing.synthetic import synthetic_run, write_board
from tests.support.swarm_run import TAG

QUERIES = (
    ["best"],
    ["best", "--json"],
    ["board"],
    ["board", "--top", "3", "--json"],
    ["board", "--agent", "gpu1"],
)


def swarm(run, *argv: str) -> tuple[str, bool]:
    """`swarm ARGV` in a new process in the run's repository: (stdout, whether it imported the board state)."""
    probe = (
        "import sys; from swarm.cli import main; code = main(sys.argv[1:]); "
        "sys.stdout.flush(); print('STATE' if 'swarm.board.fold' in sys.modules else 'NO STATE', file=sys.stderr); "
        "sys.exit(code)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWARM_")}
    done = subprocess.run(
        [sys.executable, "-c", probe, *argv],
        cwd=run.repo,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout, done.stderr.strip().endswith("NO STATE") is False


@pytest.fixture
def run(make_swarm_run):
    """A run whose board holds a few hundred synthetic experiments of 4 agents, signed as spawn makes it."""
    run = make_swarm_run(agents=("gpu0", "gpu1"), signed=True)
    records = list(synthetic_run(agents=4, experiments=120, seed=3, tag=TAG))
    write_board(run.board.directory, records)
    return run


def test_a_saved_answer_is_printed_without_the_board_state_and_equals_the_computed_one(run):
    computed = {}
    for argv in QUERIES:
        out, imported = swarm(run, *argv)
        assert imported  # nothing saved yet: computed from the board, and saved
        computed[tuple(argv)] = out
    assert answers.answers_path(run.board.directory).exists()
    for argv in QUERIES:
        out, imported = swarm(run, *argv)
        assert not imported and out == computed[tuple(argv)]
    assert json.loads(computed[("best", "--json")])[0]["n"] >= 1


def test_one_more_record_and_the_saved_answer_is_not_used(run):
    before, _ = swarm(run, "board", "--top", "3")
    run.board.append({"type": "note", "agent": "gpu0", "text": "the newest note", "ts": 2e9})
    after, imported = swarm(run, "board", "--top", "3")
    assert imported and "the newest note" in after and "the newest note" not in before
    assert swarm(run, "board", "--top", "3") == (after, False)


def test_another_swarm_toml_or_time_zone_is_another_context(run, monkeypatch):
    swarm(run, "best")
    assert swarm(run, "best")[1] is False
    with open(run.repo / "swarm.toml", "a") as f:
        f.write("\n[noise]\nsigmas = 3.0\n")  # other bands: the saved answer no longer holds
    assert swarm(run, "best")[1] is True
    assert swarm(run, "best")[1] is False
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # notes show local times
    assert swarm(run, "best")[1] is True


def test_a_board_replaced_by_another_of_the_same_length_is_caught(run):
    out, _ = swarm(run, "best")
    path = run.board.path
    data = path.read_bytes()
    replaced = path.with_name("other.jsonl")
    replaced.write_bytes(data)  # same bytes, another file: a board moved into place is not trusted
    os.replace(replaced, path)
    assert swarm(run, "best") == (out, True)


@pytest.mark.parametrize("damage", ["truncated", "forged answer", "no mac", "garbage", "old format"])
def test_a_torn_or_forged_answers_file_is_never_printed(run, damage):
    out, _ = swarm(run, "best")
    path = answers.answers_path(run.board.directory)
    header, body = envelope.open_envelope(answers.KIND, path.read_bytes())
    saved = json.loads(body)
    query = answers.query_key("best", {"json": False})
    saved[query] = "val_bpb 0.000001 (n=99, verified)\n"
    forged = json.dumps(saved).encode()
    fields = {k: v for k, v in header.items() if k not in ("body_bytes", "body_crc32")}
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    elif damage == "forged answer":  # an agent without the key rewrites the text: the MAC no longer holds
        path.write_bytes(envelope.seal(answers.KIND, fields, forged, key=None))
    elif damage == "no mac":
        del fields["mac"]
        path.write_bytes(envelope.seal(answers.KIND, fields, forged, key=None))
    elif damage == "old format":  # as the code before the envelope wrote it, with a MAC made with the key
        del fields["mac"]
        fields["mac"] = sign_file(
            load_key(run.board.directory), json.dumps(fields, sort_keys=True).encode(), forged
        )
        path.write_bytes(b"swarm board answers\n" + json.dumps(fields).encode() + b"\n" + forged)
    else:
        path.write_bytes(b"\x00" * 64)
    printed, imported = swarm(run, "best")
    assert imported and printed == out


def test_the_coordinators_keeper_saves_what_agents_ask_for(run):
    state = BoardState(Board(run.board.directory))
    state.refresh()
    keeper = answers.AnswerKeeper(state, answers.context_key(run.repo), common_answers)
    assert keeper.tick() and not keeper.tick()  # nothing new: nothing written
    for command, options in answers.COMMON_QUERIES:
        argv = [command] + (["--json"] if options["json"] else [])
        out, imported = swarm(run, *argv)
        assert not imported
        answers.answers_path(run.board.directory).rename(run.board.directory / "saved")
        assert swarm(run, *argv) == (out, True)  # what computing it prints
        (run.board.directory / "saved").rename(answers.answers_path(run.board.directory))
    run.board.append({"type": "note", "agent": "gpu0", "text": "later", "ts": 2e9})
    state.refresh()
    assert keeper.tick()
    assert "later" in swarm(run, "board")[0]


def test_the_common_queries_are_the_command_lines_defaults():
    parser = build_parser()
    for command, options in answers.COMMON_QUERIES:
        args = parser.parse_args([command] + (["--json"] if options["json"] else []))
        assert {name: getattr(args, name) for name in options} == options


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
def test_a_process_that_may_not_write_the_board_still_answers(run):
    """An agent's sandbox mounts the board read-only: its miss computes and prints, and saves nothing."""
    expected, _ = swarm(run, "best")
    answers.answers_path(run.board.directory).unlink()
    board = str(run.board.directory)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWARM_")}
    done = subprocess.run(
        ["bwrap", "--dev-bind", "/", "/", "--ro-bind", board, board, sys.executable, "-m", "swarm", "best"],
        cwd=run.repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected and not answers.answers_path(run.board.directory).exists()


def test_the_answers_read_the_config_file_the_settings_come_from():
    from swarm.config import CONFIG_FILE

    assert answers.CONFIG_FILE == CONFIG_FILE  # kept apart only because swarm.config is slow to import
