"""Benchmark: one refresh of `swarm watch` with 64 agents and 100,000 experiments on the board, and the
memory of the TUI process in that state.

    .venv/bin/python bench/watch_refresh.py [--agents 64] [--experiments 100000] [--repeats 20]

Writes a synthetic board (swarm.testing.synthetic: each experiment's queued, running and final records, so about
3 lines per experiment), then runs the real app headless in a fresh process (so the generator's memory
is not counted) at 200x50, twice: without a checkpoint of the board's folded state (what every start paid
before swarm.board.checkpoint: the whole board folded on the worker) and with one at the board's end (what
the coordinator leaves), and measures, with ticking turned off and refreshes triggered one at a time:
- the initial load (from app start to the first full screen applied);
- a refresh when nothing was appended (the steady state between results);
- a refresh after 64 new records (every agent reports a result at once), the worst ordinary case;
each split into the worker part (read + fold + snapshot + plot drawing) and the UI part (applying it),
and the process's resident memory (VmRSS) and peak (VmHWM) once loaded.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def memory_mb() -> tuple[float, float]:
    fields = dict(
        line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line
    )
    return tuple(int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))  # type: ignore[return-value]


def make_board(directory: Path, agents: int, experiments: int) -> float:
    from swarm.testing.synthetic import end_of, synthetic_run, write_board

    records = list(synthetic_run(agents=agents, experiments=experiments))
    write_board(directory, records)
    return end_of(records)


def measure(board_dir: Path, now: float, repeats: int) -> None:
    from swarm.board.experiments import evolve
    from swarm.board.store import Board, new_id
    from swarm.tui.app import WatchApp
    from swarm.tui.model import WatchModel

    class TimedApp(WatchApp):
        """The real app, with the time spent applying each snapshot on the UI thread noted."""

        ui_seconds: list[float] = []

        def _show(self, snapshot):
            started = time.perf_counter()
            super()._show(snapshot)
            self.ui_seconds.append(time.perf_counter() - started)

    board = Board(board_dir)
    running: list[dict] = []  # the jobs running once the board is loaded: the next results come from them

    def results() -> list[dict]:
        """A new finished experiment for each of 64 slots (fresh ids: new results, not corrections)."""
        return [
            evolve(r, id=new_id(), status="discard", val_bpb=0.99, train_sha256=new_id(), finished_at=now)
            for r in (running * 64)[:64]
        ]

    model = WatchModel(board_dir, None, clock=lambda: now)
    app = TimedApp(model, None, board_dir, interval=3600.0, pane_interval=3600.0)

    async def one_refresh(pilot) -> tuple[float, float, float]:
        """Trigger one refresh; wall time until its snapshot is applied and the app is idle again
        (repainted), the worker's part (read, fold, snapshot, plot drawing) and the UI thread's apply."""
        before = app.refreshes
        started = time.perf_counter()
        app.refresh_board()
        while app.refreshes == before:
            await pilot.pause(0.001)
        await pilot.pause()
        total = time.perf_counter() - started
        return total, app.snapshot.refresh_seconds, app.ui_seconds[-1]

    async def scenario():
        started = time.perf_counter()
        async with app.run_test(size=(200, 50)) as pilot:
            while app.refreshes == 0:
                await pilot.pause(0.01)
            load = time.perf_counter() - started
            await pilot.pause(0.2)
            rss, peak = memory_mb()
            with model.lock:  # ticking is off: nothing else reads the state now
                running.extend(model.state.running_slots().values())
            idle = [await one_refresh(pilot) for _ in range(repeats)]
            busy = []
            for _ in range(repeats):
                for record in results():
                    board.append(record)
                busy.append(await one_refresh(pilot))
            print(
                f"board: {board.path.stat().st_size / 1e6:.0f} MB, {app.snapshot.records_read:,} records read, "
                f"{app.snapshot.header.experiments:,} experiments, {app.snapshot.header.agents} agents"
            )
            print(f"initial load (app start to the first full screen applied): {load:.2f} s")
            for name, rows in (("no new records", idle), ("64 new records", busy)):
                total, worker, ui = (statistics.median(col) * 1000 for col in zip(*rows, strict=True))
                print(
                    f"one refresh, {name}: {total:.1f} ms median of {repeats} until applied and idle "
                    f"(worker thread {worker:.1f} ms, plot drawing included; UI thread apply {ui:.1f} ms)"
                )
            print(f"TUI process memory once loaded: RSS {rss:.0f} MB (peak {peak:.0f} MB)")

    asyncio.run(scenario())


def main() -> None:
    from swarm.board.checkpoint import checkpoint_path, open_state, save
    from swarm.board.store import Board

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=64)
    parser.add_argument("--experiments", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--measure", nargs=2, metavar=("BOARD", "NOW"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(Path(args.measure[0]), float(args.measure[1]), args.repeats)
        return
    with tempfile.TemporaryDirectory(prefix="watch-bench-") as tmp:
        board_dir = Path(tmp) / "board"
        started = time.perf_counter()
        now = make_board(board_dir, args.agents, args.experiments)
        size = (board_dir / "board.jsonl").stat().st_size
        print(
            f"wrote a board of {args.agents} agents, {args.experiments:,} experiments in "
            f"{time.perf_counter() - started:.1f} s"
        )
        measure_argv = [sys.executable, __file__, "--repeats", str(args.repeats), "--measure", str(board_dir)]
        print("without a checkpoint (before):")
        subprocess.run([*measure_argv, str(now)], check=True)
        # the checkpoint the coordinator would have saved; the records the first run appended are cut first
        board = Board(board_dir)
        with open(board.path, "r+b") as f:
            f.truncate(size)
        checkpoint_path(board).unlink(missing_ok=True)
        started = time.perf_counter()
        save(open_state(board, save_after=1 << 40))
        print(
            f"with a checkpoint at the board's end (after; saving it took {time.perf_counter() - started:.1f} s):"
        )
        subprocess.run([*measure_argv, str(now)], check=True)


if __name__ == "__main__":
    main()
