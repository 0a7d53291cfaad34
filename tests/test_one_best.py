"""One definition of best in every output, and a report that tells the truth of the board: each command run
as README shows it, with the default configuration (the `confirm` noise rule), on a board whose lowest
single run, whose lowest mean of two runs and whose confirmed best are three different train.py's.

    baseline (sha-base)  gpu0 1.000, gpu1 1.004, a calibration rerun 1.002; later two control runs
    lr      gpu0  MATRIX_LR 0.04 -> 0.03   0.950 promising, reruns 0.962 + 0.958 beside controls -> keep:
                                           the best, mean 0.956667 of 3 runs
    lucky   gpu1  WEIGHT_DECAY 0.2 -> 0.1  0.900 promising, its reruns not run yet: the lowest single run
    two     gpu1  DEPTH 8 -> 10            0.930 marginal, rerun by `swarm verify` 0.935: mean of 2 runs
    wd      gpu0  WEIGHT_DECAY 0.2 -> 0.3  1.010 discard (judged against lr)
    crash   gpu0  a crash, with its reason; inv: gpu1, invalid, with its reason; one more still queued
"""

from __future__ import annotations

import statistics

import pytest

from swarm import cli
from swarm.board.checkpoint import restore, save
from swarm.board.fold import BoardState
from swarm.results import standing as runs
from swarm.results.display import mean_text
from swarm.results.plot import title_of
from swarm.results.report import write_report
from swarm.results.standing import standing
from swarm.testing.synthetic import synthetic_run
from tests.support.gitrepo import commit_on, git, make_repo
from tests.support.watch import T0, append_result, experiment, finish, make_board

LR = (0.950, 0.962, 0.958)
BASELINE = (1.000, 1.004, 1.002, 1.001, 1.003)


@pytest.fixture
def truth(tmp_path, monkeypatch, swarm_shell):
    repo = make_repo(tmp_path / "repo")
    base = git(repo, "rev-parse", "main")
    board = make_board(repo / "board", agents=2, base=base, repo=str(repo))
    clock = [T0]
    ids: dict[str, str] = {}

    def add(name, agent, commit, value, status, sha, **fields):
        clock[0] += 100
        final = append_result(
            board, agent, clock[0], value, status, sha, commit=commit, parent=base, base=base, **fields
        )
        ids.setdefault(name, final["id"])
        return final

    def change(name, edits):
        return commit_on(repo, f"swarm/t1/{name}", "main", edits, name)[0]

    first = "baseline: the agent's first result on this device class and profile"  # as the runner says
    b0 = add("base0", "gpu0", base, 1.000, "keep", "sha-base", description="baseline", reason=first)
    add("base1", "gpu1", base, 1.004, "keep", "sha-base", description="baseline", reason=first)
    # reruns carry the original's agent (swarm.board.reruns), on another slot
    add("calib", "gpu0", base, 1.002, "keep", "sha-base", description="baseline", verify_of=b0["id"],
        requested_by="calibration", reference=b0["id"], gpu="1")  # fmt: skip
    lr_commit = change("lr", {"MATRIX_LR = 0.04": "MATRIX_LR = 0.03"})
    lr = add("lr", "gpu0", lr_commit, LR[0], "promising", "sha-lr", description="MATRIX_LR 0.04 -> 0.03",
             reference=b0["id"], band=0.02)  # fmt: skip
    for value, control in zip(LR[1:], BASELINE[3:], strict=True):
        add("rerun", "gpu0", lr_commit, value, "promising", "sha-lr", description=lr["description"],
            verify_of=lr["id"], requested_by="confirmation", reference=b0["id"], gpu="1")  # fmt: skip
        add("control", "gpu0", base, control, "keep", "sha-base", description="baseline", verify_of=lr["id"],
            requested_by="confirmation", control=True, reference=b0["id"], gpu="1")  # fmt: skip
    board.append({**lr, "status": "keep", "reason": "confirmed: improved by 0.045 beyond the band 0.02"})
    add("lucky", "gpu1", change("lucky", {"WEIGHT_DECAY = 0.2": "WEIGHT_DECAY = 0.1"}), 0.900, "promising",
        "sha-lucky", description="WEIGHT_DECAY 0.2 -> 0.1", reference=b0["id"])  # fmt: skip
    two_commit = change("two", {"DEPTH = 8": "DEPTH = 10"})
    two = add("two", "gpu1", two_commit, 0.930, "marginal", "sha-two", description="DEPTH 8 -> 10",
              reference=b0["id"], band=0.0765, reason="improved by 0.072, inside the noise band 0.0765")  # fmt: skip
    add("verify", "gpu1", two_commit, 0.935, "marginal", "sha-two", description="DEPTH 8 -> 10",
        verify_of=two["id"], requested_by="user", reference=b0["id"], gpu="0")  # fmt: skip
    add("wd", "gpu0", change("wd", {"WEIGHT_DECAY = 0.2": "WEIGHT_DECAY = 0.3"}), 1.010, "discard", "sha-wd",
        description="WEIGHT_DECAY 0.2 -> 0.3", reference=lr["id"])  # fmt: skip
    add("crash", "gpu0", change("crash", {"DEPTH = 8": "DEPTH = 0"}), None, "crash", "sha-crash",
        description="DEPTH 0", reason="no val_bpb in the output (exit code 1)")  # fmt: skip
    add("inv", "gpu1", lr_commit, None, "invalid", "sha-inv", description="sneaky",
        reason="changes files other than train.py: prepare.py")  # fmt: skip
    add("badcontrol", "gpu0", base, None, "invalid", "sha-base", description="baseline", verify_of=lr["id"],
        requested_by="confirmation", control=True, reference=b0["id"], gpu="1",
        reason="clock: training_seconds 17.5 beyond the budget (limit 17.3)")  # fmt: skip
    clock[0] += 100
    board.append(experiment("gpu0", commit=base, base=base, at=clock[0], description="still queued"))
    monkeypatch.chdir(repo)
    return repo, board, ids


def run(capsys, *argv: str) -> str:
    assert cli.main(list(argv)) == 0
    return capsys.readouterr().out


def the_best() -> str:
    return mean_text(statistics.mean(LR), statistics.stdev(LR), 3)


def test_the_state_best_is_the_confirmed_mean_not_a_lucky_run(truth):
    repo, board, ids = truth
    state = BoardState(board)
    state.refresh()
    (key,) = state.groups
    best = state.best(key)
    assert best.experiment["id"] == ids["lr"] and best.n == 3 and best.confirmed
    assert best.mean == pytest.approx(statistics.mean(LR))
    assert [b.experiment["id"] for b in state.confirmed_top(key, 5)] == [ids["lr"], ids["base0"]]
    # the lowest single run and the lowest mean of two rank above it by mean, and are not confirmed
    assert [b.experiment["id"] for b in state.top(key, 3)] == [ids["lucky"], ids["two"], ids["lr"]]
    # the progress line is the board's best: the baseline, then lr once its third run landed, never the
    # lucky single run; the same from a fresh fold and from a checkpoint
    steps = state.best_steps(key)
    assert [s.id for s in steps] == [ids["base0"], ids["lr"]]
    assert steps[-1].value == pytest.approx(best.mean) and steps[0].value == pytest.approx(
        statistics.mean(BASELINE)
    )
    assert save(state)
    restored = restore(board)
    restored.refresh()
    assert restored.best_steps(key) == steps


def test_every_command_shows_the_same_best(truth, capsys):
    repo, board, ids = truth
    shown = the_best()  # "0.956667 ±0.006110 (n=3)"
    value, sigma = shown.split()[:2]

    best = run(capsys, "best")
    assert f"val_bpb {value} {sigma} (n=3" in best and ids["lr"] in best

    table = run(capsys, "board").splitlines()
    ranked = [line.split() for line in table if line.strip()[:1].isdigit()]
    assert ranked[0][:4] == ["1", value, sigma.lstrip("±"), "3"] and ids["lr"] in table[table.index(
        next(line for line in table if line.strip().startswith("1 ")))]  # fmt: skip
    unranked = [line for line in table if line.strip().startswith("- ")]
    assert any("0.900000" in line and "one run" in line and ids["lucky"] in line for line in unranked)
    assert any("0.932500" in line and ids["two"] in line for line in unranked)
    assert any("not confirmed yet" in line for line in table)

    status = run(capsys, "status")
    assert f"best NVIDIA H100 80GB HBM3 / h100: {shown} {ids['lr']}" in status
    gpu0 = next(line for line in status.splitlines() if line.startswith("gpu0"))
    assert f"{value} n=3" in gpu0
    # KEEP: gpu0's own changes kept (lr), not its baseline, calibration and control runs (status keep too)
    header = next(line for line in status.splitlines() if line.startswith("AGENT"))
    assert gpu0[header.index("KEEP") : header.index("KEEP") + 4].strip() == "1"

    state = BoardState(board)
    state.refresh()
    (key,) = state.groups
    from swarm.board.progress import from_experiments

    progress = from_experiments(list(state.experiments.values()), {key: state.best_steps(key)})
    title = title_of(progress.groups[key], state.best(key))
    assert f"best {shown}" in title and "0.900000" not in title
    assert "wrote plot.png" in run(capsys, "plot", "plot.png")

    run(capsys, "report", "--out", "out", "--no-plot")
    report = (repo / "out" / "report.md").read_text()
    headline = next(line for line in report.splitlines() if line.startswith("| NVIDIA"))
    assert f"{value} ± {sigma.lstrip('±')} (n=3)" in headline

    picked = run(capsys, "pick", ids["lr"])
    assert f"val_bpb {shown}" in picked
    message = git(repo, "log", "-1", "--format=%B", "main")
    assert f"val_bpb: {shown}" in message


def test_the_report_sorts_the_board_into_what_was_decided(truth, capsys):
    repo, board, ids = truth
    run(capsys, "report", "--out", "out", "--no-plot")
    report = (repo / "out" / "report.md").read_text()

    def section(title: str) -> str:
        assert f"## {title}" in report, title
        return report.split(f"## {title}")[1].split("\n## ")[0]

    kept = section("Kept improvements")
    assert ids["lr"] in kept and the_best().split()[0] in kept
    for other in ("lucky", "two", "wd", "base0", "calib", "control"):
        assert ids[other] not in kept, other
    marginal = section("Marginal gains, inside the noise band")
    assert ids["two"] in marginal and "0.076500" in marginal and "0.932500" in marginal
    waiting = section("Awaiting confirmation")
    assert ids["lucky"] in waiting and "1 of the agents' experiments were still queued or running" in waiting
    assert ids["lucky"] not in section("What did not work")
    did_not_work = section("What did not work")
    assert "WEIGHT\\_DECAY" in did_not_work and "MATRIX\\_LR" not in did_not_work
    assert "DEPTH" in did_not_work  # the crash tried DEPTH; the marginal DEPTH change is not here
    assert ids["two"] not in did_not_work
    failures = section("Failures")
    assert "no val\\_bpb in the output \\(exit code 1\\)" in failures and ids["crash"] in failures
    assert "changes files other than train\\.py: prepare\\.py" in failures and ids["inv"] in failures
    # a failed run the swarm made on its own behalf is a failure too, said to be one of its own
    bad = next(line for line in failures.splitlines() if ids["badcontrol"] in line)
    assert "| invalid (control run) |" in bad and "clock: training\\_seconds 17\\.5" in bad
    assert ids["badcontrol"] not in section("What did not work")
    assert "2 failed, 1 queued or running" in report  # the agents' own: the crash and the invalid one
    # the agents' keeps are their own changes: baselines, calibration and control reruns counted apart
    agents = {
        line.split(" | ")[0]: line.split(" | ") for line in report.splitlines() if line.startswith("| gpu")
    }
    # gpu0: lr kept; its baseline, the calibration rerun of it, lr's two reruns, their two controls and a
    # third control that failed
    assert agents["| gpu0"][3:5] == ["1", "7"]
    assert agents["| gpu1"][3:5] == ["0", "2"]  # its baseline and the `swarm verify` rerun of two
    assert "a confirmed gain of 0\\.045333 ± " in report  # Markdown-escaped digits
    assert f"swarm pick {ids['lr']}" in report


def test_no_pick_is_recommended_when_the_best_is_the_baseline(tmp_path):
    repo = make_repo(tmp_path / "repo")
    base = git(repo, "rev-parse", "main")
    board = make_board(repo / "board", agents=2, base=base, repo=str(repo))
    for i, value in enumerate((1.000, 1.004, 1.002)):
        record = experiment(f"gpu{i % 2}", commit=base, parent=base, base=base, at=T0 + 100 * i)
        board.append({**finish(record, value, status="keep", sha="sha-base"), "reason": "baseline: first"})
    record = experiment("gpu0", commit=base, base=base, at=T0 + 400, description="lucky", reference="x")
    board.append(finish(record, 0.9, status="promising", sha="sha-lucky"))
    state = BoardState(board)
    state.refresh()
    text = write_report(state, tmp_path / "out", repo, plot=False).read_text()
    assert "the best is still the baseline's train.py: nothing to pick" in text
    assert "swarm pick" not in text
    (key,) = state.groups
    assert (
        standing(state, key)
        .in_words()
        .endswith("no change beat the noise band yet; 1 promising awaiting confirmation")
    )


def test_baselines_are_told_by_what_the_runner_said_even_without_references():
    """A board written before results carried a `reference` (the synthetic boards too): a keep is the
    agent's baseline when the runner's reason says so, else one of its changes."""
    records = [
        r for r in synthetic_run(agents=3, experiments=40, lifecycle=False) if r.get("type") == "experiment"
    ]
    keeps = [r for r in records if r["status"] == "keep" and not r.get("verify_of")]
    baselines = [r for r in keeps if runs.kind_of(r) == runs.BASELINE]
    assert sorted(r["agent"] for r in baselines) == ["gpu0", "gpu1", "gpu2"]
    assert all(r["description"] == "baseline" for r in baselines)
    assert all(runs.kind_of(r) == runs.EXPERIMENT_RUN for r in keeps if r["description"] != "baseline")
