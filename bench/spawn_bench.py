"""Time `swarm spawn --gpus N` to all agents started, next to ClawTeam 0.2.0 spawning as many stand-in
agents in git worktrees; then the coordinator's CPU use while it supervises the largest swarm.

    .venv/bin/python bench/spawn_bench.py [--agents 8,32] [--clawteam-agents 2] [--clawteam-tui-agents 8]
                                          [--clawteam-full] [--skip-clawteam] [--cpu-seconds 60]

Runs on a machine without GPUs: `SWARM_FAKE_GPUS=N` makes GPU detection list N GPUs (swarm/orchestration/gpus.py), and
the agents are a stand-in script (prints one line, then waits), so nothing touches a GPU. A timed spawn
includes making N worktrees and branches, the run record, the tmux server, the coordinator and N agent
plus N runner windows; it ends when `swarm spawn` returns, which is when every agent process is running.

ClawTeam 0.2.0 is installed into its own venv (/tmp/clawteam-venv, never into this project) and run with
its tmux backend, `--workspace` (a git worktree per agent) and a `--task` (the same kind of prompt our
agents get). Its tmux server is isolated with TMUX_TMPDIR and its state with --data-dir and HOME. It
spawns agents one after another and waits on each pane for a TUI to appear before typing the task, up to
its 30 s ready timeout, so the stand-in (no TUI) costs it ~33 s per agent: by default it is timed for
`--clawteam-agents` agents and the per-agent cost is extrapolated to N (the output says so). A second row
uses a stand-in that prints a prompt character, which ClawTeam takes as a ready TUI: its best case (timed
for `--clawteam-tui-agents`). `--clawteam-full` times ClawTeam at every size instead (about 20 minutes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from swarm.installation import swarm_argv

REPO_ROOT = Path(__file__).resolve().parent.parent
SWARM = swarm_argv()
CLAWTEAM_VENV = Path("/tmp/clawteam-venv")
STANDIN = """\
import signal, sys
print("stand-in agent", sys.argv[1] if len(sys.argv) > 1 else "", {prompt!r}, flush=True)
signal.pause()
"""
CLK_TCK = os.sysconf("SC_CLK_TCK")


def sh(*args: str, cwd: Path | None = None, env: dict | None = None) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc.stdout


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    sh("git", "init", "-q", "-b", "main", cwd=path)
    (path / ".gitignore").write_text("/worktrees/*\n/board/*\n")
    (path / "train.py").write_text("DEPTH = 8\n")
    (path / "prepare.py").write_text('PROFILES = {"h100": {"max_seq_len": 2048, "time_budget": 300}}\n')
    sh("git", "add", "-A", cwd=path)
    sh("git", "-c", "user.email=b@b", "-c", "user.name=bench", "commit", "-q", "-m", "base", cwd=path)
    return path


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        # utime + stime, plus cutime + cstime: the tmux clients a coordinator runs are part of its cost
        total += sum(int(f) for f in fields[11:15]) / CLK_TCK
    return total


def swarm_spawn(root: Path, n: int, standin: Path, measure_cpu_s: float) -> dict:
    repo = make_repo(root / f"swarm-{n}")
    (repo / "swarm.toml").write_text(
        f'[agents.commands]\nstandin = ["{{python}}", "{standin}", "{{agent}}"]\n'
    )
    env = {
        **os.environ,
        "SWARM_FAKE_GPUS": f"{n}:NVIDIA H100 80GB HBM3",
        "SWARM_TMUX_DIR": str(root / "sock"),
    }
    env.pop("TMUX", None)
    start = time.perf_counter()
    sh(*SWARM, "spawn", "--gpus", str(n), "--kind", "standin", "--tag", f"b{n}", cwd=repo, env=env)
    elapsed = time.perf_counter() - start
    result = {"agents": n, "spawn_s": elapsed}
    sys.path.insert(0, str(REPO_ROOT))
    os.environ["SWARM_TMUX_DIR"] = env["SWARM_TMUX_DIR"]
    from swarm.orchestration.tmux import RunTmux

    tmux = RunTmux(repo, f"b{n}")
    panes = tmux.panes()
    alive = [p for name, p in panes.items() if name.startswith("gpu") and not p.dead]
    assert len(alive) == n, f"{len(alive)} of {n} agents running"
    if measure_cpu_s:
        time.sleep(5)  # let the runners finish starting
        panes = tmux.panes()
        coordinator = [panes["coordinator"].pid]
        runners = [p.pid for name, p in panes.items() if name.startswith("runner-")]
        server = [int(tmux.cmd("display-message", "-p", "#{pid}")[0])]
        before = [cpu_seconds(coordinator), cpu_seconds(runners), cpu_seconds(server)]
        time.sleep(measure_cpu_s)
        after = [cpu_seconds(coordinator), cpu_seconds(runners), cpu_seconds(server)]
        result["coordinator_cpu_pct"] = 100 * (after[0] - before[0]) / measure_cpu_s
        result["runners_cpu_pct"] = 100 * (after[1] - before[1]) / measure_cpu_s
        result["tmux_cpu_pct"] = 100 * (after[2] - before[2]) / measure_cpu_s
        result["cpu_window_s"] = measure_cpu_s
    sh(*SWARM, "stop", "--tag", f"b{n}", cwd=repo, env=env)
    return result


def ensure_clawteam() -> Path:
    binary = CLAWTEAM_VENV / "bin" / "clawteam"
    if not binary.exists():
        print(f"installing clawteam==0.2.0 into {CLAWTEAM_VENV} ...", flush=True)
        sh(sys.executable, "-m", "venv", str(CLAWTEAM_VENV))
        sh(str(CLAWTEAM_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "clawteam==0.2.0")
    return binary


def clawteam_spawn(root: Path, n: int, standin: Path, label: str) -> float:
    """Seconds for ClawTeam to spawn n stand-in agents (tmux backend, a worktree each, a task each)."""
    clawteam = ensure_clawteam()
    base = root / f"clawteam-{label}-{n}"
    repo = make_repo(base / "repo")
    (base / "tmux").mkdir()
    (base / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}
    env.update(TMUX_TMPDIR=str(base / "tmux"), HOME=str(base / "home"))
    data = ["--data-dir", str(base / "data")]
    try:
        sh(str(clawteam), *data, "team", "spawn-team", "bench", "-n", "leader", cwd=repo, env=env)
        start = time.perf_counter()
        for i in range(n):
            sh(
                str(clawteam), *data, "spawn", "tmux", sys.executable, str(standin), f"a{i}",
                "--team", "bench", "--agent-name", f"a{i}", "--task", "improve train.py; never stop",
                "--repo", str(repo), "--workspace", cwd=repo, env=env,
            )  # fmt: skip
        return time.perf_counter() - start
    finally:
        subprocess.run(["tmux", "kill-server"], env=env, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default="8,32", help="swarm sizes to time (default 8,32)")
    parser.add_argument("--clawteam-agents", type=int, default=2, help="ClawTeam agents timed without a TUI")
    parser.add_argument("--clawteam-tui-agents", type=int, default=8, help="... and with a TUI-like stand-in")
    parser.add_argument("--clawteam-full", action="store_true", help="time ClawTeam at every size (slow)")
    parser.add_argument("--skip-clawteam", action="store_true")
    parser.add_argument("--cpu-seconds", type=float, default=60.0, help="coordinator CPU window (default 60)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.agents.split(",")]
    root = Path(tempfile.mkdtemp(prefix="spawn-bench-"))
    plain = root / "standin.py"
    plain.write_text(STANDIN.format(prompt="waiting"))
    tui_like = root / "standin_tui.py"
    tui_like.write_text(STANDIN.format(prompt="❯"))
    print(f"machine: {os.cpu_count()} CPUs; temp dir {root}")
    try:
        rows = []
        for n in sizes:
            rows.append(swarm_spawn(root, n, plain, args.cpu_seconds if n == max(sizes) else 0))
            print(
                f"swarm spawn --gpus {n}: all {n} agents started in {rows[-1]['spawn_s']:.2f} s", flush=True
            )
        big = rows[-1]
        if "coordinator_cpu_pct" in big:
            print(
                f"supervising {big['agents']} agents (+{big['agents']} runners) for {big['cpu_window_s']:.0f} s: "
                f"coordinator {big['coordinator_cpu_pct']:.2f}% of one core; "
                f"idle runners {big['runners_cpu_pct']:.1f}% in all; tmux server {big['tmux_cpu_pct']:.2f}%"
            )
        if not args.skip_clawteam:
            clawteam_rows = (
                (
                    "plain",
                    plain,
                    args.clawteam_agents,
                    "stand-in without a TUI: waits out its 30 s ready timeout",
                ),
                (
                    "tui",
                    tui_like,
                    args.clawteam_tui_agents,
                    "stand-in printing a prompt character: its best case",
                ),
            )
            for label, standin, count, note in clawteam_rows:
                for k in sizes if args.clawteam_full else [count]:
                    seconds = clawteam_spawn(root, k, standin, label)
                    print(
                        f"clawteam spawn x{k} ({note}): {seconds:.1f} s, {seconds / k:.1f} s per agent",
                        flush=True,
                    )
                if not args.clawteam_full:
                    for n in (n for n in sizes if n != count):
                        print(f"  extrapolated to {n}: {seconds / count * n:.0f} s (spawns are serial)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
