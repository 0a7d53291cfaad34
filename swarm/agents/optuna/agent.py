"""`swarm agent optuna`: a built-in agent with no LLM that searches train.py's hyperparameters with Optuna.

It works like the sweep agent (whose plumbing it reuses), but an Optuna study proposes (TPE by default,
`[optuna] sampler`) in the space of swarm.agents.optuna.space, and is told the runner's measured val_bpb
from the board, never a number the agent computed. All optuna agents of a run share one study per device
class and profile (Optuna's file journal under board/optuna/), so none proposes what another already
tried; the study sees only its agents' trials. Restarted, an agent finds its unfinished trials in the study
and sees them through; its branch always goes back to the run's base, so the space never changes under the
study. Long story: docs/agents.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState

from swarm.agents.optuna.space import search_space, to_knobs, to_params
from swarm.agents.sweep.agent import InFlight, SweepAgent
from swarm.agents.sweep.proposals import Change, Proposal
from swarm.board.experiments import FAILED_STATUSES, MEASURED_STATUSES, PROMISING, PRUNED
from swarm.config import load_section
from swarm.errors import SwarmError
from swarm.repo.git import git
from swarm.repo.paths import run_paths, worktree_root

SAMPLERS = ("tpe", "random")
MAX_DUPLICATES = 50  # trials in a row whose train.py was already measured: the space is exhausted


@dataclass(frozen=True)
class OptunaSettings:
    """`[optuna]` in swarm.toml."""

    sampler: str = "tpe"  #: "tpe" or "random"
    seed: int | None = None  #: [advanced] the sampler's seed (unset: a different search each time)
    startup_trials: int = 8  #: [advanced] TPE: random trials before it models the results
    knobs: list[str] | None = None  #: search only these knobs (default: every knob the sweep would move)
    #: override search ranges: NAME (or NAME[i] of a tuple) -> [low, high]; a range may be negative
    ranges: dict[str, list[float]] | None = field(default=None, metadata={"signed": True})

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise SwarmError(
                f"swarm.toml [optuna]: sampler = {self.sampler!r} (known: {', '.join(SAMPLERS)})"
            )

    def make_sampler(self, agent: str) -> optuna.samplers.BaseSampler:
        # each agent its own stream of random numbers: two agents with one seed would propose alike
        seed = (
            None if self.seed is None else self.seed + int(hashlib.sha256(agent.encode()).hexdigest()[:6], 16)
        )
        if self.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        # constant_liar: a trial in flight counts as a poor result, so parallel agents spread out
        return optuna.samplers.TPESampler(n_startup_trials=self.startup_trials, seed=seed, constant_liar=True)


def study_path(board_dir: Path, tag: str) -> Path:
    """Where a run's shared study lives (the journal file Optuna appends to under its own file lock)."""
    return Path(board_dir) / "optuna" / f"{tag}.journal"


def open_study(board_dir: Path, tag: str, group: tuple[str, str], sampler) -> optuna.Study:
    path = study_path(board_dir, tag)
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    name = f"{tag}/{group[0]}/{group[1]}"
    return optuna.create_study(
        study_name=name, storage=storage, sampler=sampler, direction="minimize", load_if_exists=True
    )


class OptunaAgent(SweepAgent):
    def __init__(self, worktree: Path, settings: OptunaSettings, **kwargs):
        super().__init__(worktree, **kwargs)
        self.settings = settings
        self.trials: dict[str, int] = {}  # experiment id -> trial number

    def run(self) -> int:
        self.start()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        status = self.swarm("status")
        self.tag = status["tag"]
        self._to_base(status["base"])
        self.space = search_space(self.config, self.settings.knobs, self.settings.ranges)
        if not self.space:
            raise SwarmError("optuna agent: no hyperparameter to search in train.py")
        self.study = open_study(
            run_paths(self.worktree).board, self.tag, self.group, self.settings.make_sampler(self.name)
        )
        self._resume_trials()
        if self.best_value is None and not self.in_flight:
            self._submit(Proposal((), kind="baseline", by="optuna"))
        while True:
            while len(self.in_flight) < self.queue and self._budget_left():
                if not self._ask_and_submit():
                    break
            if not self.in_flight:
                break
            job = self.in_flight.popleft()
            self._finish(job, self.swarm("wait", job.id, *(["--verdict"] if job.verdict else [])))
        self.log(
            f"optuna {self.name}: done after {self.finished} results; study has {len(self.study.trials)} trials"
        )
        return 0

    def _to_base(self, base: str) -> None:
        """Every trial is a commit on the run's base, and the space is the base's: the branch goes back
        there (a predecessor killed between commit and reset left a trial commit checked out, which must
        never be submitted as the baseline), and the base's value is the one this agent measured of it."""
        git(self.worktree, "reset", "--quiet", "--hard", base)
        self._load_best(base, None)
        for e in self.mine:
            if e.get("train_sha256") == self.best_sha and e.get("status") in MEASURED_STATUSES:
                self.best_value = e.get("val_bpb")
        baselines = {e["id"] for e in self.mine if e.get("train_sha256") == self.best_sha}
        for job in self.in_flight:  # a baseline a predecessor left in flight is still the baseline
            if job.id in baselines:
                job.proposal = Proposal((), kind="baseline", by="optuna")

    # -- trials ------------------------------------------------------------------------------------------

    def _resume_trials(self) -> None:
        """Trials a previous run of this agent left open: follow their experiments, or fail them."""
        pending = {job.id for job in self.in_flight}
        mine = {e["id"]: e for e in self.mine}
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial.user_attrs.get("agent") != self.name:
                continue
            eid = trial.user_attrs.get("experiment")
            if eid in pending:
                self.trials[eid] = trial.number
            elif eid in mine:  # it finished while this agent was down: the study learns its result
                self._tell(trial.number, mine[eid])
            else:  # asked but never submitted
                self.study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)

    def _ask_and_submit(self) -> bool:
        """Ask the study for a configuration nobody measured yet and submit it; False when none is left."""
        for _ in range(MAX_DUPLICATES):
            trial = self.study.ask(self.space)
            knobs = to_knobs(trial.params, self.config)
            changes = tuple(Change(n, self.config[n], v) for n, v in knobs.items() if v != self.config[n])
            proposal = self._fit(Proposal(changes, kind=f"#{trial.number}", by="optuna"))
            if proposal is None:
                self.study.tell(trial, state=TrialState.FAIL)  # a batch train.py would refuse
                continue
            sha = hashlib.sha256(self._source_of(proposal).encode()).hexdigest()
            if sha in self.seen:
                self._tell_from_board(trial, sha)
                continue
            trial.set_user_attr("agent", self.name)
            self._submit(proposal)
            eid = self.in_flight[-1].id
            trial.set_user_attr("experiment", eid)
            self.trials[eid] = trial.number
            return True
        return False

    def _tell_from_board(self, trial: optuna.Trial, sha: str) -> None:
        """A configuration already measured: the study is told the board's mean of it, no run needed."""
        board = self.swarm("board", "--top", "100000")
        for group in board["groups"]:
            if (group["device"], group["profile"]) != self.group:
                continue
            row = next((r for r in group["top"] if r["train_sha256"] == sha), None)
            if row is not None:
                self.study.tell(trial, row["mean"])
                return
        self.study.tell(trial, state=TrialState.FAIL)  # in flight elsewhere, or it never gave a number

    def _finish(self, job: InFlight, result: dict[str, Any]) -> None:
        status, value = result.get("status"), result.get("val_bpb")
        if isinstance(result.get("train_sha256"), str):
            self.seen.add(result["train_sha256"])
        number = self.trials.pop(job.id, None)
        if number is not None:
            self._tell(number, result)
        elif job.proposal.kind == "baseline" and status in MEASURED_STATUSES and status != PROMISING:
            self._tell_baseline(float(value), job.id)
        self.finished += 1
        self.log(f"{job.id} {status} {self._value(value)}: {job.proposal.description}")
        if job.proposal.kind == "baseline" and status in MEASURED_STATUSES:
            self.best_value = value

    def _tell(self, number: int, result: dict[str, Any]) -> None:
        """The runner's measurement (a promising result's first run counts; its verdict is the swarm's)."""
        status, value = result.get("status"), result.get("val_bpb")
        if status in MEASURED_STATUSES and value is not None:
            self.study.tell(number, float(value), skip_if_finished=True)
        elif status == PRUNED:
            self.study.tell(number, state=TrialState.PRUNED, skip_if_finished=True)
        elif status in FAILED_STATUSES:
            self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)

    def _tell_baseline(self, value: float, eid: str) -> None:
        params = to_params(self.config, self.space)
        if len(params) != len(self.space):
            return  # the base lies outside a narrowed space: not a point of this study
        distributions: dict[str, BaseDistribution] = {p: self.space[p] for p in params}
        self.study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions=distributions,
                value=value,
                user_attrs={"agent": self.name, "experiment": eid, "baseline": True},
            )
        )


def cmd_optuna(args) -> int:
    worktree = worktree_root()
    settings = load_section(run_paths(worktree).repo, "optuna", OptunaSettings)
    agent = OptunaAgent(worktree, settings, max_experiments=args.max_experiments, queue=args.queue)
    return agent.run()
