"""The runner's clock (swarm.runner.clock) with the repository's prepare.py at the other end: the window it
times, the shards it hands out only on request, the digest both ends compute, and a trainer that talks
nonsense. The sealed runs an agent would submit are in test_redteam_sealed.py."""

import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from swarm.runner.clock import MAX_MESSAGES, TrainingClock, program_digest, training_shards
from swarm.runner.trust import budget_limit, run_overhead
from tests.support.target import REPO_ROOT, tiny_env

TRAINER = textwrap.dedent(
    """\
    import os, sys, time
    import torch
    import prepare

    print("listed before asking:", len(prepare.list_parquet_files()), flush=True)
    time.sleep(1.0)  # start-up: not in the window
    shards = prepare.training_shards()
    read = lambda f: (open(f, "rb") if isinstance(f, os.PathLike) else f).read(4)  # a path without the clock
    print("handed out:", len(shards), "readable:", all(read(f) == b"PAR1" for f in shards), flush=True)
    batch = next(prepare.make_dataloader(prepare.Tokenizer.from_directory(), 2, 16, "train"))
    time.sleep(1.0)  # training: in the window

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(prepare.VOCAB_SIZE, 8)
            self.head = torch.nn.Linear(8, prepare.VOCAB_SIZE)
            self.register_buffer("scale", torch.ones(1))
            self.plain = torch.full((1,), 2.0)  # a tensor attribute: exported as a constant

        def forward(self, idx):
            return self.head(self.embed(idx)) * self.scale * self.plain

    prepare.export_model(Model(), 2)
    time.sleep(1.0)  # after the commit: not in the window
    """
)


def _run_trainer(tmp_path, cache, clock: TrainingClock | None, hide: bool) -> subprocess.CompletedProcess:
    (tmp_path / "train.py").write_text(TRAINER)
    (tmp_path / "prepare.py").write_bytes((REPO_ROOT / "prepare.py").read_bytes())
    env = tiny_env(cache, OMP_NUM_THREADS="1", **(clock.environment if clock else {}))
    if hide:  # the sandbox's tmpfs over <cache>/data, without a sandbox: point the cache at a copy without it
        env["AUTORESEARCH_CACHE_DIR"] = str(hide)
    proc = subprocess.Popen(
        [sys.executable, "train.py"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        pass_fds=(clock.child_fd,) if clock else (),
    )
    if clock:
        clock.listen()
    out, _ = proc.communicate(timeout=300)
    if clock:
        clock.close()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


@pytest.fixture
def cache_without_data(tiny_cache, tmp_path):
    """The tiny cache as a sandboxed trainer sees it: everything but data/ (symlinked)."""
    view = tmp_path / "view"
    view.mkdir()
    for entry in tiny_cache.iterdir():
        if entry.name != "data":
            (view / entry.name).symlink_to(entry)
    (view / "data").mkdir()
    return view


@pytest.mark.slow  # the real tiny trainer
def test_the_window_runs_from_the_handed_out_data_to_the_committed_weights(
    tiny_cache, cache_without_data, tmp_path
):
    import torch

    clock = TrainingClock(training_shards(tiny_cache))
    assert clock.shards, "the tiny cache has training shards"
    started = time.monotonic()
    done = _run_trainer(tmp_path, tiny_cache, clock, hide=cache_without_data)
    ended = time.monotonic()
    assert done.returncode == 0, done.stdout
    assert "listed before asking: 0" in done.stdout  # nothing to train on before the window
    assert f"handed out: {len(clock.shards)} readable: True" in done.stdout
    # one second of start-up before, one of "training" inside, one after: only the inside counts
    assert started + 1.0 <= clock.started_at < clock.committed_at <= ended - 1.0
    assert 1.0 <= clock.window_s < (ended - started) - 2.0
    # both ends compute the same digest: the trainer's of the program it saved, the runner's of it loaded
    program = torch.export.load(str(tmp_path / "model.pt2"))
    assert clock.digest == program_digest(program)
    assert "constant:plain" in _digest_names(program) and "state:scale" in _digest_names(program)


def _digest_names(program) -> set[str]:
    return {f"state:{k}" for k in program.state_dict} | {f"constant:{k}" for k in program.constants}


@pytest.mark.slow  # runs a trainer on the tiny data
def test_without_the_clock_prepare_reads_the_data_directory(tiny_cache, tmp_path):
    done = _run_trainer(tmp_path, tiny_cache, None, hide=None)
    assert done.returncode == 0, done.stdout
    assert "handed out: 0" not in done.stdout and (tmp_path / "model.pt2").exists()


def test_a_trainer_talking_nonsense_changes_nothing_recorded(tmp_path):
    shard = tmp_path / "shard_00000.parquet"
    shard.write_bytes(b"PAR1")
    clock = TrainingClock([shard])
    trainer = socket.socket(fileno=os.dup(clock.child_fd))  # the trainer's copy; listen() closes the runner's
    clock.listen()
    trainer.send(b"commit " + b"a" * 64)  # a commit before any data: a window of 0 s
    trainer.send(b"start")  # asking for data after committing: refused (nothing comes back)
    trainer.send(b"commit " + b"b" * 64)  # a second commit does not replace the first
    trainer.send(b"x" * 10000)
    trainer.send(b"commit nothex")
    for _ in range(MAX_MESSAGES):  # a flood ends the listening, not the runner
        trainer.send(b"start")
    trainer.close()
    clock.close()
    assert clock.digest == "a" * 64 and clock.window_s == 0.0 and clock.started_at is None


def test_the_budget_limit_and_what_a_run_spent_outside_training():
    assert budget_limit(300, 0.02, 3.0) == pytest.approx(306.0)  # 2% at the h100 budget
    assert budget_limit(15, 0.02, 3.0) == pytest.approx(18.0)  # a slow step's seconds on the tiny one
    assert (
        run_overhead({"wall_seconds": 400.0, "window_seconds": 301.0, "training_seconds": 1.0}, 306) == 99.0
    )
    assert run_overhead({"wall_seconds": 30.0, "training_seconds": 10.0}, 18.0) == 20.0  # a stand-in
    assert run_overhead({"wall_seconds": 500.0, "status": "timeout"}, 306.0) == 194.0  # killed: it overran
    assert run_overhead({"status": "crash"}, 306.0) is None
