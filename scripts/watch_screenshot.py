"""Make docs/watch.svg (and docs/watch.png when chromium is installed): `swarm watch` on a realistic board.

    .venv/bin/python scripts/watch_screenshot.py

The board is synthetic (swarm.testing.synthetic: 16 agents, 11 hours, reruns verifying new bests), the processes
are real: a tmux server on a private socket with a window per agent (two of them crashed, one stopped by
`swarm stop`), so liveness and the live pane in the picture come from tmux as in a real run. The app runs
headless at 200x52 with its clock fixed at the end of the board.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZE = (200, 52)
AGENTS = 16
EXPERIMENTS = 2600
SHOWN = "gpu3"  # whose live pane the picture shows
SEED = 5  # a board whose best has been verified (and two repeated contents that were not)
TRANSCRIPT = """\
> Read the board: swarm board --top 5
  #1 0.97672 (n=3, verified) gpu7  TOTAL_BATCH_SIZE 2**19 -> 2**18
  my best is 0.97905, behind by more than the noise band (0.00030)

* Adopting the global best before the next change.
  $ swarm adopt best
  adopted 4b39fd65 (gpu7): swarm/jan01/gpu3 now at 1c0e8f2

* Next idea: a slightly wider model on top of the adopted best.
  Edit train.py: ASPECT_RATIO = 64  ->  ASPECT_RATIO = 80
  $ git commit -qam "ASPECT_RATIO 64 -> 80 on the adopted best"
  $ swarm submit -m "ASPECT_RATIO 64 -> 80 on the adopted best"
  7d2e91aa

* Queued behind the running job; meanwhile reading notes from other agents.
  $ swarm board --agent gpu5
"""


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(path: Path) -> Path:
    """A repository with the project's own prepare.py and train.py (the budget bars read PROFILES)."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for name in ("prepare.py", "train.py"):
        shutil.copy(ROOT / name, path / name)
    (path / ".gitignore").write_text("/board/\n/worktrees/\n")
    git(path, "add", "-A")
    git(path, "-c", "user.name=demo", "-c", "user.email=demo@example.com", "commit", "-q", "-m", "base")
    return path


def start_windows(repo: Path, tag: str, logs: Path) -> None:
    """The run's tmux session: a coordinator stand-in and one window per agent (sleeping processes),
    two of which crash at once (exit 1) and one of which is missing (stopped)."""
    from swarm.orchestration.tmux import RunTmux

    tmux = RunTmux(repo, tag)
    logs.mkdir(parents=True, exist_ok=True)
    transcript = logs / "transcript.txt"
    transcript.write_text(TRANSCRIPT)
    alive = ["sh", "-c", "sleep 3600"]
    tmux.start("coordinator", alive, repo, logs / "coordinator.log", {})
    for i in range(AGENTS):
        name = f"gpu{i}"
        if name == "gpu13":
            continue  # stopped: no window
        if name in ("gpu9", "gpu11"):
            argv = ["sh", "-c", "echo 'error: the model endpoint refused the request'; exit 1"]
        elif name == SHOWN:
            argv = ["sh", "-c", f"cat {transcript}; exec sleep 3600"]
        else:
            argv = alive
        tmux.new_window(name, argv, repo, logs / f"{name}.log")


async def capture(app, out: Path) -> None:
    from swarm.tui.detail import DetailPane
    from swarm.tui.progress_plot import ProgressPlot

    async with app.run_test(size=SIZE) as pilot:
        deadline = time.monotonic() + 120
        plot = app.query_one(ProgressPlot)
        while plot.drawn is None and time.monotonic() < deadline:
            await pilot.pause(0.1)
        for _ in range(int(SHOWN.removeprefix("gpu"))):
            await pilot.press("down")
        detail = app.query_one(DetailPane)
        while "ASPECT_RATIO" not in detail.text and time.monotonic() < deadline:
            await pilot.pause(0.1)
        await pilot.pause(0.5)
        app.save_screenshot(out.name, path=str(out.parent))


def main() -> int:
    from swarm.board.run_record import set_stopped
    from swarm.repo.paths import RunPaths
    from swarm.testing.synthetic import end_of, synthetic_run, write_board
    from swarm.tui.app import WatchApp
    from swarm.tui.control import TmuxRunControl
    from swarm.tui.model import WatchModel

    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="swarm-shot-") as tmp:
        os.environ["SWARM_TMUX_DIR"] = str(Path(tmp) / "sock")  # a private socket, gone with tmp
        repo = make_repo(Path(tmp) / "autoresearch")
        paths = RunPaths.for_repo(repo)
        records = list(synthetic_run(agents=AGENTS, experiments=EXPERIMENTS, seed=SEED))
        board = write_board(paths.board, records)
        tag = records[0]["tag"]
        set_stopped(board, tag, {"gpu13"}, stopped=True)
        start_windows(repo, tag, paths.board / "logs" / "panes")
        try:
            model = WatchModel(
                paths.board,
                repo,
                control_for=lambda t: TmuxRunControl(paths, t),
                clock=lambda: end_of(records),
            )
            app = WatchApp(model, repo, paths.board, interval=0.2, pane_interval=0.5)
            asyncio.run(capture(app, docs / "watch.svg"))
        finally:
            TmuxRunControl(paths, tag).tmux.kill_server()
    print(f"wrote {docs / 'watch.svg'}")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium:
        box = re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', (docs / "watch.svg").read_text())
        width, height = (math.ceil(float(v)) for v in box.groups())  # the picture at the SVG's own size
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--window-size={width},{height}", f"--screenshot={docs / 'watch.png'}",
             (docs / "watch.svg").as_uri()],
            check=True, capture_output=True,
        )  # fmt: skip
        print(f"wrote {docs / 'watch.png'}")
    else:
        print("no chromium here: docs/watch.png not rendered (apt-get install chromium)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
