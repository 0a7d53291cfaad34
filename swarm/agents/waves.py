"""Waves: an agent puts several experiments in flight at once and collects them together.

    swarm submit -m "lr sweep" A B C           # several commits of this worktree, one call
    swarm grid MATRIX_LR=0.02,0.04 DEPTH=4,6   # one commit per combination of the knobs, from HEAD; submitted
    swarm wait ID ID ...                       # every result of the wave

A grid's commits are children of HEAD that change nothing but the named knobs of train.py's hyperparameter
block (swarm.target.hparams, the values the run's profile uses); HEAD and the working tree stay as they are,
so the agent adopts the wave's winner afterwards (`swarm adopt ID`). Each commit is submitted as `swarm
submit` would (answered from the board when its train.py was already measured enough times).
"""

from __future__ import annotations

import ast
import itertools
import tempfile
from pathlib import Path
from typing import Any

from swarm.agents.protocol import AgentContext, deliver, head_commit
from swarm.board.experiments import MAX_DESCRIPTION_CHARS
from swarm.errors import SwarmError
from swarm.repo.git import file_at, git, git_text, rev_parse
from swarm.target.hparams import KNOB_NAME, read_knobs, render, set_knob

MAX_WAVE = 64  # more at once would mostly wait in the queue: a wave this size is already a factorial study


def parse_grid(specs: list[str]) -> list[tuple[str, list[Any]]]:
    """`NAME=a,b,c` arguments as (name, values); values are Python literals (4, 0.02, True, "x")."""
    if not specs:
        raise SwarmError("swarm grid: give at least one KNOB=a,b,c")
    grid = []
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not KNOB_NAME.match(name):
            raise SwarmError(f"swarm grid: {spec!r} is not KNOB=a,b,c (an UPPER_CASE name of train.py)")
        parsed = [_literal(name, v.strip()) for v in values.split(",") if v.strip()]
        if not parsed:
            raise SwarmError(f"swarm grid: {name} has no values")
        if any(existing == name for existing, _ in grid):
            raise SwarmError(f"swarm grid: {name} named twice")
        grid.append((name, list(dict.fromkeys(parsed))))
    return grid


def _literal(name: str, text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise SwarmError(f"swarm grid: {name}={text} is not a number or another Python literal") from None


def combinations(grid: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the first knob varying slowest."""
    names = [name for name, _ in grid]
    combos = [dict(zip(names, values, strict=True)) for values in itertools.product(*(v for _, v in grid))]
    if len(combos) > MAX_WAVE:
        raise SwarmError(f"swarm grid: {len(combos)} combinations; at most {MAX_WAVE} in one wave")
    return combos


def grid_commits(worktree: Path, profile: str, grid: list[tuple[str, list[Any]]]) -> list[tuple[str, str]]:
    """(commit, subject) per combination: a child of HEAD whose train.py differs only in those knobs.
    Written with a private index, so HEAD, the index and the working tree of the agent stay untouched."""
    head = head_commit(worktree)
    source = (file_at(worktree, head, "train.py") or b"").decode()
    knobs = read_knobs(source, profile)
    for name, _ in grid:
        if name not in knobs:
            raise SwarmError(
                f"swarm grid: train.py has no hyperparameter {name} (see its hyperparameter block)"
            )
    made = []
    for combo in combinations(grid):
        changed = source
        for name, value in combo.items():
            changed = set_knob(changed, profile, name, value)
        subject = " ".join(f"{n}={render(v, knobs[n].text)}" for n, v in combo.items())
        made.append((_commit_child(worktree, head, changed, f"grid: {subject}"), subject))
    return made


def _commit_child(worktree: Path, head: str, train: str, message: str) -> str:
    blob = git(worktree, "hash-object", "-w", "--stdin", input=train.encode()).decode().strip()
    with tempfile.TemporaryDirectory(prefix="swarm-grid-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(worktree, "read-tree", head, env=env)
        git(worktree, "update-index", "--cacheinfo", f"100644,{blob},train.py", env=env)
        tree = git(worktree, "write-tree", env=env).decode().strip()
    return git(worktree, "commit-tree", tree, "-p", head, "-m", message).decode().strip()


def submit_commits(
    ctx: AgentContext, commits: list[tuple[str, str | None]], description: str, rerun: bool = False
) -> list[dict[str, Any]]:
    """Submit each (commit, subject) as an experiment; its description is `description`, followed by the
    subject when the wave has several. Returns the records, in order."""
    if len(commits) > MAX_WAVE:
        raise SwarmError(f"{len(commits)} commits in one wave; at most {MAX_WAVE}")
    records = []
    for commit, subject in commits:
        text = f"{description}: {subject}" if subject and len(commits) > 1 else description
        if len(text) > MAX_DESCRIPTION_CHARS:
            raise SwarmError(f"the description has {len(text)} characters; at most {MAX_DESCRIPTION_CHARS}")
        request = {"op": "submit", "commit": commit, "description": text, "rerun": rerun}
        records.append(deliver(ctx, request))
    return records


def resolve_commits(worktree: Path, refs: list[str]) -> list[tuple[str, str]]:
    """The full shas and subjects of commits named in the agent's worktree (HEAD when none)."""
    if not refs:
        head = head_commit(worktree)
        return [(head, git_text(worktree, "log", "-1", "--format=%s", head))]
    resolved = []
    for ref in refs:
        try:
            sha = rev_parse(worktree, ref)
        except SwarmError:
            raise SwarmError(f"no commit {ref!r} in this worktree") from None
        resolved.append((sha, git_text(worktree, "log", "-1", "--format=%s", sha)))
    return resolved
