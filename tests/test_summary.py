"""swarm.target.summary: reading the block train.py prints, including the ways a run's output goes wrong."""

import math

from swarm.target.summary import SUMMARY_KEYS, parse_summary

BLOCK = """step 00953 (100.0%) loss 2.9 ...
---
val_bpb:          0.997900
training_seconds: 300.1
total_seconds:    325.9
startup_seconds:  9.6
compile_seconds:  41.3
peak_vram_mb:     45060.2
mfu_percent:      39.80
total_tokens_M:   499.6
num_steps:        953
num_params_M:     50.3
depth:            8
device:           NVIDIA H100 80GB HBM3
profile:          h100
"""


def test_parses_every_key_with_its_type():
    summary = parse_summary(BLOCK)
    assert list(summary) == list(SUMMARY_KEYS)
    assert summary["val_bpb"] == 0.9979 and summary["num_steps"] == 953 and summary["depth"] == 8
    assert summary["device"] == "NVIDIA H100 80GB HBM3" and summary["profile"] == "h100"


def test_no_block_is_empty_and_the_last_block_wins():
    assert parse_summary("Traceback (most recent call last):\n  boom\n") == {}
    twice = "---\nval_bpb: 0.5\n" + BLOCK
    assert parse_summary(twice)["val_bpb"] == 0.9979


def test_torn_or_odd_values_stay_text_and_nan_stays_a_float():
    summary = parse_summary("---\nval_bpb:          0.99x\nnum_steps: 12.5\nextra_key: 3\nnot a line\n")
    assert summary == {"val_bpb": "0.99x", "num_steps": "12.5", "extra_key": "3"}
    assert math.isnan(parse_summary("---\nval_bpb: nan\n")["val_bpb"])
