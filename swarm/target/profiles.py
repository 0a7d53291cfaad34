"""Read prepare.py's PROFILES literal (sequence length, vocabulary, time budget, eval tokens) without importing it.

The runner must never execute an agent's code to learn the rules it enforces, and importing prepare.py
would pull in torch; the contract is that PROFILES is a plain literal, so `ast.literal_eval` reads it.
"""

from __future__ import annotations

import ast
from typing import Any

from swarm.errors import SwarmError

PROFILE_KEYS = ("max_seq_len", "vocab_size", "time_budget", "eval_tokens")
# Read when present: a prepare.py from before the evaluator fixed its batch size has none (the evaluator
# then takes the program's own batch size).
OPTIONAL_KEYS = ("eval_batch_size",)


def read_profiles(source: str | bytes, where: str = "prepare.py") -> dict[str, dict[str, Any]]:
    """The module-level `PROFILES = {...}` literal of a prepare.py source."""
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise SwarmError(f"{where}: cannot parse: {e.msg} (line {e.lineno})") from None
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == "PROFILES" for t in targets) and node.value is not None:
            try:
                profiles = ast.literal_eval(node.value)
            except ValueError:
                raise SwarmError(f"{where}: PROFILES is not a plain literal") from None
            if not isinstance(profiles, dict):
                raise SwarmError(f"{where}: PROFILES is not a dict")
            return profiles
    raise SwarmError(f"{where}: no module-level PROFILES literal")


def time_budget(source: str | bytes, profile: str, where: str = "prepare.py") -> float:
    """The training time budget (seconds) of a profile."""
    profiles = read_profiles(source, where)
    if profile not in profiles:
        raise SwarmError(f"{where}: no profile {profile!r} in PROFILES (known: {', '.join(profiles)})")
    budget = profiles[profile].get("time_budget")
    if not isinstance(budget, int | float) or budget <= 0:
        raise SwarmError(f"{where}: PROFILES[{profile!r}]['time_budget'] is not a positive number")
    return float(budget)


def profile_constants(source: str | bytes, profile: str, where: str = "prepare.py") -> dict[str, int]:
    """max_seq_len, vocab_size, time_budget and eval_tokens of a profile, and eval_batch_size where it has
    one, each a positive integer (what the evaluator needs to know of the profile)."""
    profiles = read_profiles(source, where)
    if profile not in profiles:
        raise SwarmError(f"{where}: no profile {profile!r} in PROFILES (known: {', '.join(profiles)})")
    constants = {}
    for key in PROFILE_KEYS + OPTIONAL_KEYS:
        value = profiles[profile].get(key)
        if key in OPTIONAL_KEYS and value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise SwarmError(f"{where}: PROFILES[{profile!r}][{key!r}] is not a positive integer")
        constants[key] = value
    # Optional: the holdout the evaluator also measures (prepare.py's of layout 3 has it; 0 means none).
    holdout = profiles[profile].get("holdout_tokens", 0)
    if not isinstance(holdout, int) or isinstance(holdout, bool) or holdout < 0:
        raise SwarmError(f"{where}: PROFILES[{profile!r}]['holdout_tokens'] is not a non-negative integer")
    constants["holdout_tokens"] = holdout
    return constants
