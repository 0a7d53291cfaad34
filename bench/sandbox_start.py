"""What a sandbox adds to starting a process: the trainer's and the agent's bwrap sandbox against a plain
start of the same command, side by side.

    .venv/bin/python bench/sandbox_start.py [--repeats 30]

Each figure is the median (and max) wall time from Popen to exit of `python -c pass` (the interpreter a
trainer starts with) and of `/bin/true` (the bare cost), started directly, inside a trainer sandbox (run
directory, data cache with eval/ hidden, no network, own PID namespace), and inside an agent sandbox
(worktree, git dirs, inbox, home hidden, network on). The sandbox cost is the difference.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from swarm.runner.sandbox import (  # noqa: E402
    AgentView,
    agent_sandbox,
    reduced_environment,
    sandbox_problem,
    trainer_sandbox,
)


def timed(argv: list[str], env: dict[str, str], cwd: Path, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, env=env, cwd=cwd, check=True, stdin=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    problem = sandbox_problem()
    if problem:
        sys.exit(f"no sandbox here: {problem}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run_dir, cache, worktree, home = (root / n for n in ("run", "cache", "worktree", "home"))
        for d in (run_dir, cache / "eval", worktree, home):
            d.mkdir(parents=True)
        trainer = trainer_sandbox(run_dir, cache)
        agent = agent_sandbox(
            AgentView(
                repo=root,
                worktree=worktree,
                board=root / "board",
                git_writable=(root / ".git" / "objects",),
                inbox=root / "board" / "inbox" / "a",
                home=home,
            )
        )
        env = reduced_environment(os.environ)
        commands = {"python -c pass": [sys.executable, "-c", "pass"], "/bin/true": ["/bin/true"]}
        for name, argv in commands.items():
            plain = timed(argv, env, run_dir, args.repeats)
            boxed = timed(trainer.wrap(argv), env, run_dir, args.repeats)
            agent_boxed = timed(agent.wrap(argv), env, worktree, args.repeats)
            for label, values in (
                ("direct", plain),
                ("trainer sandbox", boxed),
                ("agent sandbox", agent_boxed),
            ):
                extra = statistics.median(values) - statistics.median(plain)
                print(
                    f"{name:15} {label + ':':17} median {statistics.median(values) * 1000:6.1f} ms, "
                    f"max {max(values) * 1000:6.1f} ms"
                    + (f"  (+{extra * 1000:.1f} ms)" if label != "direct" else "")
                )


if __name__ == "__main__":
    main()
