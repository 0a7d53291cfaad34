"""Latency of `swarm best` and `swarm board --top 20` on a board of 100,000 records, before and after the
folded-state checkpoint (swarm.board.checkpoint) and the saved answers (swarm.results.answers), in one run
on one board.

    .venv/bin/python bench/board_queries.py [--records 100000] [--repeats 3] [--before c585053]

The board holds experiments as agents produce them: each experiment is a queued, a running and a final
record (every field present), 8 agents, ~10% repeats of a baseline content, notes now and then; it lies in
a git repository's board/, as `swarm spawn` makes it. Figures: the CLI as an agent runs it (a new process:
interpreter start, finding the run, the query) with the code of `--before` (a commit without the
checkpoint: every process folds the whole board) and with this checkout: with no saved answer (the board
changed since the last one): no checkpoint yet (fold and save one), a checkpoint 256 kB behind the board's
end (the most the coordinator leaves), a checkpoint at the end; then with the answer saved (what the
coordinator leaves after every change): as an agent runs it (SWARM_BOARD set by spawn) and as the human
does (the run found with git). Then, in process, the fold, a restore, a save, and an incremental refresh
after one more record (what a TUI pays per tick).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from swarm.board.checkpoint import checkpoint_path, open_state, restore, save  # noqa: E402
from swarm.board.experiments import evolve, new_experiment  # noqa: E402
from swarm.board.fold import BoardState  # noqa: E402
from swarm.board.store import Board  # noqa: E402
from swarm.results.answers import answers_path  # noqa: E402


def board_lines(records: int) -> list[bytes]:
    rng = random.Random(0)
    lines = []
    t = 1.7e9
    while len(lines) < records:
        k = len(lines) // 3
        agent = f"gpu{k % 8}"
        sha = "baseline" if rng.random() < 0.1 else f"{rng.getrandbits(64):016x}"
        queued = new_experiment(
            agent=agent, gpu=str(k % 8), device="NVIDIA H100 80GB HBM3", profile="h100", tag="bench",
            branch=f"swarm/bench/{agent}", commit=f"{rng.getrandbits(160):040x}",
            parent=f"{rng.getrandbits(160):040x}", base="f" * 40, train_sha256=sha,
            description="increase MATRIX_LR to 0.05 and shorten warmdown", submitted_at=t,
        )  # fmt: skip
        running = evolve(queued, status="running", started_at=t + 1)
        final = evolve(
            running, status=rng.choice(["keep", "discard", "discard", "marginal", "crash"]),
            val_bpb=round(1.0 - k * 1e-6 + rng.gauss(0, 3e-4), 6), training_seconds=300.1, total_seconds=325.9,
            peak_vram_mb=45060.2, mfu_percent=39.8, total_tokens_M=499.6, num_steps=953, num_params_M=50.3,
            depth=8, prepare_sha256="e" * 64, finished_at=t + 330, log=f"logs/{queued['id']}.log", band=3e-4,
        )  # fmt: skip
        for record in (queued, running, final):
            record["ts"] = t
            lines.append(orjson.dumps(record))
        if k % 50 == 0:
            lines.append(orjson.dumps({"type": "note", "agent": agent, "text": "wider helps", "ts": t}))
        t += 40
    return [line + b"\n" for line in lines[:records]]


def timed(argv: list[str], env: dict[str, str], repeats: int, cwd: Path, before=None) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of the command; on a loaded machine the CPU time
    is close to what an idle one takes."""
    walls, cpus = [], []
    for _ in range(repeats):
        if before:
            before()
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True, cwd=cwd)
        walls.append(time.perf_counter() - started)
        now = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(now.ru_utime + now.ru_stime - used.ru_utime - used.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def ms(times: tuple[float, float]) -> str:
    return f"{times[0] * 1000:.0f} ms ({times[1] * 1000:.0f} ms CPU)"


QUERIES = (("swarm best", ["best"]), ("swarm board --top 20", ["board", "--top", "20"]))


def queries(code: Path, env: dict[str, str], repeats: int, cwd: Path, before=None) -> str:
    """Both queries in new processes running the swarm package found in `code`."""
    argv = [sys.executable, "-P", "-m", "swarm"]  # -P and PYTHONPATH: that code, not the installed one
    env = {**env, "PYTHONPATH": str(code)}
    return ", ".join(f"{name} {ms(timed(argv + args, env, repeats, cwd, before))}" for name, args in QUERIES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", default="c585053", help="a commit without the checkpoint, for 'before'")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        subprocess.run(["git", "init", "-q", str(project)], check=True)
        subprocess.run(["git", "-C", str(project), "commit", "-q", "--allow-empty", "-m", "base"], check=True)
        directory = project / "board"
        directory.mkdir()
        lines = board_lines(args.records)
        # the board up to 256 kB before its end, checkpointed there; then the rest appended (same file)
        cut = len(lines)
        while cut > 0 and sum(len(line) for line in lines[cut:]) < 256 * 1024:  # a toy board: all of it
            cut -= 1
        (directory / "board.jsonl").write_bytes(b"".join(lines[:cut]))
        board = Board(directory)
        save(open_state(board, save_after=1 << 40))
        with open(board.path, "ab") as f:
            f.write(b"".join(lines[cut:]))
        size = board.path.stat().st_size
        old_code = Path(tmp) / "before"
        old_code.mkdir()
        archive = subprocess.run(
            ["git", "archive", args.before, "swarm"], cwd=REPO, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(old_code)], input=archive.stdout, check=True)
        human = {k: v for k, v in os.environ.items() if not k.startswith("SWARM_")}
        human["OMP_NUM_THREADS"] = "1"
        agent = {**human, "SWARM_BOARD": str(directory)}
        print(f"board: {args.records} records, {size / 1e6:.0f} MB; new processes, median of {args.repeats}")
        base = timed(
            [sys.executable, "-P", "-c", "import swarm.cli"],
            {**human, "PYTHONPATH": str(REPO)},
            args.repeats,
            project,
        )
        print(f"  python start + import swarm.cli: {ms(base)}")
        print(f"  before ({args.before}, no checkpoint): {queries(old_code, agent, args.repeats, project)}")
        forget = lambda: answers_path(directory).unlink(missing_ok=True)  # noqa: E731
        print("  no saved answer (the board changed since the last one):")
        print(f"    checkpoint 256 kB behind:      {queries(REPO, agent, args.repeats, project, forget)}")

        def nothing_saved():
            forget()
            checkpoint_path(board).unlink(missing_ok=True)

        print(
            f"    no checkpoint yet (fold + save): {queries(REPO, agent, args.repeats, project, nothing_saved)}"
        )
        state = open_state(board, save_after=0)
        print(f"    checkpoint at the board's end:  {queries(REPO, agent, args.repeats, project, forget)}")
        print("  the answer saved (as the coordinator leaves it):")
        print(f"    an agent (SWARM_BOARD set):    {queries(REPO, agent, args.repeats, project)}")
        print(f"    the human (run found by git):  {queries(REPO, human, args.repeats, project)}")
        started = time.perf_counter()
        state = BoardState(board)
        state.refresh()
        fold = time.perf_counter() - started
        started = time.perf_counter()
        assert save(state)
        saved = time.perf_counter() - started
        started = time.perf_counter()
        restored = restore(board)
        restoring = time.perf_counter() - started
        assert restored is not None and restored.bests().keys() == state.bests().keys()
        started = time.perf_counter()
        bests = state.bests()
        top = state.top(next(iter(state.groups)), 20)
        summaries = state.agent_summaries()
        query = time.perf_counter() - started
        board.append(new_experiment(agent="gpu0", gpu="0", device="NVIDIA H100 80GB HBM3", profile="h100"))
        started = time.perf_counter()
        state.refresh()
        state.bests()
        tick = time.perf_counter() - started
        assert bests and len(top) == 20 and summaries
        megabytes = checkpoint_path(board).stat().st_size / 1e6
        print(f"  in process: read + fold {fold * 1000:.0f} ms, restore {restoring * 1000:.0f} ms, save "
              f"{saved * 1000:.0f} ms ({megabytes:.1f} MB), best + top 20 + agents {query * 1000:.1f} ms, "
              f"refresh after one append {tick * 1000:.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
