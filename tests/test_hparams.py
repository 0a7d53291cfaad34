"""The sweep agent's view of train.py: knobs read with ast per profile, edited on the line that counts."""

from __future__ import annotations

import pytest

from swarm.agents.sweep.proposals import PRIORITY, Change, Planner, Proposal, moves, rotation
from swarm.errors import SwarmError
from swarm.target.hparams import read_knobs, render, set_knob

TRAIN = """\
import os
PROFILE = os.environ.get("AUTORESEARCH_PROFILE", "h100")

# ---------------------------------------------------------------------------
# Hyperparameters
DEPTH = 8                   # transformer layers
ASPECT_RATIO = 64           # model_dim = DEPTH * ASPECT_RATIO
TOTAL_BATCH_SIZE = 2**19    # tokens per optimizer step
MATRIX_LR = 0.04            # Muon lr — matrices (ünïcode comment)
ADAM_BETAS = (0.8, 0.95)    # Adam betas
WINDOW_PATTERN = "SSSL"     # S: short window, L: long
WARMDOWN_RATIO = 0.5        # fraction of the budget spent decaying
QK_NORM = True
DEVICE_BATCH_SIZE = 128     # per-device micro batch
if PROFILE == "tiny":
    DEPTH = 2
    TOTAL_BATCH_SIZE = 2**12
    DEVICE_BATCH_SIZE = 8

def model():
    LOCAL = 3
    return DEPTH * LOCAL
"""


def test_knobs_take_the_profile_override_when_there_is_one():
    h100 = read_knobs(TRAIN, "h100")
    tiny = read_knobs(TRAIN, "tiny")
    assert list(h100) == [
        "DEPTH", "ASPECT_RATIO", "TOTAL_BATCH_SIZE", "MATRIX_LR", "ADAM_BETAS", "WINDOW_PATTERN",
        "WARMDOWN_RATIO", "QK_NORM", "DEVICE_BATCH_SIZE",
    ]  # fmt: skip
    assert h100["TOTAL_BATCH_SIZE"].value == 2**19 and tiny["TOTAL_BATCH_SIZE"].value == 2**12
    assert tiny["DEPTH"].overridden and not tiny["MATRIX_LR"].overridden
    assert tiny["ADAM_BETAS"].value == (0.8, 0.95) and tiny["WINDOW_PATTERN"].value == "SSSL"


def test_an_edit_changes_only_the_value_on_the_line_the_profile_uses():
    edited = set_knob(TRAIN, "tiny", "DEPTH", 3)
    assert "DEPTH = 8                   # transformer layers" in edited
    assert "    DEPTH = 3\n" in edited
    edited = set_knob(edited, "tiny", "MATRIX_LR", 0.028)
    assert "MATRIX_LR = 0.028            # Muon lr — matrices (ünïcode comment)" in edited
    edited = set_knob(edited, "h100", "TOTAL_BATCH_SIZE", 2**18)
    assert "TOTAL_BATCH_SIZE = 2**18    # tokens per optimizer step" in edited
    edited = set_knob(edited, "tiny", "ADAM_BETAS", (0.7, 0.95))
    assert "ADAM_BETAS = (0.7, 0.95)    # Adam betas" in edited
    knobs = read_knobs(edited, "tiny")
    assert (knobs["DEPTH"].value, knobs["MATRIX_LR"].value, knobs["ADAM_BETAS"].value) == (
        3,
        0.028,
        (0.7, 0.95),
    )
    assert read_knobs(edited, "h100")["DEPTH"].value == 8
    assert len(edited.splitlines()) == len(TRAIN.splitlines())
    with pytest.raises(SwarmError, match="no hyperparameter LOCAL"):
        set_knob(TRAIN, "tiny", "LOCAL", 1)


def test_render_keeps_the_style_of_the_replaced_text():
    assert render(2**17, "2**19") == "2**17" and render(96, "64") == "96"
    assert render(0.0285714, "0.04") == "0.02857" and render(True) == "True" and render("SL") == '"SL"'


def test_moves_follow_the_published_knob_ranges():
    assert moves("TOTAL_BATCH_SIZE", 2**19) == [2**18, 2**20]
    assert moves("DEPTH", 8) == [7, 9]
    assert moves("ASPECT_RATIO", 64) == [48, 80]
    assert moves("MATRIX_LR", 0.04) == pytest.approx([0.028, 0.04 / 0.7])
    assert moves("WARMDOWN_RATIO", 0.5) == [0.4, 0.6]
    assert moves("ADAM_BETAS", (0.8, 0.95))[0] == (0.7, 0.95)
    assert moves("WINDOW_PATTERN", "SSSL") == ["L", "SL", "SSL"]
    assert moves("DEVICE_BATCH_SIZE", 128) == [] and moves("QK_NORM", True) == [False]


def test_planner_rotates_per_agent_pushes_kept_moves_and_combines_winners():
    names = list(read_knobs(TRAIN, "tiny"))
    assert rotation(names, "gpu0") != rotation(names, "gpu1")
    # The first agents start on different knobs, spread over the list rather than side by side.
    starts = [rotation(names, f"gpu{k}")[0] for k in range(4)]
    assert len(set(starts)) == 4
    assert starts[0] == next(n for n in PRIORITY if n in names)  # gpu0 takes the knob that mattered most
    assert sorted(rotation(names, "gpu0")) == sorted(names)
    config = {"MATRIX_LR": 0.04, "DEPTH": 2}
    planner = Planner("cpu0")
    stream = planner.proposals(config)
    first = next(stream)
    assert len(first.changes) == 1
    config.update(first.apply(config))  # it was kept: the best moved
    planner.record(first, gain=0.01, kept=True)
    push = next(stream)
    assert push.kind == "push" and push.changes[0].name == first.changes[0].name
    planner.record(Proposal((Change("DEPTH", 2, 3),)), gain=0.002, kept=False)  # helped, within the noise
    planner.record(Proposal((Change("WARMDOWN_RATIO", 0.5, 0.6),)), gain=0.001, kept=False)
    config["WARMDOWN_RATIO"] = 0.5
    seen = [next(stream) for _ in range(12)]
    waves = [p for p in seen if p.kind == "wave"]
    # changes that helped but are not in the best are retried on top of it, together
    assert [str(c) for c in waves[0].changes] == ["DEPTH 2 -> 3", "WARMDOWN_RATIO 0.5 -> 0.6"]
