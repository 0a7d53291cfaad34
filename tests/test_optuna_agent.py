"""The optuna agent: its search space, and two agents sharing one study through real runners."""

from __future__ import annotations

import os
import subprocess
import textwrap

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from swarm.agents.optuna.agent import OptunaSettings, study_path
from swarm.agents.optuna.space import search_space, to_knobs, to_params
from swarm.agents.sweep.proposals import SUMMARY_CHARS, WINDOW_PATTERNS, Change, Proposal
from swarm.board.experiments import MAX_DESCRIPTION_CHARS
from swarm.errors import SwarmError
from swarm.installation import swarm_argv
from swarm.target.hparams import read_knobs
from tests.support.standins import latest_experiments
from tests.support.swarm_run import make_run, wait_until
from tests.support.target import REPO_ROOT

# A trainer whose val_bpb is a known function of its knobs (best at MATRIX_LR 0.02, WARMDOWN_RATIO 0.3).
KNOB_TRAINER = textwrap.dedent(
    '''\
    """Stand-in trainer with a hyperparameter block"""
    import os
    from prepare import PROFILES

    MATRIX_LR = 0.04  # Muon
    WARMDOWN_RATIO = 0.5  # schedule
    DEPTH = 4  # blocks
    SEED = 1  # never searched

    profile = os.environ.get("AUTORESEARCH_PROFILE", "h100")
    value = 1.0 + 10 * abs(MATRIX_LR - 0.02) + 5 * abs(WARMDOWN_RATIO - 0.3) + 0.01 * abs(DEPTH - 4)
    print("---")
    print(f"val_bpb:          {value:.6f}")
    print("training_seconds: 0.0")
    print(f"profile:          {profile}")
    '''
)


def test_search_space_follows_the_block_and_swarm_toml():
    config = {
        "MATRIX_LR": 0.04, "WARMDOWN_RATIO": 0.5, "FINAL_LR_FRAC": 0.0, "TOTAL_BATCH_SIZE": 2**19,
        "DEPTH": 8, "ADAM_BETAS": (0.8, 0.95), "WINDOW_PATTERN": "SSSL", "QK_NORM_BEFORE_ROPE": False,
        "SEED": 42, "DEVICE_BATCH_SIZE": 128, "EVAL_TOKENS": 100,
    }  # fmt: skip
    space = search_space(config)
    assert space["MATRIX_LR"] == FloatDistribution(0.01, 0.16, log=True)
    assert space["WARMDOWN_RATIO"] == FloatDistribution(0.05, 1.0)  # never 0: train.py divides by it
    assert space["FINAL_LR_FRAC"] == FloatDistribution(0.0, 1.0)
    assert space["TOTAL_BATCH_SIZE"] == CategoricalDistribution(tuple(2**k for k in range(17, 22)))
    assert all(type(size) is int for size in space["TOTAL_BATCH_SIZE"].choices)  # never 1024.0
    assert space["DEPTH"] == IntDistribution(4, 16, log=True)
    assert space["ADAM_BETAS[0]"].low == pytest.approx(0.4) and space["ADAM_BETAS[1]"].high == pytest.approx(
        1 - 0.05 / 3
    )
    assert space["WINDOW_PATTERN"].choices == WINDOW_PATTERNS  # a fixed order, whatever the current value
    assert space["QK_NORM_BEFORE_ROPE"].choices == (False, True)
    assert not {"SEED", "DEVICE_BATCH_SIZE", "EVAL_TOKENS"} & set(space)
    # the base itself is a point of the space
    assert to_knobs(to_params(config, space), config) == {
        k: v for k, v in config.items() if k in {p.split("[")[0] for p in space}
    }
    narrowed = search_space(config, knobs=["MATRIX_LR", "ADAM_BETAS"], ranges={"MATRIX_LR": [0.02, 0.05]})
    assert set(narrowed) == {"MATRIX_LR", "ADAM_BETAS[0]", "ADAM_BETAS[1]"}
    assert narrowed["MATRIX_LR"] == FloatDistribution(0.02, 0.05, log=True)
    assert to_knobs({"ADAM_BETAS[1]": 0.97123}, config) == {"ADAM_BETAS": (0.8, 0.9712)}
    with pytest.raises(SwarmError, match="NOPE"):
        search_space(config, knobs=["NOPE"])
    with pytest.raises(SwarmError, match="low < high"):
        search_space(config, ranges={"MATRIX_LR": [0.05, 0.01]})
    with pytest.raises(SwarmError, match="sampler"):
        OptunaSettings(sampler="grid")


def test_the_default_space_respects_each_knob_and_never_moves():
    """The space of the repository's own train.py: every range inside what the knob means, and the same
    space whatever value a knob has now (a stored study refuses distributions that changed)."""
    config = {k: v.value for k, v in read_knobs((REPO_ROOT / "train.py").read_text(), "tiny").items()}
    space = search_space(config)
    assert len(space) >= 20  # the default space is every knob the sweep would move, not a narrowed one
    for beta in ("MUON_BETA2", "ADAM_BETAS[0]", "ADAM_BETAS[1]", "MUON_MOMENTUM[0]", "MUON_MOMENTUM[1]"):
        assert 0 < space[beta].low < space[beta].high < 1, (beta, space[beta])
    for fraction in ("WARMUP_RATIO", "WARMDOWN_RATIO", "FINAL_LR_FRAC"):
        assert 0 <= space[fraction].low < space[fraction].high <= 1
    assert space["WARMDOWN_RATIO"].low > 0  # train.py divides by it
    for name, dist in space.items():
        if isinstance(dist, FloatDistribution | IntDistribution):
            assert dist.low > 0 or name in ("WARMUP_RATIO", "FINAL_LR_FRAC"), (name, dist)
    moved = {**config, "WINDOW_PATTERN": "SL", "TOTAL_BATCH_SIZE": config["TOTAL_BATCH_SIZE"]}
    assert search_space(moved)["WINDOW_PATTERN"] == space["WINDOW_PATTERN"]
    odd = search_space({**config, "WINDOW_PATTERN": "SSSSL"})["WINDOW_PATTERN"].choices
    assert odd == (*WINDOW_PATTERNS, "SSSSL")  # an unknown base pattern goes last, the rest stay put


def test_a_trial_that_moves_every_knob_has_a_short_description():
    config = {k: v.value for k, v in read_knobs((REPO_ROOT / "train.py").read_text(), "tiny").items()}
    changes = tuple(Change(name, value, value) for name, value in config.items())
    proposal = Proposal(changes, kind="#7", by="optuna")
    assert len(proposal.description) > MAX_DESCRIPTION_CHARS  # the whole change: for the commit message
    summary = proposal.summary
    assert len(summary) <= SUMMARY_CHARS and summary.startswith(
        f"optuna #7: {len(changes)} knobs: DEPTH 2 -> 2"
    )
    shown = summary.count(" -> ")
    assert summary.endswith(f"(+{len(changes) - shown} more)")
    short = Proposal(changes[:2], kind="#8", by="optuna")
    assert short.summary == short.description  # a short one is left whole


@pytest.mark.slow  # two agents, real runners
def test_two_optuna_agents_share_one_study_told_the_runners_numbers(tmp_path, monkeypatch, swarm_shell):
    config = (
        "[noise]\nfloor = {tiny = 1e-4}\n"
        '[optuna]\nseed = 3\nstartup_trials = 2\nknobs = ["MATRIX_LR", "WARMDOWN_RATIO"]\n'
    )
    run = make_run(tmp_path, agents=("cpu0", "cpu1"), train=KNOB_TRAINER, config=config)
    monkeypatch.setenv("STANDIN_STATE_DIR", str(run.state_dir))
    for slot in ("cpu0", "cpu1"):
        run.start_runner(slot)
    agents = [
        subprocess.Popen(
            swarm_argv("agent", "optuna", "--max-experiments", "4"),
            cwd=run.worktree(name),
            env={**os.environ, **run.agent_environ(name)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("cpu0", "cpu1")
    ]
    outputs = [proc.communicate(timeout=240)[0] for proc in agents]
    # the runners' own reruns (a calibration the agents do not wait for) may still be in line: let them land
    wait_until(
        lambda: (
            not any(
                e["status"] in ("queued", "running") for e in latest_experiments(run.board.records()).values()
            )
        ),
        timeout=120,
    )
    run.stop_runners()
    assert [proc.returncode for proc in agents] == [0, 0], outputs

    experiments = latest_experiments(run.board.records())
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(study_path(run.board.directory, run.run.tag)))
    )
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    assert {t.user_attrs.get("agent") for t in trials} == {"cpu0", "cpu1"}
    told = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and "experiment" in t.user_attrs]
    assert len(told) >= 6, [
        (e["status"], e.get("reason")) for e in experiments.values()
    ]  # 2 baselines + 4 searched
    for trial in told:
        record = experiments[trial.user_attrs["experiment"]]
        assert trial.value == pytest.approx(record["val_bpb"])  # the runner's number, from the board
        assert record["agent"] == trial.user_attrs["agent"]
    searched = [
        e for e in experiments.values() if "optuna #" in str(e["description"]) and not e.get("verify_of")
    ]
    assert len(searched) == 6  # 4 each, less the baseline
    assert all(str(e["description"]).startswith("optuna #") for e in searched)
    assert len({e["train_sha256"] for e in searched}) == len(searched)  # never the same config twice
    undecided = [
        (e["id"], e["status"], e.get("verify_of"), e.get("control"))
        for e in experiments.values()
        if e["status"] in ("queued", "running", "promising")
    ]
    assert not undecided, (undecided, outputs)


@pytest.mark.slow  # real tiny trainer runs (minutes)
def test_optuna_agent_measures_its_default_space_on_the_real_tiny_trainer_and_resumes(
    tmp_path, tiny_cache, monkeypatch
):
    """`swarm agent optuna` as the launcher starts it (sealed), with no [optuna] settings: the default
    space of the repository's train.py on the real tiny trainer. Its trials are measured, labelled as
    trials (a short summary on the board, every change in the commit), and a restart over a trial commit
    a killed predecessor left checked out goes on with the same study, never calling that commit the
    baseline."""
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(tiny_cache))
    run = make_run(
        tmp_path,
        signed=True,
        agents=("cpu0",),
        train=(REPO_ROOT / "train.py").read_text(),
        prepare=(REPO_ROOT / "prepare.py").read_text(),
        # one run decides (the `single` noise rule): only the agent's own runs, no calibration reruns
        config='[noise]\nrule = "single"\n',
    )
    run.start_runner("cpu0")
    worktree = run.worktree("cpu0")

    def agent(max_experiments: int) -> subprocess.CompletedProcess:
        argv, env = run.sealed(
            "cpu0",
            "optuna",
            swarm_argv("agent", "optuna", "--max-experiments", str(max_experiments)),
            {**os.environ, **run.agent_environ("cpu0")},
        )
        return subprocess.run(argv, env=env, cwd=worktree, capture_output=True, text=True, timeout=400)

    first = agent(2)  # the baseline and one trial of all 24 knobs
    assert first.returncode == 0, first.stdout + first.stderr
    experiments = sorted(latest_experiments(run.board.records()).values(), key=lambda e: e["submitted_at"])
    baseline, trial = experiments
    assert (
        baseline["description"] == "optuna: baseline (train.py unchanged)" and baseline["commit"] == run.base
    )
    assert baseline["status"] in ("keep", "marginal", "discard"), baseline["reason"]
    assert trial["description"].startswith("optuna #") and len(trial["description"]) <= SUMMARY_CHARS
    message = subprocess.run(
        ["git", "log", "-1", "--format=%B", trial["commit"]], cwd=worktree, capture_output=True, text=True
    ).stdout
    assert message.count(" -> ") > trial["description"].count(" -> ")  # the whole change is in the commit
    assert trial["status"] in ("keep", "marginal", "discard", "crash", "invalid", "timeout")

    # killed between committing a trial and going back: the trial commit is checked out
    subprocess.run(["git", "reset", "--quiet", "--hard", trial["commit"]], cwd=worktree, check=True)
    second = agent(1)
    run.stop_runners()
    assert second.returncode == 0, second.stdout + second.stderr
    experiments = sorted(latest_experiments(run.board.records()).values(), key=lambda e: e["submitted_at"])
    assert len(experiments) == 3 and experiments[2]["description"].startswith("optuna #")
    assert [e for e in experiments if "baseline" in e["description"]] == [baseline]
    assert (
        subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=worktree, capture_output=True, text=True
        ).stdout.strip()
        == run.base
    )

    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(study_path(run.board.directory, run.run.tag)))
    )
    (summary,) = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=summary.study_name, storage=storage).get_trials(deepcopy=False)
    told = {t.user_attrs["experiment"]: t for t in trials if t.state == optuna.trial.TrialState.COMPLETE}
    by_id = {e["id"]: e for e in experiments}
    assert baseline["id"] in told  # the base, as a point of the study
    measured = [e for e in experiments[1:] if e["status"] in ("keep", "marginal", "discard")]
    assert measured, [(e["status"], e.get("reason")) for e in experiments]
    for e in measured:
        assert told[e["id"]].value == pytest.approx(by_id[e["id"]]["val_bpb"])  # the runner's number
        assert len(told[e["id"]].params) == len(trials[0].params) >= 20  # the default space, all of it
