"""The lineage of an experiment: the chain of experiments whose commits it was built on, back to the baseline.

An experiment records the `parent` of its commit. The experiment that first measured that parent commit is
the step before it: a change its agent kept, or one it adopted from another agent (`swarm adopt` moves the
agent's branch to that commit, so the chain crosses agents there). Following parents from the best back to
the run's base tells how the best came about: baseline -> batch 2048 -> LR 0.04 -> adopted by gpu5 -> ...

When an agent committed more than once before submitting, the parent is a commit no experiment measured; with
the repository at hand, its first-parent ancestry is searched for the nearest one that was measured. Each step
carries the mean of its content (all runs of its train.py in its group) and the change from the step before.
`swarm report` prints the best's lineage; `swarm watch` shows the selected experiment's and jumps along it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarm.board.experiments import group_of, is_measured
from swarm.board.fold import BoardState
from swarm.repo.git import git_or_none

MAX_ANCESTRY = 64  # commits of git ancestry searched for a measured one, per step


@dataclass(frozen=True)
class LineageStep:
    record: dict[str, Any]  # the experiment that first measured this step's commit
    mean: float | None  # the mean of its content in its group (None: no measured result)
    delta: float | None  # mean minus the previous step's mean (None for the first step or without a mean)
    adopted_from: str | None  # the agent whose commit this step's agent adopted on the way here, if any


class CommitIndex:
    """commit -> the experiment that first measured it (verification reruns of a commit left out), kept up to
    date incrementally: `update()` looks only at the experiments added since its last call."""

    def __init__(self, state: BoardState):
        self.state = state
        self.by_commit: dict[str, dict[str, Any]] = {}
        self._seen = 0

    def update(self) -> CommitIndex:
        experiments = self.state.experiments
        if len(experiments) != self._seen:
            # ids keep their first-appearance order, so the new ones are at the end
            for eid in list(experiments)[self._seen :]:
                self._add(experiments[eid])
            self._seen = len(experiments)
        return self

    def _add(self, record: dict[str, Any]) -> None:
        commit = record.get("commit")
        if not commit or record.get("verify_of"):
            return
        known = self.by_commit.get(commit)
        if known is None or (not is_measured(known) and is_measured(self.state.experiments[record["id"]])):
            self.by_commit[commit] = record

    def get(self, commit: str | None) -> dict[str, Any] | None:
        found = self.by_commit.get(commit) if commit else None
        return self.state.experiments.get(found["id"], found) if found else None  # its latest record


def _measured_ancestor(index: CommitIndex, commit: str, repo: Path | None) -> dict[str, Any] | None:
    found = index.get(commit)
    if found is not None or repo is None:
        return found
    out = git_or_none(repo, "rev-list", "--first-parent", f"--max-count={MAX_ANCESTRY}", commit)
    for ancestor in (out or b"").decode().split()[1:]:
        found = index.get(ancestor)
        if found is not None:
            return found
    return None


def lineage(
    state: BoardState, record: dict[str, Any], repo: Path | None = None, index: CommitIndex | None = None
) -> list[LineageStep]:
    """The steps that led to `record`, oldest first, ending with `record` itself."""
    index = (index or CommitIndex(state)).update()
    base = record.get("base") or (state.run.base if state.run else None)
    chain = [record]
    seen = {record.get("commit")}
    while True:
        parent = chain[-1].get("parent")
        if not parent or parent == base or parent in seen:
            break
        previous = _measured_ancestor(index, parent, repo)
        if previous is None or previous.get("commit") in seen:
            break
        seen.add(previous.get("commit"))
        chain.append(previous)
    chain.reverse()
    steps: list[LineageStep] = []
    for step in chain:
        content = state.content(group_of(step), step.get("train_sha256") or "")
        mean = content.mean if content else None
        before = steps[-1] if steps else None
        delta = mean - before.mean if before and before.mean is not None and mean is not None else None
        adopted = None
        if before and before.record.get("agent") != step.get("agent"):
            adopted = before.record.get("agent")
        steps.append(LineageStep(step, mean, delta, adopted))
    return steps
