"""Agent and query commands on a real run: errors, best / board / note / export, adopt, verify."""

import json
import subprocess

import pytest

from tests.support.swarm_run import commit_train, git, latest, run_queued, stand_in_train, submit

# These tests are about the commands, with the `single` noise rule (one run decides, bests from single runs);
# screen-then-confirm, the default, is tested in test_confirmation.py.
SINGLE = '[noise]\nrule = "single"\n'


def test_errors_are_one_line(make_swarm_run, cli, tmp_path, monkeypatch):
    run = make_swarm_run(config=SINGLE)
    monkeypatch.chdir(run.repo)  # the main worktree is no agent's
    code, _, err = cli("submit", "-m", "x")
    assert code == 1 and err.startswith("swarm: not in an agent's worktree") and err.count("\n") == 1
    with run.agent_env("cpu0"):
        (run.worktree("cpu0") / "train.py").write_text("# edited, not committed\n")
        code, _, err = cli("run", "-m", "x")
        assert code == 1 and "dirty tree" in err
        git(run.worktree("cpu0"), "checkout", "train.py")
        code, _, err = cli("wait", "0123abcd")
        assert code == 1 and err == "swarm: unknown experiment id '0123abcd'\n"
    # an agent from another run's branch
    git(run.repo, "worktree", "add", "-q", "-b", "swarm/other/cpu0", str(tmp_path / "stray"), run.base)
    monkeypatch.chdir(tmp_path / "stray")
    code, _, err = cli("submit", "-m", "x")
    assert code == 1 and "not in a worktree of this swarm" in err
    # no board at all: a repository that was never spawned
    monkeypatch.delenv("SWARM_BOARD", raising=False)
    bare = tmp_path / "bare"
    bare.mkdir()
    git(bare, "init", "-q")
    monkeypatch.chdir(bare)
    code, _, err = cli("best")
    assert code == 1 and "no board" in err
    # an unreadable board (a directory where the records file should be: root can read any file)
    monkeypatch.setenv("SWARM_BOARD", str(tmp_path / "broken"))
    (tmp_path / "broken" / "board.jsonl").mkdir(parents=True)
    code, _, err = cli("board")
    assert code == 1 and "board unreadable" in err


def test_ambiguous_prefix(make_swarm_run, cli):
    run = make_swarm_run(config=SINGLE)
    run.board.append(
        {"type": "experiment", "id": "abc00001", "agent": "cpu0", "status": "queued", "gpu": "cpu9"}
    )
    run.board.append(
        {"type": "experiment", "id": "abc00002", "agent": "cpu0", "status": "queued", "gpu": "cpu9"}
    )
    with run.agent_env("cpu0"):
        code, _, err = cli("wait", "abc")
    assert code == 1 and "ambiguous experiment id prefix 'abc'" in err


def test_best_board_note_export(make_swarm_run, cli, tmp_path):
    run = make_swarm_run(config=SINGLE, agents=("cpu0", "cpu1"))
    submit(run, cli, "cpu0", stand_in_train(val_bpb=1.0), "baseline")
    submit(run, cli, "cpu1", stand_in_train(val_bpb=1.0), "baseline")
    wide = submit(run, cli, "cpu1", stand_in_train(val_bpb=0.95), "wider\x1b[31m model\nFAKE LINE")
    crash = submit(run, cli, "cpu0", stand_in_train(mode="crash"), "breaks")
    run_queued(run, "cpu0")
    run_queued(run, "cpu1")
    with run.agent_env("cpu0"):
        assert cli("note", "lower", "lr", "helps")[0] == 0
        code, out, _ = cli("best", "--json")
    best = json.loads(out)
    assert len(best) == 1 and best[0]["id"] == wide and best[0]["n"] == 1 and best[0]["verified"] is False
    assert (
        best[0]["device"] == "cpu"
        and best[0]["profile"] == "tiny"
        and best[0]["val_bpb"] == pytest.approx(0.95)
    )
    with run.agent_env("cpu0"):
        code, out, _ = cli("best")
    assert wide in out and "\x1b" not in out and "\\x1b[31m model\\nFAKE LINE" in out
    with run.agent_env("cpu0"):
        code, out, _ = cli("board", "--top", "20", "--json")
    board = json.loads(out)
    top = board["groups"][0]["top"]
    assert [row["id"] for row in top][0] == wide and top[1]["n"] == 2  # the baseline twice
    assert board["groups"][0]["sigma"] == 0.0 and board["notes"][0]["text"] == "lower lr helps"
    with run.agent_env("cpu0"):
        code, out, _ = cli("board", "--agent", "cpu0")
    assert crash in out and "lower lr helps" in out and "FAKE" not in out.split("latest experiments")[1]
    with run.agent_env("cpu1"):
        code, out, _ = cli("export", str(tmp_path / "results.tsv"))
    rows = [line.split("\t") for line in (tmp_path / "results.tsv").read_text().splitlines()]
    assert rows[0] == ["commit", "val_bpb", "memory_gb", "status", "description", "agent", "id"]
    assert len(rows) == 5 and all(len(r) == 7 for r in rows)
    by_id = {r[6]: r for r in rows[1:]}
    assert by_id[wide][1:4] == ["0.950000", "1.0", "keep"] and len(by_id[wide][0]) == 7
    assert by_id[crash][1:4] == ["0.000000", "0.0", "crash"]


def test_adopt_moves_the_branch_and_keeps_unique_commits(make_swarm_run, cli):
    run = make_swarm_run(config=SINGLE, agents=("cpu0", "cpu1"))
    submit(run, cli, "cpu0", stand_in_train(val_bpb=1.0), "baseline")
    great = submit(run, cli, "cpu1", stand_in_train(val_bpb=0.9), "great")
    run_queued(run, "cpu0")
    run_queued(run, "cpu1")
    worktree = run.worktree("cpu0")
    unsubmitted = commit_train(worktree, stand_in_train(val_bpb=0.97, marker="wip"), "work in progress")
    (worktree / "train.py").write_text("dirty\n")
    with run.agent_env("cpu0"):
        code, _, err = cli("adopt", "best")
        assert code == 1 and "dirty tree" in err
        git(worktree, "checkout", "train.py")
        code, out, _ = cli("adopt", "best", "--json")
    assert code == 0
    record = json.loads(out)
    assert record["id"] == great and record["previous_head"] == unsubmitted
    assert git(worktree, "rev-parse", "HEAD") == latest(run.board, great)["commit"]
    assert git(worktree, "rev-parse", run.run.agent("cpu0").branch) == latest(run.board, great)["commit"]
    assert git(run.repo, "rev-parse", record["saved_ref"]) == unsubmitted  # nothing lost
    # the adopted content is now cpu0's reference: 0.95 would have been a keep against its own 1.0
    submit(run, cli, "cpu0", stand_in_train(val_bpb=0.95, marker="after adopt"), "after adopt")
    assert run_queued(run, "cpu0")[0]["status"] == "discard"


def test_submitted_commits_stay_reachable(make_swarm_run, cli):
    run = make_swarm_run(config=SINGLE)
    eid = submit(run, cli, "cpu0", stand_in_train(val_bpb=0.99), "to be reset away")
    commit = latest(run.board, eid)["commit"]
    git(run.worktree("cpu0"), "reset", "-q", "--hard", "HEAD~1")
    subprocess.run(["git", "gc", "-q", "--prune=now"], cwd=run.repo, check=True)
    assert git(run.repo, "cat-file", "-t", commit) == "commit"
    assert run_queued(run, "cpu0")[0]["status"] == "keep"


def test_verify_reruns_on_another_slot_and_marks_verified(make_swarm_run, cli):
    run = make_swarm_run(config=SINGLE, agents=("gpu0", "gpu1", "gpu2"), devices={"2": "Other GPU"})
    eid = submit(run, cli, "gpu0", stand_in_train(val_bpb=0.97, offsets=(0.0, 0.0001)), "good")
    run_queued(run, "0")
    with run.agent_env("gpu1"):
        code, out, _ = cli("verify", eid[:6], "--repeats", "2", "--json")
    reruns = json.loads(out)
    assert [r["gpu"] for r in reruns] == ["1", "1"]  # same device class, not its own slot, not gpu2
    assert all(r["verify_of"] == eid and r["requested_by"] == "gpu1" for r in reruns)
    run_queued(run, "1")
    with run.agent_env("gpu0"):
        code, out, _ = cli("best", "--json")
    best = json.loads(out)[0]
    assert best["id"] == eid and best["n"] == 3 and best["verified"] is True
    verification = [r for r in run.board.records() if r["type"] == "verification"]
    assert len(verification) == 1 and verification[0]["held"] is True and verification[0]["slots"] == ["1"]


def test_verify_that_does_not_hold(make_swarm_run, cli):
    run = make_swarm_run(config=SINGLE, agents=("gpu0", "gpu1"))
    eid = submit(run, cli, "gpu0", stand_in_train(val_bpb=0.90, offsets=(0.0, 0.05)), "lucky")
    run_queued(run, "0")
    with run.agent_env("gpu0"):
        cli("verify", eid)
    run_queued(run, "1")
    verification = [r for r in run.board.records() if r["type"] == "verification"][0]
    assert verification["held"] is False and verification["mean"] == pytest.approx(0.95)
    with run.agent_env("gpu0"):
        code, out, _ = cli("best", "--json")
    assert json.loads(out)[0]["verified"] is False


def test_verify_wait_with_a_runner_process(make_swarm_run, cli):
    run = make_swarm_run(config=SINGLE, agents=("gpu0", "gpu1"))
    eid = submit(run, cli, "gpu0", stand_in_train(val_bpb=0.97), "good")
    run_queued(run, "0")
    run.start_runner("1")
    with run.agent_env("gpu0"):
        code, out, _ = cli("verify", eid, "--wait", "--timeout", "60")
    assert code == 0 and "held: verified" in out
    with run.agent_env("gpu0"):
        code, out, _ = cli("best")
    assert "(n=2, verified" in out
