"""Red team: each way an agent could change a recorded result, as a real commit through a real runner. Each
ends rejected, or measured honestly by the runner.

Sealed runs use the repository's prepare.py, the tiny cache and small hand-written trainers (a bigram model
handed over with prepare.export_model) so that a job costs seconds; attacks on what happens around the
trainer (the clock, the log, git, seeds, text) use the stand-in trainers with reported evaluation, which
exercise the same runner code. The evaluator's own defences (hostile archives, stateful or non-causal
programs) are tested model by model in test_evaluator.py; the real train.py through the sealed path in
test_tiny_end_to_end.py.
"""

import hashlib
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from swarm.agents.protocol import agent_context, submit
from swarm.board.experiments import (
    BAD_MODEL,
    CLOCK,
    LOOKS_AHEAD,
    OUTPUT_LIMIT,
    PINNED_CODE,
    SEED_ONLY,
    evolve,
)
from swarm.board.noise import NoiseSettings
from swarm.errors import DataError, SwarmError
from swarm.runner.service import Runner, RunnerSettings
from tests.support.swarm_run import (
    STAND_IN_PREPARE,
    STAND_IN_SETTINGS,
    commit_train,
    git,
    latest,
    stand_in_train,
)
from tests.support.target import REPO_ROOT, uniform_bpb

# These tests are about what is measured, not the keep rule: one run decides (`[noise] rule = "single"`).
QUIET = dict(noise=NoiseSettings(rule="single"), log=lambda line: None)


def handwritten(
    forward: str = "return self.head(self.embed(idx))", attack: str = "", claim: str = "0.010000"
) -> str:
    """A trainer that trains nothing: a bigram model with a zero head (every token equally likely), handed over as
    train.py must, after `attack`; it claims val_bpb `claim` in its summary."""
    head = textwrap.dedent(
        """\
        import torch
        import prepare
        from prepare import VOCAB_SIZE, export_model


        class Model(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = torch.nn.Embedding(VOCAB_SIZE, 8)
                self.head = torch.nn.Linear(8, VOCAB_SIZE)
                torch.nn.init.zeros_(self.head.weight)
                torch.nn.init.zeros_(self.head.bias)

            def forward(self, idx):
        """
    )
    tail = textwrap.dedent(
        f"""\
        export_model(Model(), 16)
        print("---")
        print("val_bpb:          {claim}")
        print("training_seconds: 0.0")
        print("profile:          tiny")
        """
    )
    return head + f"        {forward}\n\n\n" + textwrap.dedent(attack) + tail


def fake_summary(training_seconds: float) -> str:
    """The issue's first attack: no training, no model, just the summary block."""
    return (
        f'print("---")\nprint("val_bpb:          0.100000")\nprint("training_seconds: {training_seconds}")\n'
    )


# What the attackers did to prepare.py's module, now that the metric is not there any more: change
# its globals (evaluation tokens, byte lengths), replace its functions, rewrite prepare.py in the run
# directory, import it and put the original bytes back.
TAMPER = """\
prepare.EVAL_TOKENS = prepare.MAX_SEQ_LEN
prepare.token_byte_lengths = lambda tokenizer: None
original = open("prepare.py", "rb").read()
with open("prepare.py", "a") as f:
    f.write("\\nEVAL_TOKENS = 1\\n")
import importlib

importlib.reload(prepare)
open("prepare.py", "wb").write(original)
"""

LOOK_AHEAD = "return self.head(self.embed(idx)) + 30.0 * torch.nn.functional.one_hot(torch.roll(idx, -1, 1), VOCAB_SIZE).float()"

POISON = """\
import os
import numpy as np

path = os.path.join(os.environ["AUTORESEARCH_CACHE_DIR"], "eval", "token_bytes.npy")
np.save(path, np.load(path) * 2)  # twice the bytes: every later val_bpb of every agent halves
"""


@pytest.fixture
def sealed(make_swarm_run, tiny_cache, tmp_path, monkeypatch):
    """A run on the repository's prepare.py with its own copy of the tiny cache (an attack may poison it)."""
    cache = tmp_path / "cache"
    shutil.copytree(tiny_cache, cache)
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(cache))
    run = make_swarm_run(prepare=(REPO_ROOT / "prepare.py").read_text(), train=handwritten())
    run.cache = cache
    return run


def queue(run, source: str, description: str, agent: str = "cpu0") -> str:
    commit_train(run.worktree(agent), source, description)
    with run.agent_env(agent):
        return submit(agent_context(), description, rerun=True)["id"]


@pytest.mark.slow  # the real tiny trainer in a sandbox
def test_claims_tampering_and_look_ahead_end_invalid_or_measured_honestly(sealed):
    ids = {
        "fake summary": queue(sealed, fake_summary(14.9), "fake summary"),
        "no model": queue(sealed, fake_summary(0.0), "fake summary, no time claimed"),
        "tamper": queue(sealed, handwritten(attack=TAMPER), "tamper"),
        "look ahead": queue(sealed, handwritten(forward=LOOK_AHEAD), "look ahead"),
    }
    runner = Runner(sealed.repo, sealed.board, "cpu0", RunnerSettings(kill_grace_s=0.5), **QUIET)
    done = {r["id"]: r for r in iter(runner.step, None)}
    assert set(done) == set(ids.values())
    fake, nothing, tamper, ahead = (
        done[ids[k]] for k in ("fake summary", "no model", "tamper", "look ahead")
    )

    assert fake["status"] == "invalid" and fake["reason"].startswith(CLOCK), fake["reason"]
    assert "claims 14.9 s of training" in fake["reason"] and fake["val_bpb"] is None
    assert nothing["status"] == "invalid" and nothing["reason"].startswith(BAD_MODEL), nothing["reason"]
    assert "handed over no model" in nothing["reason"] and nothing["val_bpb"] is None
    # the claimed 0.01 is ignored: the evaluator measured the uniform model the trainer handed over
    assert tamper["status"] == "keep" and tamper["evaluation"] == "sealed", tamper["reason"]
    assert tamper["val_bpb"] == pytest.approx(uniform_bpb(sealed.cache), rel=1e-7)  # float32 ln(2048)
    assert ahead["status"] == "invalid" and ahead["reason"].startswith(LOOKS_AHEAD), ahead["reason"]
    assert ahead["val_bpb"] is None


PEEK = "return self.head(self.embed(idx)) + 30.0 * torch.nn.functional.one_hot(torch.roll(idx, -1, 1), VOCAB_SIZE).float() * {where}"
SPARSE_PEEKS = {
    "1 in 64": "(torch.arange(idx.size(1)) % 64 == 0)[None, :, None].float()",
    "rows": "(idx[:, 1:2] % 32 == 0)[:, :, None].float()",  # rows whose first text token has a property
}


@pytest.mark.slow  # the real tiny trainer in a sandbox
def test_sparse_and_row_conditional_look_ahead_is_caught_through_the_runner(sealed):
    """Issue 23's sparse peeks, submitted as train.py: next-token look-ahead at 1 position in 64, or only in
    the rows whose first text token is a multiple of 32 (about 1 row in 25), each `invalid`: the batches
    are the evaluator's, shuffled with a seed the model cannot know, and the cuts ignore position and row."""
    ids = {
        where: queue(sealed, handwritten(forward=PEEK.format(where=mask)), where)
        for where, mask in SPARSE_PEEKS.items()
    }
    runner = Runner(sealed.repo, sealed.board, "cpu0", RunnerSettings(kill_grace_s=0.5), **QUIET)
    done = {r["id"]: r for r in iter(runner.step, None)}
    for where, eid in ids.items():
        assert done[eid]["status"] == "invalid", (where, done[eid]["reason"])
        assert done[eid]["reason"].startswith(LOOKS_AHEAD) and done[eid]["val_bpb"] is None


def test_a_sandboxed_trainer_cannot_write_the_cache(sealed):
    """In its sandbox the data cache is read-only: the poisoning write fails, the run ends as a crash, and the
    cache still matches its manifest."""
    before = (sealed.cache / "eval" / "token_bytes.npy").read_bytes()
    eid = queue(sealed, handwritten(attack=POISON), "poison")
    runner = Runner(sealed.repo, sealed.board, "cpu0", RunnerSettings(kill_grace_s=0.5), **QUIET)
    runner.step()
    record = latest(sealed.board, eid)
    assert record["status"] == "crash" and record["val_bpb"] is None, record["reason"]
    assert (sealed.cache / "eval" / "token_bytes.npy").read_bytes() == before


@pytest.mark.slow  # the real tiny trainer in a sandbox
def test_an_unsealed_trainer_that_writes_the_cache_stops_the_runner_and_records_nothing(sealed):
    """Without a sandbox (`swarm spawn --unsealed`) the write lands, and the manifest check catches it."""
    from dataclasses import replace

    from swarm.board.run_record import write_run_record

    write_run_record(sealed.board, replace(sealed.run, unsealed=True))
    eid = queue(sealed, handwritten(attack=POISON), "poison")
    runner = Runner(sealed.repo, sealed.board, "cpu0", RunnerSettings(kill_grace_s=0.5), **QUIET)
    with pytest.raises(DataError, match="does not match its hash"):
        runner.step()
    record = latest(sealed.board, eid)
    assert record["status"] == "queued" and "does not match" in record["reason"] and record["val_bpb"] is None
    restarted = Runner(sealed.repo, sealed.board, "cpu0", RunnerSettings(), **QUIET)
    try:
        with pytest.raises(DataError, match="token_bytes.npy does not match"):
            restarted.start()  # a restarted runner refuses the poisoned cache too
    finally:
        restarted.lock.release()


# ---------------------------------------------------------------------------------------------------------
# Around the trainer: stand-ins with reported evaluation exercise the same runner code


def stand_in_runner(run, **settings):
    return Runner(run.repo, run.board, "cpu0", RunnerSettings(**{**STAND_IN_SETTINGS, **settings}), **QUIET)


@pytest.mark.slow  # a trainer that sleeps twice the budget on the wall clock
def test_the_runners_clock_bounds_claimed_training_and_overhead(make_swarm_run):
    run = make_swarm_run()  # tiny budget 2 s
    baseline = queue(run, stand_in_train(), "baseline")  # the base's train.py: its overhead is learned
    liar = queue(run, stand_in_train(sleep_s=4.0, marker="liar"), "trains for 2x budget, claims nothing")
    claim = queue(run, stand_in_train(training_seconds=1.9, marker="claim"), "claims more than it ran")
    runner = stand_in_runner(run, overhead_default_s=100.0, overhead_slack=0.0, overhead_slack_s=1.5)
    done = {r["id"]: r for r in iter(runner.step, None)}
    assert done[baseline]["status"] == "keep"
    assert done[liar]["status"] == "invalid" and done[liar]["reason"].startswith(CLOCK)
    assert "allowance" in done[liar]["reason"]  # learned from the baseline, not the default 100 s
    assert done[claim]["status"] == "invalid" and "claims 1.9 s of training" in done[claim]["reason"]


def test_output_past_the_limit_stops_the_run_and_the_log_keeps_only_the_limit(make_swarm_run):
    run = make_swarm_run()
    eid = queue(run, "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", "floods the log")
    (record,) = list(iter(stand_in_runner(run, log_limit_mb=1.0).step, None))
    assert record["id"] == eid and record["status"] == "invalid"
    assert record["reason"].startswith(OUTPUT_LIMIT)
    assert (run.board.directory / record["log"]).stat().st_size <= 1_000_000 + 1000  # the limit + the header


def test_replace_refs_filters_and_hooks_in_the_shared_git_change_nothing(make_swarm_run, tmp_path):
    run = make_swarm_run(train=stand_in_train(val_bpb=1.0))
    worktree = run.worktree("cpu0")
    eid = queue(run, stand_in_train(val_bpb=0.9, marker="honest"), "honest")
    commit = git(worktree, "rev-parse", "HEAD")
    committed = git(worktree, "rev-parse", f"{commit}:train.py")
    marker = tmp_path / "hook-ran"

    def blob(text: str) -> str:
        return subprocess.run(
            ["git", "hash-object", "-w", "--stdin"], cwd=worktree, input=text, capture_output=True, text=True
        ).stdout.strip()

    # as an agent could from its shell: the object store and .git/config are shared by every worktree
    git(worktree, "replace", committed, blob(stand_in_train(val_bpb=0.1, marker="swapped")))
    base_prepare = git(worktree, "rev-parse", f"{run.base}:prepare.py")
    git(
        worktree,
        "replace",
        base_prepare,
        blob(STAND_IN_PREPARE.replace('"time_budget": 2', '"time_budget": 999')),
    )
    git(worktree, "config", "filter.evil.smudge", "sed s/0.9/0.05/")
    git(worktree, "config", "filter.evil.clean", "cat")
    git(worktree, "config", "core.fsmonitor", f"touch {marker}")
    common = run.repo / ".git"
    (common / "info").mkdir(exist_ok=True)
    (common / "info" / "attributes").write_text("train.py filter=evil\n")
    assert "0.1" in git(worktree, "show", f"{commit}:train.py")  # the replace ref is live for plain git

    (record,) = list(iter(stand_in_runner(run).step, None))
    assert record["id"] == eid and record["status"] == "keep"
    assert record["val_bpb"] == pytest.approx(0.9)  # not 0.1 (replaced) nor 0.05 (smudged)
    honest = stand_in_train(val_bpb=0.9, marker="honest").encode()
    assert record["train_sha256"] == hashlib.sha256(honest).hexdigest()
    assert record["prepare_sha256"] == hashlib.sha256(STAND_IN_PREPARE.encode()).hexdigest()
    assert not marker.exists()


def test_an_object_rewritten_in_the_shared_store_is_never_run(make_swarm_run):
    """Agents may write .git/objects (committing needs it) and git does not re-hash what it reads: an agent
    overwrites the loose object of its committed train.py after submitting. The runner hashes every object
    it reads, so the rewritten content never runs and nothing is measured."""
    import zlib

    run = make_swarm_run(train=stand_in_train(val_bpb=1.0))
    worktree = run.worktree("cpu0")
    eid = queue(run, stand_in_train(val_bpb=0.9, marker="honest"), "honest")
    blob = git(worktree, "rev-parse", "HEAD:train.py")
    loose = Path(git(worktree, "rev-parse", "--git-common-dir"))
    loose = (loose if loose.is_absolute() else worktree / loose) / "objects" / blob[:2] / blob[2:]
    evil = stand_in_train(val_bpb=0.1, marker="honest").encode()
    loose.chmod(0o644)
    loose.write_bytes(zlib.compress(b"blob %d\0" % len(evil) + evil))
    assert "0.1" in git(worktree, "cat-file", "blob", blob)  # plain git reads the rewritten object

    (record,) = list(iter(stand_in_runner(run).step, None))
    assert record["id"] == eid and record["status"] == "crash" and record["val_bpb"] is None
    assert "does not match its content" in record["reason"], record["reason"]
    assert run.events() == []  # the trainer never started


def test_a_seed_only_change_is_invalid_and_never_runs(make_swarm_run):
    seeded = stand_in_train() + "\nimport random\n\nSEED = 0\nrandom.seed(SEED)\n"
    run = make_swarm_run(train=seeded)
    eid = queue(run, seeded.replace("SEED = 0", "SEED = 1"), "a luckier seed")
    (record,) = list(iter(stand_in_runner(run).step, None))
    assert record["id"] == eid and record["status"] == "invalid" and record["reason"].startswith(SEED_ONLY)
    assert run.events() == []


def test_agent_text_is_escaped_in_every_output_and_descriptions_are_bounded(make_swarm_run, cli, tmp_path):
    run = make_swarm_run()
    hostile = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\u202eevil\x9b"
    eid = queue(run, stand_in_train(marker="x"), hostile)
    list(iter(stand_in_runner(run).step, None))
    record = latest(run.board, eid)
    # an agent with write access to the board could also forge the fields the runner writes
    run.board.append(
        evolve(record, commit="\x1b[2J" + record["commit"], agent="\x1b[5mcpu0", gpu="cpu0\x1b[0m")
    )
    with run.agent_env("cpu0"):
        outputs = [cli(*args)[1] for args in (("board",), ("best",), ("board", "--json"), ("best", "--json"))]
        code, _, _ = cli("export", str(tmp_path / "results.tsv"))
        assert code == 0
        outputs.append((tmp_path / "results.tsv").read_text())
        for text in outputs:
            assert not any(ch in text for ch in "\x1b\x07\x9b\u202e"), text
        assert "\\x1b" in outputs[0] or "\\x1b" in outputs[1]
        rows = outputs[-1].splitlines()
        assert all(row.count("\t") == 6 for row in rows)
        with pytest.raises(SwarmError, match="at most 500"):
            submit(agent_context(), "x" * 501)


def test_trainers_cannot_read_the_validation_data(make_swarm_run, tiny_cache, monkeypatch):
    """The trainer's sandbox covers <cache>/eval with an empty directory (swarm.runner.sandbox)."""
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(tiny_cache))
    reader = (
        "import os\n"
        "path = os.path.join(os.environ.get('AUTORESEARCH_CACHE_DIR', '/nonexistent'), 'eval', 'val_tokens.npy')\n"
        "try:\n    open(path, 'rb').read(1)\n    read = 'read'\nexcept OSError:\n    read = 'denied'\n"
        "open(os.path.join(os.environ['STANDIN_STATE_DIR'], 'eval-read'), 'w').write(read)\n"
    ) + stand_in_train()
    run = make_swarm_run()
    queue(run, reader, "reads the validation rows")
    list(iter(stand_in_runner(run).step, None))
    assert (run.state_dir / "eval-read").read_text() == "denied"


def test_a_base_prepare_that_is_not_the_pinned_one_is_invalid(make_swarm_run):
    from dataclasses import replace

    from swarm.board.run_record import write_run_record

    run = make_swarm_run()
    write_run_record(run.board, replace(run.run, prepare_sha256="0" * 64))  # what spawn pinned
    queue(run, stand_in_train(marker="x"), "any")
    (record,) = list(iter(stand_in_runner(run).step, None))
    assert record["status"] == "invalid" and record["reason"].startswith(PINNED_CODE)
    assert run.events() == []


def test_spawn_pins_the_base_prepare_and_the_data_manifest(make_swarm_run, tiny_cache, tmp_path, monkeypatch):
    from swarm.runner.sealed import spawn_pins

    run = make_swarm_run()
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(tiny_cache))
    prepare_sha, data_sha = spawn_pins(run.repo, run.base, "tiny")
    assert prepare_sha == hashlib.sha256(STAND_IN_PREPARE.encode()).hexdigest()
    assert data_sha == hashlib.sha256((tiny_cache / "prepared.json").read_bytes()).hexdigest()
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(tmp_path / "unprepared"))
    assert spawn_pins(run.repo, run.base, "tiny")[1] is None


# ---------------------------------------------------------------------------------------------------------
# The machine's faults are the runner's: requeued, the runner stops, nothing recorded


@pytest.fixture
def broken_compiler(sealed, tmp_path, monkeypatch):
    """This machine with a C++ compiler that fails, first on PATH; the run unsealed, so that the evaluator
    runs with the runner's PATH (in its sandbox the machine's own compiler would be found)."""
    from dataclasses import replace

    from swarm.board.run_record import write_run_record

    bin_dir = tmp_path / "broken-bin"
    bin_dir.mkdir()
    for name in ("g++", "c++", "gcc", "cc", "clang++"):
        (bin_dir / name).write_text("#!/bin/sh\nexit 1\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    write_run_record(sealed.board, replace(sealed.run, unsealed=True))
    return sealed


@pytest.mark.slow  # a runner over a broken compiler (test_evaluator keeps the machine-fault rule fast)
def test_a_compiler_that_fails_stops_the_runner_and_requeues_the_job(broken_compiler):
    """The runner evaluates as on CUDA (`cuda_mirror`) on a machine whose C++ compiler fails: the
    evaluator's device check fails before the model is read, the job is queued again and the runner stops
    with the cause; no result is recorded."""
    from swarm.errors import DeviceFault

    sealed = broken_compiler
    eid = queue(sealed, handwritten(), "honest")
    settings = RunnerSettings(kill_grace_s=0.5, cuda_mirror=True)
    runner = Runner(sealed.repo, sealed.board, "cpu0", settings, **QUIET)
    with pytest.raises(DeviceFault, match="device \\(cpu\\) fails its check"):
        runner.step()
    record = latest(sealed.board, eid)
    assert record["status"] == "queued" and record["val_bpb"] is None, record
    assert record["reason"].startswith("requeued: ") and "fails its check" in record["reason"]


# ---------------------------------------------------------------------------------------------------------
# The clock buys no training (swarm.runner.clock): what lies outside the timed loop is on the runner's clock


def data_trainer(
    before_s: float = 0.0,
    loop_s: float = 10.0,
    after_s: float = 0.0,
    after_commit: int = 0,
    commit: bool = True,
) -> str:
    """A trainer that really trains (a bigram on prepare's batches): `before_s` seconds of untimed steps
    before its timed loop of `loop_s` (the training_seconds it reports), `after_s` after it, then it hands
    its model over; with `after_commit` it takes that many steps after the commit and saves the model
    again; without `commit` it saves its own export, never committing."""
    return textwrap.dedent(
        f"""\
        import time
        import torch
        import prepare
        from prepare import MAX_SEQ_LEN, VOCAB_SIZE, Tokenizer, hand_over, make_dataloader, trace_model

        print("shards visible before asking:", len(prepare.list_parquet_files()), flush=True)


        class Model(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = torch.nn.Embedding(VOCAB_SIZE, 16)
                self.head = torch.nn.Linear(16, VOCAB_SIZE)

            def forward(self, idx):
                return self.head(self.embed(idx))


        model = Model()
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        loader = make_dataloader(Tokenizer.from_directory(), 4, MAX_SEQ_LEN, "train")
        steps = 0


        def step():
            global steps
            x, y, _ = next(loader)
            loss = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
            loss.backward()
            opt.step()
            opt.zero_grad()
            steps += 1


        def train_for(seconds):
            end = time.time() + seconds
            while time.time() < end:
                step()


        train_for({before_s!r})  # untimed, before the loop
        train_for({loop_s!r})  # the timed loop
        train_for({after_s!r})  # untimed, after the loop
        program = trace_model(model, 4)
        if {commit!r}:
            hand_over(program)
        else:
            torch.export.save(program, "model.pt2")
        for _ in range({after_commit!r}):
            step()
        if {after_commit!r}:
            torch.export.save(program, "model.pt2")  # the same program: its tensors are the trained weights
        print("---")
        print("training_seconds: {loop_s}")
        print("num_steps:        " + str(steps))
        print("profile:          tiny")
        """
    )


@pytest.mark.slow  # the real tiny trainer in a sandbox
def test_training_outside_the_timed_loop_is_on_the_runners_clock_or_rejected(sealed):
    """The issue's untimed steps before and after the loop, steps after the hand-over, a hand-over that
    skips the commit; the tiny budget is 15 s (limit 18 s)."""
    ids = {
        "honest": queue(sealed, data_trainer(loop_s=8.0), "honest"),
        "before": queue(sealed, data_trainer(before_s=6.0, loop_s=14.0), "6 s of steps before the loop"),
        "after": queue(sealed, data_trainer(loop_s=14.0, after_s=6.0), "6 s of steps after the loop"),
        "after commit": queue(sealed, data_trainer(loop_s=1.0, after_commit=50), "steps after the commit"),
        "no commit": queue(sealed, data_trainer(loop_s=1.0, commit=False), "its own export, no commit"),
    }
    runner = Runner(sealed.repo, sealed.board, "cpu0", RunnerSettings(kill_grace_s=0.5), **QUIET)
    done = {r["id"]: r for r in iter(runner.step, None)}
    honest, before, after, late, uncommitted = (done[ids[k]] for k in ids)
    log = (sealed.board.directory / honest["log"]).read_text()
    assert "shards visible before asking: 0" in log  # nothing to train on before the runner's clock starts
    assert honest["status"] in MEASURED and 8.0 <= honest["window_seconds"] < 18.0, honest.get("reason")
    for record in (before, after):
        assert record["status"] == "invalid" and record["reason"].startswith(CLOCK), record.get("reason")
        assert "by the runner's clock" in record["reason"] and record["window_seconds"] > 18.0
    assert late["status"] == "invalid" and "not the ones committed" in late["reason"], late.get("reason")
    assert uncommitted["status"] == "invalid" and "without committing" in uncommitted["reason"]


def real_train(*edits: tuple[str, str]) -> str:
    """The repository's train.py with each (old, new) edit made once."""
    source = (REPO_ROOT / "train.py").read_text()
    for old, new in edits:
        assert old in source, old
        source = source.replace(old, new, 1)
    return source


MEASURED = ("keep", "discard", "marginal")


@pytest.mark.slow  # the real tiny trainer in a sandbox
def test_real_train_py_untimed_steps_are_invalid_and_one_slow_step_is_not(sealed):
    """`untimed_steps = 10` as an agent writes it into train.py (its first 10 steps off its clock) against
    the runner's clock; and an honest run whose last step is 2 s slower than the others (a loaded machine)
    stays measured."""
    untimed = real_train(
        ("    step = 0\n    while True:", "    step = 0\n    untimed = 0.0\n    while True:"),
        (
            "        training_time = training_elapsed()\n",
            "        untimed += dt if step <= 10 else 0.0\n        training_time = training_elapsed() - untimed\n",
        ),
    )
    slow = real_train(
        (
            "    training_time = training_elapsed()\n    t_export",
            "    time.sleep(2.0)  # a slow last step\n    training_time = training_elapsed()\n    t_export",
        )
    )
    ids = {
        "slow": queue(sealed, slow, "honest, one slow step"),
        "untimed": queue(sealed, untimed, "untimed_steps = 10"),
    }
    runner = Runner(sealed.repo, sealed.board, "cpu0", RunnerSettings(kill_grace_s=0.5), **QUIET)
    done = {r["id"]: r for r in iter(runner.step, None)}
    slow_run, untimed_run = done[ids["slow"]], done[ids["untimed"]]
    assert slow_run["status"] in MEASURED, (
        slow_run.get("reason"),
        (sealed.board.directory / slow_run["log"]).read_text()[-2000:],
    )
    assert untimed_run["status"] == "invalid" and untimed_run["reason"].startswith(CLOCK), untimed_run.get(
        "reason"
    )
    assert untimed_run["window_seconds"] > 18.0


def test_a_baseline_that_overran_the_allowance_still_teaches_it(make_swarm_run):
    """Issue 18: the allowance before a class's first baseline may be too small for it (a cold compile);
    the baseline run that overran it still teaches it, so the next one fits."""
    run = make_swarm_run(train=stand_in_train(sleep_s=1.0))  # 1 s of start-up, no training
    first = queue(run, stand_in_train(sleep_s=1.0), "baseline")
    again = queue(run, stand_in_train(sleep_s=1.0), "baseline again")
    runner = stand_in_runner(run, overhead_default_s=0.5, overhead_slack=0.5, overhead_slack_s=1.0)
    done = {r["id"]: r for r in iter(runner.step, None)}
    assert done[first]["status"] == "invalid" and "allowance of 0.5 s" in done[first]["reason"]
    assert done[again]["status"] == "keep", done[again].get("reason")
    log = (run.board.directory / done[again]["log"]).read_text()
    taught = float(log.split("overhead allowance ")[1].split("s")[0])
    assert taught == pytest.approx(done[first]["wall_seconds"] * 1.5 + 1.0, abs=0.06)  # logged to 0.1 s


@pytest.mark.slow  # the real tiny trainer in a sandbox
def test_a_trainer_failing_on_a_machine_whose_compiler_fails_is_the_machines_fault(broken_compiler):
    """The same broken machine, and a trainer that fails (as train.py's compile would on it): the
    evaluator's own device check decides that the machine failed, so the job is requeued, not `crash`."""
    from swarm.errors import DeviceFault

    sealed = broken_compiler
    eid = queue(sealed, "raise SystemExit('compile failed')\n", "fails on this machine")
    runner = Runner(
        sealed.repo, sealed.board, "cpu0", RunnerSettings(kill_grace_s=0.5, cuda_mirror=True), **QUIET
    )
    with pytest.raises(DeviceFault, match="fails its check"):
        runner.step()
    record = latest(sealed.board, eid)
    assert record["status"] == "queued" and record["val_bpb"] is None, record
