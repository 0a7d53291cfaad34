"""Test fixtures that build a real run: a git repo with a base commit, a board with a run record, agent
worktrees on branches swarm/<tag>/<agent>/work, stand-in trainers, runners as real processes.

    run = make_run(tmp_path, agents=["cpu0"], train=stand_in_train(val_bpb=1.0))
    commit_train(run.worktree("cpu0"), stand_in_train(val_bpb=0.99), "lower lr")
    with run.agent_env("cpu0"):  # cwd and environment of that agent
        swarm_cli("run", "-m", "lower lr")

Other areas' tests can use these (spawn, coordinator, TUI): nothing here fakes the board or git.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarm.board.noise import NoiseSettings
from swarm.board.run_record import AgentEntry, SwarmRecord, write_run_record
from swarm.board.signing import create_key
from swarm.board.store import Board
from swarm.config import load_section
from swarm.repo.paths import agent_branch
from swarm.runner.service import Runner, RunnerSettings

TAG = "test"
# Stand-in trainers keep their counts and events in $STANDIN_STATE_DIR, outside their sandbox's run
# directory: the runner lets that one variable in and that one directory be written (settings below for
# in-process runners, the same lines in make_run's swarm.toml for `swarm runner` processes). They print a
# summary and hand over no model: runners of these runs take val_bpb from it (`evaluation = "reported"`).
STAND_IN_SETTINGS = {
    "trainer_env": ("STANDIN_STATE_DIR",),
    "trainer_writable": ("$STANDIN_STATE_DIR",),
    "evaluation": "reported",
}
STAND_IN_CONFIG = 'trainer_env = ["STANDIN_STATE_DIR"]\ntrainer_writable = ["$STANDIN_STATE_DIR"]\n'
STAND_IN_RUNNER = RunnerSettings(**STAND_IN_SETTINGS)

# A prepare.py with the PROFILES literal of the contract; stand-in trainers import it like train.py does.
STAND_IN_PREPARE = textwrap.dedent(
    '''\
    """Stand-in prepare.py for tests: the PROFILES contract and nothing else."""
    PROFILES = {
        "h100": {"max_seq_len": 2048, "vocab_size": 8192, "time_budget": 300, "eval_tokens": 20971520},
        "tiny": {"max_seq_len": 64, "vocab_size": 256, "time_budget": 2, "eval_tokens": 4096},
    }
    '''
)


def stand_in_train(
    mode: str = "ok",
    val_bpb: float = 1.0,
    offsets: tuple[float, ...] = (0.0,),
    sleep_s: float = 0.0,
    training_seconds: float = 0.0,
    marker: str = "",
) -> str:
    """Source of a stand-in train.py that prints the summary block (or misbehaves, per `mode`).

    mode: ok | crash | hang | nan | fail (prints FAIL, exits 1) | slow (claims training_seconds past the budget)
          | tamper (rewrites prepare.py in its run directory)
    offsets: known noise: run k of this exact file prints val_bpb + offsets[k % len(offsets)], counted in
             $STANDIN_STATE_DIR (so identical content gives repeatable, known spread).
    A number in $STANDIN_STATE_DIR/drift is added to every value printed while it is there: a machine whose
    speed drifts moves every train.py's result alike.
    The trainer appends `start <time> <pid> <cwd>` / `end <time> <pid>` lines to $STANDIN_STATE_DIR/events,
    writes the environment variables the runner sets to $STANDIN_STATE_DIR/trainer.env (JSON), and a hang
    writes its own and its child's pid to $STANDIN_STATE_DIR/hang.pids.
    """
    return textwrap.dedent(
        f'''\
        """Stand-in trainer {marker}"""
        import hashlib, json, os, subprocess, sys, time
        from prepare import PROFILES

        MODE = {mode!r}
        VAL_BPB = {val_bpb!r}
        OFFSETS = {list(offsets)!r}
        state = os.environ.get("STANDIN_STATE_DIR", ".")
        profile = os.environ.get("AUTORESEARCH_PROFILE", "h100")
        with open(os.path.join(state, "events"), "a") as f:
            f.write(f"start {{time.time()}} {{os.getpid()}} {{os.getcwd()}}\\n")
        names = ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "AUTORESEARCH_PROFILE", "SWARM_AGENT")
        with open(os.path.join(state, "trainer.env"), "w") as f:
            json.dump({{name: os.environ.get(name) for name in names}}, f)
        key = hashlib.sha256(open(__file__, "rb").read()).hexdigest()[:16]
        counter = os.path.join(state, "count-" + key)
        runs = int(open(counter).read()) if os.path.exists(counter) else 0
        open(counter, "w").write(str(runs + 1))
        time.sleep({sleep_s!r})
        if MODE == "hang":
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            open(os.path.join(state, "hang.pids"), "w").write(f"{{os.getpid()}} {{child.pid}}")
            time.sleep(600)
        if MODE == "crash":
            raise RuntimeError("stand-in crash")
        if MODE == "fail":
            print("FAIL")
            sys.exit(1)
        if MODE == "tamper":
            open("prepare.py", "a").write("\\nTAMPERED = True\\n")
        value = float("nan") if MODE == "nan" else VAL_BPB + OFFSETS[runs % len(OFFSETS)]
        drift = os.path.join(state, "drift")  # the machine's speed now, the same for every train.py
        value += float(open(drift).read()) if os.path.exists(drift) else 0.0
        seconds = PROFILES[profile]["time_budget"] + 60 if MODE == "slow" else {training_seconds!r}
        print("---")
        print(f"val_bpb:          {{value:.6f}}")
        print(f"training_seconds: {{seconds:.1f}}")
        print("total_seconds:    2.0")
        print("peak_vram_mb:     1024.0")
        print("mfu_percent:      1.00")
        print("total_tokens_M:   0.1")
        print("num_steps:        10")
        print("num_params_M:     0.5")
        print("depth:            2")
        print("device:           cpu")
        print(f"profile:          {{profile}}")
        with open(os.path.join(state, "events"), "a") as f:
            f.write(f"end {{time.time()}} {{os.getpid()}}\\n")
        '''
    )


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def init_repo(path: Path, files: dict[str, str]) -> str:
    """A git repository at `path` with one commit of `files`; returns its sha."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "test@example.com")
    git(path, "config", "user.name", "test")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "base")
    return git(path, "rev-parse", "HEAD")


def commit_train(worktree: Path, source: str, message: str = "experiment", path: str = "train.py") -> str:
    """Write `path` in a worktree and commit it; returns the new HEAD."""
    (Path(worktree) / path).write_text(source)
    git(worktree, "add", path)
    git(worktree, "commit", "-q", "--allow-empty", "-m", message)
    return git(worktree, "rev-parse", "HEAD")


@dataclass
class SwarmRun:
    """A run on disk: repository, board, run record, one worktree per agent."""

    repo: Path
    board: Board
    base: str
    run: SwarmRecord
    state_dir: Path  # where stand-in trainers count runs and log events
    runners: list[subprocess.Popen] = field(default_factory=list)

    def worktree(self, agent: str) -> Path:
        return Path(self.run.agent(agent).worktree)

    @contextlib.contextmanager
    def agent_env(self, agent: str) -> Iterator[None]:
        """cwd and SWARM_* environment of an agent process (as `swarm spawn` sets them), restored after."""
        env = self.agent_environ(agent)
        saved_env = {k: os.environ.get(k) for k in env}
        saved_cwd = os.getcwd()
        os.environ.update(env)
        os.chdir(self.worktree(agent))
        try:
            yield
        finally:
            os.chdir(saved_cwd)
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def agent_environ(self, agent: str) -> dict[str, str]:
        """The SWARM_* variables `swarm spawn` gives an agent process."""
        return {
            "SWARM_AGENT": agent,
            "SWARM_GPU": self.run.agent(agent).queue,
            "SWARM_TAG": self.run.tag,
            "SWARM_BOARD": str(self.board.directory),
        }

    def trainer_env(self) -> dict[str, str | None]:
        """The pinning environment the last stand-in trainer saw."""
        return json.loads((self.state_dir / "trainer.env").read_text())

    def events(self) -> list[list[str]]:
        path = self.state_dir / "events"
        return [line.split() for line in path.read_text().splitlines()] if path.exists() else []

    def start_runner(self, slot: str, *extra: str) -> subprocess.Popen:
        """`swarm runner` for a slot as a real process (stopped by stop_runners)."""
        flag = ["--cpu", slot[3:]] if slot.startswith("cpu") else ["--gpu", slot]
        proc = subprocess.Popen(
            [sys.executable, "-m", "swarm", "runner", *flag, *extra],
            cwd=self.repo,
            env=self.runner_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.runners.append(proc)
        wait_until(
            lambda: (self.board.directory / "runners" / f"{slot}.lock").exists() or proc.poll() is not None
        )
        return proc

    def runner_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWARM_")}
        env["SWARM_BOARD"] = str(self.board.directory)
        env["STANDIN_STATE_DIR"] = str(self.state_dir)
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
        return env

    def sealed(
        self, agent: str, kind: str, argv: list[str], env: dict[str, str]
    ) -> tuple[list[str], dict[str, str]]:
        """An agent's command line and environment as the launcher starts it: in its sandbox, with only
        the secrets of its kind (swarm.orchestration.sealing)."""
        from swarm.agents.kinds import BUILT_IN
        from swarm.orchestration.sealing import seal_agent
        from swarm.repo.paths import RunPaths

        slot = self.run.agent(agent)
        return seal_agent(self.run, slot, RunPaths.for_repo(self.repo), BUILT_IN[kind], argv, env)

    def submit_and_wait(self, agent: str, message: str, timeout_s: int) -> subprocess.CompletedProcess:
        """`swarm run -m MESSAGE --json` of the agent's checked-out commit as the agent runs it (a process in
        its worktree, with its environment): its record on stdout once the runner has measured it."""
        with self.agent_env(agent):
            return subprocess.run(
                [sys.executable, "-m", "swarm", "run", "-m", message, "--json", "--timeout", str(timeout_s)],
                cwd=self.worktree(agent),
                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
                capture_output=True,
                text=True,
                timeout=timeout_s + 100,
            )

    def run_as_agent(
        self,
        agent: str,
        script: str,
        env: dict[str, str] | None = None,
        secrets: tuple[str, ...] = (),
        timeout: float = 180,
        **popen: Any,
    ) -> subprocess.CompletedProcess:
        """Run a Python program as `agent`, sealed as the launcher seals a custom agent with these secrets
        (`args[0]` is "bwrap"), in its worktree with its environment plus `env`; its output as text.
        `popen`: more arguments of subprocess.run (a terminal for stdin, a new session)."""
        from swarm.agents.kinds import AgentCommand
        from swarm.orchestration.sealing import seal_agent
        from swarm.repo.paths import RunPaths

        slot = self.run.agent(agent)
        command = AgentCommand("custom", ("{python}", "-c", script), secrets=secrets)
        argv = command.argv(prompt="", agent=agent, gpu=slot.queue, worktree=self.worktree(agent))
        env = {**os.environ, **self.agent_environ(agent), **(env or {})}
        argv, env = seal_agent(self.run, slot, RunPaths.for_repo(self.repo), command, argv, env)
        worktree = self.worktree(agent)
        return subprocess.run(
            argv, env=env, cwd=worktree, capture_output=True, text=True, timeout=timeout, **popen
        )

    def hang_pids(self) -> tuple[int, int]:
        """Host pids of a hanging stand-in trainer and its child. The pids it writes to hang.pids are
        those of its sandbox's PID namespace, so they are found instead among the processes working in a
        run directory of this board (the trainer runs train.py, its child sleeps)."""
        wait_until(lambda: (self.state_dir / "hang.pids").exists())
        found = wait_until(
            lambda: (lambda f: f if set(f) == {"trainer", "child"} else None)(self.run_processes())
        )
        return found["trainer"], found["child"]

    def run_processes(self) -> dict[str, int]:
        """Stand-in processes working in a run directory of this board: {"trainer": pid, "child": pid}."""
        runs = str(self.board.directory / "runs") + "/"
        found: dict[str, int] = {}
        for entry in Path("/proc").iterdir():
            try:
                cwd = os.readlink(entry / "cwd") + "/"
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except (OSError, ValueError):
                continue
            if not cwd.startswith(runs) or b"bwrap" in argv[0] or not process_alive(int(entry.name)):
                continue
            if b"train.py" in argv:
                found["trainer"] = int(entry.name)
            elif any(b"time.sleep(600)" in arg for arg in argv):
                found["child"] = int(entry.name)
        return found

    def stop_runners(self) -> None:
        for proc in self.runners:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.runners:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.runners.clear()


def make_run(
    tmp_path: Path,
    agents: tuple[str, ...] = ("cpu0",),
    train: str | None = None,
    profile: str = "tiny",
    devices: dict[str, str] | None = None,
    config: str = "",
    prepare: str = STAND_IN_PREPARE,
    signed: bool = False,
    unsealed: bool = False,
) -> SwarmRun:
    """A repository with prepare.py / train.py / swarm.toml at the base commit, a board with a run record,
    and a worktree per agent (worktrees/<agent> on swarm/<TAG>/<agent>/work). Agent names gpuK / cpuK give
    slots K / cpuK; `devices` maps a slot to its device class (default "cpu" and "Test GPU")."""
    repo = tmp_path / "repo"
    if "[runner]\n" in config:
        config = config.replace("[runner]\n", "[runner]\n" + STAND_IN_CONFIG, 1)
    else:
        config = f"{config}\n[runner]\n{STAND_IN_CONFIG}"
    files = {
        "prepare.py": prepare,
        "train.py": train or stand_in_train(),
        ".gitignore": "/board/\n/worktrees/\n",
        "swarm.toml": config,
    }
    files["swarm.toml"] = reported_evaluation(config) if prepare == STAND_IN_PREPARE else config
    base = init_repo(repo, files)
    devices = devices or {}
    slots = []
    for name in agents:
        gpu = name if name.startswith("cpu") else name.removeprefix("gpu")
        worktree = repo / "worktrees" / name
        branch = agent_branch(TAG, name)
        git(repo, "worktree", "add", "-q", "-b", branch, str(worktree), base)
        device = devices.get(gpu, "cpu" if gpu.startswith("cpu") else "Test GPU")
        slots.append(AgentEntry(name, "test", gpu, device, str(worktree.resolve()), branch))
    board = Board(repo / "board").create()
    if signed:  # as `swarm spawn` makes a board: with its key first (swarm.board.signing)
        create_key(board.directory)
    run = SwarmRecord(tag=TAG, base=base, profile=profile, agents=tuple(slots), unsealed=unsealed)
    write_run_record(board, run)
    state_dir = tmp_path / "standin"
    state_dir.mkdir()
    return SwarmRun(repo=repo.resolve(), board=board, base=base, run=run, state_dir=state_dir)


def reported_evaluation(config: str) -> str:
    """swarm.toml text with `[runner] evaluation = "reported"` added (unless the config sets it itself)."""
    if "evaluation" in config:
        return config
    if "[runner]" in config:
        return config.replace("[runner]\n", '[runner]\nevaluation = "reported"\n', 1)
    return '[runner]\nevaluation = "reported"\n' + config


def wait_until(condition, timeout: float = 30.0, interval: float = 0.02):
    """Poll `condition` until it returns something truthy; fails the test past the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def latest(board: Board, eid: str) -> dict | None:
    found = None
    for record in board.records():
        if record.get("id") == eid and record.get("type") == "experiment":
            found = record
    return found


def process_alive(pid: int) -> bool:
    """Whether a process still runs (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def run_queued(run, slot, noise=None):
    """Run every job queued for `slot` with an in-process runner, with the noise rule of the run's swarm.toml
    (or `noise`); returns their final records."""
    noise = noise or load_section(run.repo, "noise", NoiseSettings)
    runner = Runner(run.repo, run.board, slot, STAND_IN_RUNNER, noise, log=lambda line: None)
    done = []
    while (record := runner.step()) is not None:
        done.append(record)
    return done


def submit(run, cli, agent, source, message):
    """Commit `source` as train.py in the agent's worktree and `swarm submit` it; returns the id."""
    commit_train(run.worktree(agent), source, message)
    with run.agent_env(agent):
        code, out, err = cli("submit", "-m", message)
    assert code == 0, err
    return out.strip()
