"""`swarm report` and the lineage it tells, on a run with a known lineage in a real git repository."""

from __future__ import annotations

import re

import pytest

from swarm.board.fold import BoardState
from swarm.board.noise import NoiseSettings
from swarm.results.display import escape_markdown
from swarm.results.lineage import lineage
from swarm.results.report import idea_of, write_report
from swarm.target.train_diff import train_diff
from tests.support.gitrepo import TRAIN
from tests.support.lineage import INJECTION, lineage_run


@pytest.fixture
def run(tmp_path):
    return lineage_run(tmp_path)


def folded(run) -> BoardState:
    """The lineage board's results were each decided by one run (the `single` rule): fold it so."""
    state = BoardState(run.board, NoiseSettings(rule="single"))
    state.refresh()
    return state


def test_lineage_follows_keeps_and_adopts_across_agents(run):
    state = folded(run)
    best = state.bests()[next(iter(state.groups))]
    assert best.experiment["id"] == run.ids["depth"] and best.n == 2  # the rerun is a repeat
    steps = lineage(state, best.experiment, run.repo)
    assert [s.record["id"] for s in steps] == [run.ids["lr"], run.ids["code"], run.ids["depth"]]
    assert [s.record["agent"] for s in steps] == ["gpu0", "gpu1", "gpu1"]
    assert [s.adopted_from for s in steps] == [None, "gpu0", None]
    assert steps[0].delta is None
    assert steps[1].delta == pytest.approx(0.950 - 0.980)
    assert steps[2].delta == pytest.approx((0.940 + 0.942) / 2 - 0.950)
    # a discarded try's lineage ends in it, through the step it was built on
    wd = state.experiments[run.ids["wd"]]
    assert [s.record["id"] for s in lineage(state, wd, run.repo)] == [run.ids["lr"], run.ids["wd"]]


def test_lineage_finds_the_measured_ancestor_of_an_unmeasured_parent(run, tmp_path):
    """An agent that committed twice before submitting: its parent was never measured; git ancestry is."""
    from tests.support.gitrepo import commit_on
    from tests.support.watch import experiment, finish

    middle, _ = commit_on(run.repo, "two", run.commits["code"], {"DEPTH = 8": "DEPTH = 9"}, "wip")
    top, parent = commit_on(run.repo, "two", middle, {"MATRIX_LR = 0.03": "MATRIX_LR = 0.02"}, "lr again")
    record = finish(experiment("gpu1", commit=top, parent=parent, base=run.base), 0.97, status="discard")
    run.board.append(record)
    state = folded(run)
    steps = lineage(state, state.experiments[record["id"]], run.repo)
    assert [s.record["id"] for s in steps] == [run.ids["lr"], run.ids["code"], record["id"]]
    assert [s.record["id"] for s in lineage(state, state.experiments[record["id"]])] == [record["id"]]


def test_train_diff_names_knobs_and_shows_other_lines():
    new = TRAIN.replace("MATRIX_LR = 0.04", "MATRIX_LR = 0.03").replace(
        "print('train')", "x = 1\nprint('train')"
    )
    diff = train_diff(TRAIN, new, "h100")
    assert [str(k) for k in diff.knobs] == ["MATRIX_LR 0.04 -> 0.03"]
    assert diff.lines == ("+x = 1",) and (diff.added, diff.removed) == (1, 0)
    broken = train_diff(TRAIN, "def (:\n", "h100")  # does not parse: lines only
    assert broken.knobs == () and broken.removed > 0


def test_idea_of_groups_by_knob_or_words():
    knobs = {"MATRIX_LR", "DEPTH", "TOTAL_BATCH_SIZE"}
    assert idea_of("MATRIX_LR 0.04 -> 0.05", knobs) == "MATRIX_LR"
    assert idea_of("sweep one-factor: TOTAL_BATCH_SIZE 4096 -> 2048, DEPTH 4 -> 6", knobs) == (
        "DEPTH + TOTAL_BATCH_SIZE"
    )
    assert idea_of("GELU instead of ReLU^2 (v2)", knobs) == idea_of("GELU instead of ReLU^2 (v3)", knobs)
    assert idea_of("sweep: baseline (train.py unchanged)", knobs) == "baseline"


def test_markdown_escape_keeps_agent_text_literal():
    out = escape_markdown(INJECTION + " www.evil.example me@evil.example\nline")
    for raw in ("**", "<script", "](", "http://", "www.", "@evil", "\n"):
        assert raw not in out, raw
    assert not re.search(r"(?<!\\)[|*_\[\]<>`]", out)  # each character with a meaning escaped
    assert "\\*\\*bold\\*\\*" in out and "&lt;script&gt;" in out and "\\|" in out


def test_report_tells_the_story(run, tmp_path):
    state = folded(run)
    path = write_report(state, tmp_path / "out", run.repo, gpu_price=2.0)
    text = path.read_text()
    assert (tmp_path / "out" / "progress.png").read_bytes().startswith(b"\x89PNG")
    assert "![val_bpb of every experiment and the running best](progress.png)" in text
    # headline: the baseline (both baseline runs) -> the best's mean of 2 runs
    headline = next(line for line in text.splitlines() if line.startswith("| NVIDIA"))
    assert "| 1.001000 |" in headline and "0.941000 ± 0.001414 (n=2)" in headline and "-0.060000" in headline
    # the lineage: each step with its agent, change and what it did to train.py
    lineage_rows = text.split("## How the best came about")[1].split("##")[0].splitlines()
    rows = [r for r in lineage_rows if r.startswith("| ") and r[2].isdigit()]
    assert len(rows) == 4 and rows[0].startswith("| 0 | base") and "| 1.001000 |" in rows[0]
    assert (
        run.ids["lr"] in rows[1] and "MATRIX\\_LR 0\\.04 \\-&gt; 0\\.03" in rows[1] and "-0.021000" in rows[1]
    )
    assert "gpu1 (adopted from gpu0)" in rows[2] and "x = compute\\_loss\\(model\\)" in rows[2]
    assert "DEPTH 8 \\-&gt; 10" in rows[3] and "0.941000" in rows[3]
    # what did not work: WEIGHT_DECAY (one discard at +0.01 against lr, one crash), and DEPTH 8 -> 12 (a
    # discard, though DEPTH 8 -> 10 was kept: the section lists what was discarded, not knobs never kept)
    section = text.split("## What did not work")[1].split("##")[0]
    wd = next(line for line in section.splitlines() if line.startswith("| WEIGHT\\_DECAY"))
    assert "| 2 | 1 | +0.010000 | +0.010000 |" in wd
    depth = next(line for line in section.splitlines() if line.startswith("| DEPTH"))
    assert "| 1 | 0 | +0.010000 | +0.010000 |" in depth
    assert "**gpu1**" in text and "depth helps \\*\\*bold\\*\\*" in text  # the note, escaped
    agents = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| gpu")}
    assert "| 1,200 | $0.25 |" in agents["| gpu0"] and "| 3,400 | $0.75 |" in agents["| gpu1"]
    assert "3 kept improvement(s)" in text and "$2.00 per GPU-hour" in text
    assert f"swarm pick {run.ids['depth']}" in text and f"git show {run.commits['depth']}:train.py" in text
    # the agent's Markdown and HTML show as text, never as markup
    for raw in ("<script", "**bold**", "](http", "http://"):
        assert raw not in text, raw


def test_report_without_the_repository_still_tells_the_board(run, tmp_path):
    path = write_report(folded(run), tmp_path / "out", repo=None, plot=False)
    text = path.read_text()
    assert "(diff unavailable" in text and "## How the best came about" in text
    assert not (tmp_path / "out" / "progress.png").exists()
