"""Secret evaluation rows and the private holdout (issues 21 and 23): no trainer can rebuild the rows it is
measured on, the holdout is measured beside them and recorded where no agent can read it, and the human
sees whether the best's gain holds there (the selection gap).

Real prepare.py runs into temporary caches; the evaluator as the runner starts it; sealed runs of small
hand-written trainers through a real runner, and the agent's read commands run inside a real agent sandbox.
"""

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from swarm.agents.protocol import agent_context, submit
from swarm.board.holdout import HOLDOUT_FILE, private_dir, read_holdout
from swarm.board.noise import NoiseSettings
from swarm.runner.sandbox import sandbox_problem
from swarm.runner.service import Runner, RunnerSettings
from swarm.target.profiles import profile_constants
from tests.support.swarm_run import commit_train
from tests.support.target import REPO_ROOT, load_prepare, run_prepare

QUIET = dict(noise=NoiseSettings(rule="single"), log=lambda line: None)
SINGLE_RUN_DECIDES = '[noise]\nrule = "single"\n'  # the board's own rule, as the runner's here
PREFIX = 64  # tokens of a row that identify it: an exact rebuild matches them all
needs_sandbox = pytest.mark.skipif(sandbox_problem() is not None, reason=f"{sandbox_problem()}")


def prefixes(rows: np.ndarray) -> set[tuple[int, ...]]:
    return {tuple(int(t) for t in row[:PREFIX]) for row in rows}


def digests(root, under: str) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / under).rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------------------------------------------------
# prepare.py: rows nobody can rebuild, a disjoint holdout


@pytest.mark.slow  # real tiny trainer and evaluator runs in sandboxes
def test_train_py_cannot_rebuild_the_evaluation_rows_of_the_local_source(tiny_cache, tmp_path):
    """Issue 23's attack: train.py regenerated the 256 x 257 rows from the built-in texts and fixed seed in
    about 1 s. Now the same code (a second prepare.py, and the old recipe by hand) yields other rows."""
    again = tmp_path / "again"
    proc = run_prepare(again, "--source", "local")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = np.load(tiny_cache / "eval" / "val_tokens.npy")
    holdout = np.load(tiny_cache / "eval" / "holdout_tokens.npy")
    prep = load_prepare(tiny_cache)
    assert rows.shape == (prep.EVAL_TOKENS // prep.MAX_SEQ_LEN, prep.MAX_SEQ_LEN + 1)
    assert holdout.shape == (prep.HOLDOUT_TOKENS // prep.MAX_SEQ_LEN, prep.MAX_SEQ_LEN + 1)
    # what a trainer reads is the same in both caches (training shards, tokenizer) ...
    for part in ("data", "tokenizer"):
        assert digests(tiny_cache, part) == digests(again, part)
    # ... and what it is measured on shares no row with anything the same code builds
    rebuilt = np.load(again / "eval" / "val_tokens.npy"), np.load(again / "eval" / "holdout_tokens.npy")
    assert not prefixes(rows) & (prefixes(rebuilt[0]) | prefixes(rebuilt[1]))
    # the old recipe: every tenth reference document plus generated text from the public seed, packed
    tokenizer = prep.Tokenizer.from_directory(tiny_cache / "tokenizer")
    docs = prep._python_reference_docs()
    chain = prep.WordChain("\n".join(docs))
    shard = prep.builtin_corpus_shard(docs[9::10], chain, prep.VAL_SHARD, prep._SETTINGS["local_shard_chars"])
    old, _ = next(prep.packed_rows(tokenizer, prep._cycled(shard), len(rows), prep.MAX_SEQ_LEN))
    assert not prefixes(rows) & prefixes(old)
    assert not prefixes(holdout) & prefixes(old)
    manifest = json.loads((tiny_cache / "prepared.json").read_text())
    assert "eval/holdout_tokens.npy" in manifest["sha256"] and manifest["layout"] == 3


def test_evaluation_and_holdout_rows_come_from_disjoint_secret_documents(tiny_cache):
    """secret_rows: documents shuffled with the secret, split, packed apart; another secret, other rows."""
    prep = load_prepare(tiny_cache)
    tokenizer = prep.Tokenizer.from_directory(tiny_cache / "tokenizer")
    docs = [f"document {i} " + " ".join(["word"] * 200) for i in range(300)]

    def documents(rows):
        return [
            int(re.match(r"document (\d+)", tokenizer.decode(row[1:8].tolist())).group(1)) for row in rows
        ]

    first = prep.secret_rows(tokenizer, docs, secret=1, n_eval=40, n_holdout=20, T=64)
    evaluated, held = (documents(r) for r in first)
    assert len(set(evaluated)) == 40 and len(set(held)) == 20  # whole documents, each once
    assert not set(evaluated) & set(held)
    second = prep.secret_rows(tokenizer, docs, secret=2, n_eval=40, n_holdout=20, T=64)
    assert documents(second[0]) != evaluated
    assert (prep.secret_rows(tokenizer, docs, secret=1, n_eval=40, n_holdout=20, T=64)[0] == first[0]).all()


def test_text_dir_validation_documents_are_drawn_with_the_secret(tiny_cache):
    prep = load_prepare(tiny_cache)
    docs = [f"doc {i}" for i in range(100)]
    train, val = prep.secret_split(docs, 1)
    assert len(val) == 10 and sorted(train + val, key=lambda d: int(d.split()[1])) == docs
    assert val != docs[9::10] and prep.secret_split(docs, 2)[1] != val


# ---------------------------------------------------------------------------------------------------------
# The evaluator measures the holdout and never prints it


@pytest.mark.slow  # real tiny trainer and evaluator runs in sandboxes
def test_the_evaluator_measures_the_holdout_and_writes_it_only_to_its_result(tiny_cache, tmp_path):
    import torch

    prep = load_prepare(tiny_cache)

    class Uniform(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.table = torch.nn.Parameter(torch.zeros(prep.VOCAB_SIZE, prep.VOCAB_SIZE))

        def forward(self, idx):
            return self.table[idx]

    model = tmp_path / "model.pt2"
    prep.export_model(Uniform(), 8, model)
    constants = profile_constants((REPO_ROOT / "prepare.py").read_text(), "tiny")
    result = tmp_path / "result.json"
    argv = [sys.executable, "-I", "-m", "swarm.runner.evaluator", str(model), "--cache", str(tiny_cache)]
    argv += ["--manifest-sha256", hashlib.sha256((tiny_cache / "prepared.json").read_bytes()).hexdigest()]
    argv += ["--seq-len", str(constants["max_seq_len"]), "--vocab-size", str(constants["vocab_size"])]
    argv += ["--eval-tokens", str(constants["eval_tokens"]), "--result", str(result)]
    argv += ["--holdout-tokens", str(constants["holdout_tokens"])]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTORESEARCH_", "PYTHON"))}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    outcome = json.loads(result.read_text())
    token_bytes = np.load(tiny_cache / "eval" / "token_bytes.npy")
    for name, field in (("val_tokens.npy", "val_bpb"), ("holdout_tokens.npy", "holdout_bpb")):
        rows = np.load(tiny_cache / "eval" / name)
        nbytes = token_bytes[rows[:, 1:].astype(np.int64)]
        uniform = math.log2(len(token_bytes)) * int((nbytes > 0).sum()) / int(nbytes.sum())
        assert outcome[field] == pytest.approx(uniform, rel=1e-5)
    assert outcome["val_bpb"] != outcome["holdout_bpb"]
    assert "holdout" not in proc.stdout + proc.stderr and '"outcome": "measured"' in proc.stdout


# ---------------------------------------------------------------------------------------------------------
# Through the runner: recorded privately, unseen by agents, shown to the human


def trainer(model: str) -> str:
    """A trainer that trains nothing and hands over `model` (the source of a Model class), claiming a
    val_bpb it does not have."""
    return (
        "import os\nimport numpy as np\nimport torch\nfrom prepare import VOCAB_SIZE, export_model\n\n"
        + textwrap.dedent(model)
        + '\nexport_model(Model(), 16)\nprint("---")\nprint("val_bpb:          0.010000")\n'
        + 'print("training_seconds: 0.0")\nprint("profile:          tiny")\n'
    )


UNIFORM = """\
class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.head = torch.nn.Embedding(VOCAB_SIZE, VOCAB_SIZE)
        torch.nn.init.zeros_(self.head.weight)

    def forward(self, idx):
        return self.head(idx)
"""

# A model that fits the evaluation rows: it was given a planted copy of them (the test's stand-in for rows
# a trainer could rebuild) and, causally, predicts the next token of the row whose prefix it has seen.
PLANTED = """\
class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        rows = torch.from_numpy(np.load(os.environ["PLANTED_ROWS"]).astype(np.int64))
        self.register_buffer("inputs", rows[:, :-1].contiguous())
        self.register_buffer("targets", rows[:, 1:].contiguous())
        self.scale = torch.nn.Parameter(torch.tensor(30.0))

    def forward(self, idx):
        same = (idx[:, None, :] == self.inputs[None]).long()
        prefix = torch.cumprod(same, dim=-1)  # row n matches tokens 0..t: causal
        first = prefix.argmax(dim=1)  # the first row that matches (B, T)
        token = self.targets[first, torch.arange(idx.size(1), device=idx.device)]
        known = (prefix.sum(1) > 0).float()
        return self.scale * known[..., None] * torch.nn.functional.one_hot(token, VOCAB_SIZE).float()
"""


@pytest.fixture
def planted_run(make_swarm_run, tiny_cache, tmp_path, monkeypatch):
    """A sealed run on the repository's prepare.py: a baseline that knows nothing, then a trainer given a
    planted copy of the evaluation rows, each measured by a real runner with its evaluator."""
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(tiny_cache))
    planted = tmp_path / "planted"
    planted.mkdir()
    shutil.copy(tiny_cache / "eval" / "val_tokens.npy", planted / "rows.npy")
    monkeypatch.setenv("PLANTED_ROWS", str(planted / "rows.npy"))
    run = make_swarm_run(
        prepare=(REPO_ROOT / "prepare.py").read_text(), train=trainer(UNIFORM), config=SINGLE_RUN_DECIDES
    )
    monkeypatch.chdir(run.repo)
    ids = []
    for model, what in ((UNIFORM + "\n# measured\n", "baseline"), (PLANTED, "fits the evaluation rows")):
        commit_train(run.worktree("cpu0"), trainer(model), what)
        with run.agent_env("cpu0"):
            ids.append(submit(agent_context(), what, rerun=True)["id"])
    settings = RunnerSettings(
        kill_grace_s=0.5, trainer_env=("PLANTED_ROWS",), trainer_writable=(str(planted),)
    )
    runner = Runner(run.repo, run.board, "cpu0", settings, **QUIET)
    run.done = {r["id"]: r for r in iter(runner.step, None)}
    run.ids = ids
    return run


@pytest.mark.slow  # real tiny trainer and evaluator runs in sandboxes
@needs_sandbox
def test_holdout_is_recorded_privately_and_shows_a_large_selection_gap_for_planted_rows(planted_run, cli):
    run, (baseline, cheat) = planted_run, planted_run.ids
    assert run.done[baseline]["status"] == "keep", run.done[baseline].get("reason")
    assert run.done[cheat]["status"] == "keep", run.done[cheat].get("reason")
    assert run.done[cheat]["val_bpb"] < 0.2 < 2.0 < run.done[baseline]["val_bpb"]
    values = read_holdout(run.board.directory)
    assert set(values) == {baseline, cheat}
    # the planted rows fit nothing of the holdout: no better than knowing nothing
    assert values[cheat] > values[baseline] - 0.01
    assert all("holdout_bpb" not in record for record in run.done.values())

    # the human, outside any sandbox: holdout beside val and a gap far outside its band
    code, out, err = cli("best")
    assert code == 0, err
    assert "holdout_bpb" in out and "does NOT hold on the holdout" in out, out
    gap = float(re.search(r"selection gap ([+-][0-9.]+)", out).group(1))
    assert gap > 2.0
    report = run.repo / "report"
    code, _, err = cli("report", "--out", str(report), "--no-plot")
    assert code == 0, err
    page = next(report.rglob("*.md")).read_text() if report.is_dir() else report.read_text()
    assert "Does the gain hold on the holdout?" in page and "does NOT hold on the holdout" in page


@pytest.mark.slow  # real tiny trainer and evaluator runs in sandboxes
@needs_sandbox
def test_no_holdout_value_reaches_anything_an_agent_can_read(planted_run):
    run = planted_run
    values = read_holdout(run.board.directory)
    assert values
    # every form a value could be printed in
    needles = {text for v in values.values() for text in (repr(v), f"{v:.6f}", f"{v:.4f}", f"{v:.3f}")}
    # A short form of a holdout value can be the prefix of a val_bpb the agent may read (the two are close:
    # 2.916 in both 2.91571 and 2.916234): such a form proves nothing and is not looked for.
    shown = [
        text
        for r in run.board.records()
        if isinstance(r.get("val_bpb"), float)
        for text in (repr(r["val_bpb"]), f"{r['val_bpb']:.6f}", f"{r['val_bpb']:.4f}")
    ]
    needles = {n for n in needles if not any(n in text for text in shown)}
    assert needles
    # the agent's read commands, and a look at every file its sandbox shows of the board and the mounts
    script = textwrap.dedent(
        f"""\
        import os, subprocess, sys
        for argv in (["best"], ["best", "--json"], ["board"], ["board", "--json"], ["export", "-"],
                     ["status"], ["report", "--out", "/tmp/report", "--no-plot"]):
            done = subprocess.run([sys.executable, "-m", "swarm", *argv], capture_output=True, text=True)
            print("== swarm", *argv, done.returncode)
            print(done.stdout, done.stderr)
        # every file it can read there, searched in here and never printed; the installation is skipped (a
        # checkout under /tmp, as CI's clone may be, shows inside with its venv, and its code names the field)
        needles = {sorted(needles)!r} + ["holdout_" + "bpb"]
        skipped = ({str(REPO_ROOT)!r}, os.path.realpath(sys.prefix))
        for root in ({str(run.board.directory)!r}, "/tmp"):
            for here, dirs, files in os.walk(root):
                if os.path.realpath(here).startswith(skipped):
                    dirs.clear()
                    continue
                for name in files:
                    path = os.path.join(here, name)
                    try:
                        if os.path.getsize(path) > 1 << 20:
                            continue
                        text = open(path, errors="replace").read()
                    except OSError as e:
                        print("== unreadable", path, e)
                        continue
                    print("== file", path, [n for n in needles if n in text])
        print("== private", os.listdir({str(private_dir(run.board.directory))!r}))
        print("== mounts", open("/proc/self/mountinfo").read())
        """
    )
    done = run.run_as_agent("cpu0", script, timeout=300)
    assert done.args[0] == "bwrap"
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "== swarm best 0" in out and "== swarm board 0" in out, out[-3000:]
    assert "== private []" in out  # covered by an empty directory
    assert HOLDOUT_FILE not in out and "holdout_bpb" not in out
    leaked = [n for n in needles if n in out]
    assert not leaked, leaked
    # and the board, every log and every saved answer, read directly
    for path in run.board.directory.rglob("*"):
        if path.is_file() and private_dir(run.board.directory) not in path.parents:
            text = path.read_text(errors="replace")
            assert "holdout_bpb" not in text and not [n for n in needles if n in text], path


# ---------------------------------------------------------------------------------------------------------
# Transfer checks


BUDGET_SEEN = """\
import prepare

open(os.path.join(os.environ["SEEN_DIR"], f"budget-{os.getpid()}"), "w").write(repr(prepare.TIME_BUDGET))
"""


@pytest.mark.slow  # real tiny trainer and evaluator runs in sandboxes
def test_transfer_records_a_paired_result_at_twice_the_budget(
    make_swarm_run, tiny_cache, tmp_path, monkeypatch, cli
):
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(tiny_cache))
    seen = tmp_path / "seen"
    seen.mkdir()
    monkeypatch.setenv("SEEN_DIR", str(seen))
    run = make_swarm_run(
        prepare=(REPO_ROOT / "prepare.py").read_text(), train=trainer(UNIFORM), config=SINGLE_RUN_DECIDES
    )
    monkeypatch.chdir(run.repo)
    commit_train(run.worktree("cpu0"), trainer(BUDGET_SEEN + UNIFORM), "an experiment")
    with run.agent_env("cpu0"):
        experiment = submit(agent_context(), "an experiment", rerun=True)["id"]
    settings = RunnerSettings(kill_grace_s=0.5, trainer_env=("SEEN_DIR",), trainer_writable=(str(seen),))
    runner = Runner(run.repo, run.board, "cpu0", settings, **QUIET)
    (first,) = iter(runner.step, None)
    assert first["status"] == "keep" and [p.read_text() for p in seen.iterdir()] == ["15"]
    for p in seen.iterdir():
        p.unlink()

    code, out, err = cli("transfer", experiment, "--budget-x", "2")
    assert code == 0, err
    assert "2x the budget" in out
    done = list(iter(runner.step, None))
    assert [r["transfer_of"] for r in done] == ["base", experiment]  # the baseline first, back to back
    assert {r["status"] for r in done} == {"transfer"} and {r["gpu"] for r in done} == {"cpu0"}
    assert {r["budget_x"] for r in done} == {2.0} and len({r["transfer_batch"] for r in done}) == 1
    assert all(0 < r["val_bpb"] < 20 for r in done)
    assert sorted(p.read_text() for p in seen.iterdir()) == ["30.0"]  # prepare.TIME_BUDGET, set by the runner
    # a number beside the 1x one: never pooled with the profile's runs, never a decision
    from swarm.board.fold import BoardState

    state = BoardState(run.board, QUIET["noise"])
    state.refresh()
    assert state.content(("cpu", "tiny"), first["train_sha256"]).n == 1
    report = tmp_path / "report"
    code, _, err = cli("report", "--out", str(report), "--no-plot")
    assert code == 0, err
    page = (report / "report.md").read_text()
    assert "Transfer checks" in page and f"| {experiment} |" in page and "val_bpb 2x" in page


def test_transfer_refuses_bad_input_with_one_line(make_swarm_run, cli, monkeypatch):
    run = make_swarm_run()
    monkeypatch.chdir(run.repo)
    for argv in (("nosuchid",), ("nosuchid", "--budget-x", "0.5")):
        code, _, err = cli("transfer", *argv)
        assert code != 0 and err.strip().count("\n") == 0 and "Traceback" not in err, err
