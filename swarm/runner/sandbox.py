"""Sandboxes: the bubblewrap (`bwrap`) command line that confines a trainer, the evaluator or an agent.

One mechanism, three policies. A `Sandbox` is a list of mounts over an empty root plus a few switches;
`Sandbox.wrap(argv)` turns a command line into the bwrap command line that runs it confined, so every
process start (the runner's trainer, the evaluator, the launcher's agents) is one call away from
being sandboxed:

    trainer    read-only system and interpreter, its run directory writable, a private /tmp, the data
               cache read-only with <cache>/eval/ hidden, GPU device nodes; no board, no .git, no other
               worktree, no swarm.toml, no network, no capabilities, its own PID namespace
    evaluator  the same, but it sees <cache>/eval/ (read-only) and writes only its result directory
    agent      read-only system, its worktree and the git state committing needs writable, its CLI
               configuration writable, the board and swarm.toml read-only (its inbox writable), the
               board's key hidden; the network stays open (agents call model APIs)

Why each switch:
- the root of a sandbox is an empty tmpfs: only what a policy binds exists, so a forgotten path is
  absent rather than exposed (binding `/` read-only would show the board, every worktree and ~/.ssh);
- `--cap-drop ALL`: run as root, bwrap keeps every capability by default, and a root process with
  CAP_SYS_ADMIN simply unmounts the tmpfs that hides the validation files;
- `--unshare-pid` + `--die-with-parent`: bwrap's pid 1 ends the whole namespace when the command ends or
  when bwrap is killed, so a double-forked `setsid` child dies with its run, and processes of other
  sandboxes (other slots' trainers) cannot be seen or signalled;
- an agent's sandbox starts a new session (`--new-session`): its programs have no controlling terminal,
  so nothing it runs can push keystrokes (TIOCSTI) into the terminal or tmux pane it was started from;
- the environment is handed to bwrap as its own (the caller passes the reduced one to Popen), never as
  `--setenv` arguments, which would put API keys in a command line every process can read.

Long story: docs/trust.md.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import glob
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

BWRAP = "bwrap"
# What a program needs from the system: binaries, libraries, configuration (ld.so.cache, certificates,
# passwd for getpwuid), and /sys for the GPU driver. Missing ones (e.g. /lib32) are skipped.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
# GPU device nodes: bound when present (CUDA_VISIBLE_DEVICES still pins the slot).
GPU_DEVICES = ("/dev/nvidia*", "/dev/nvidia-caps", "/dev/dri")
# What training needs from the runner's environment (names, or patterns of the libraries' own knobs);
# everything else, API keys first, stays outside. A name that looks like a secret never passes a pattern.
TRAINER_ENV = (
    "PATH",
    "LANG",
    "TZ",
    "TERM",
    "PYTHONUNBUFFERED",
    "PYTHONHASHSEED",
    "AUTORESEARCH_PROFILE",
    "AUTORESEARCH_CACHE_DIR",
    "LD_LIBRARY_PATH",
    "LC_*",
    "OMP_*",
    "MKL_*",
    "CUDA_*",
    "NVIDIA_*",
    "NCCL_*",
    "PYTORCH_*",
    "TORCH_*",
    "TORCHINDUCTOR_*",
    "TRITON_*",
)
# An environment variable that holds a secret, by its name.
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|COOKIE|AUTH", re.IGNORECASE)
DATA_DIR = "data"  # <cache>/data/: the training shards (handed out by the runner's clock in sealed runs)
EVAL_DIR = "eval"  # <cache>/eval/: the validation shard and token byte lengths (the evaluator's alone)
SANDBOX_TMP = "/tmp"
PROBE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Mount:
    """One bwrap mount: `ro` / `rw` bind, `dev` bind (device nodes), `tmpfs` (empty, hides what is below)."""

    kind: str
    path: str
    source: str | None = None  # a bind's source, when it differs from `path`

    def args(self) -> list[str]:
        if self.kind == "tmpfs":
            return ["--tmpfs", self.path]
        flag = {"ro": "--ro-bind", "rw": "--bind", "dev": "--dev-bind"}[self.kind]
        return [flag, self.source or self.path, self.path]


@dataclass(frozen=True)
class Sandbox:
    """A confinement: mounts over an empty root, a working directory, and whether the network is there."""

    mounts: tuple[Mount, ...]
    cwd: str
    network: bool = False
    name: str = "sandbox"  # the policy's name, for messages
    new_session: bool = False  # setsid() inside: no controlling terminal (agents, see the module's docstring)

    def wrap(self, argv: list[str]) -> list[str]:
        """The bwrap command line running `argv` inside this sandbox."""
        args = [
            BWRAP,
            "--die-with-parent",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--cap-drop",
            "ALL",
        ]
        if not self.network:
            args.append("--unshare-net")
        if self.new_session:
            args.append("--new-session")
        args += ["--proc", "/proc", "--dev", "/dev"]
        for mount in self.mounts:
            args += mount.args()
        # the skeleton bwrap made to hold the mounts becomes read-only too: no file appears at a path
        # (board/board.jsonl beside a run directory) that would look like the real one from inside
        args += ["--remount-ro", "/"]
        return [*args, "--chdir", self.cwd, "--", *argv]


# ---------------------------------------------------------------------------------------------------------
# Pieces every policy shares


SWARM_PACKAGE = str(Path(__file__).resolve().parents[1])  # the installed swarm/ that runs the evaluator


def _existing(paths: Iterable[str | Path]) -> list[str]:
    seen: list[str] = []
    for path in paths:
        text = str(path)
        if os.path.exists(text) and text not in seen:
            seen.append(text)
    return seen


def interpreter_dirs(python: str | None = None) -> list[str]:
    """Where the interpreter and its packages live: the running one (a venv and its base) and `python`."""
    dirs = [sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parent.parent)]
    if python:
        found = shutil.which(python) or python
        dirs.append(str(Path(found).parent.parent))  # the venv (its bin/python is a link into the base)
        dirs.append(str(Path(found).resolve().parent.parent))
    # a directory inside another bound one needs no bind of its own
    dirs = _existing(dirs)
    return [d for d in dirs if not any(d != o and d.startswith(o.rstrip("/") + "/") for o in dirs)]


def system_mounts(python: str | None = None, gpu: bool = True) -> list[Mount]:
    """A private /tmp, the read-only system, the interpreter and (when present) the GPU device nodes. The
    /tmp comes first: a later bind of a path under /tmp (a checkout, its venv, a test's run directory)
    then shows inside it instead of being covered by it."""
    mounts = [Mount("tmpfs", SANDBOX_TMP)]
    mounts += [Mount("ro", d) for d in _existing(SYSTEM_DIRS)]
    resolver = Path("/etc/resolv.conf")
    if resolver.is_symlink() and not _under_any(str(resolver.resolve().parent), SYSTEM_DIRS):
        mounts.append(Mount("ro", str(resolver.resolve().parent)))  # e.g. /run/systemd/resolve: DNS
    mounts += [Mount("ro", d) for d in interpreter_dirs(python) if not _under_any(d, SYSTEM_DIRS)]
    if gpu:
        for pattern in GPU_DEVICES:
            mounts += [Mount("dev", node) for node in sorted(glob.glob(pattern))]
    return mounts


def _under_any(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def reduced_environment(
    environ: Mapping[str, str], extra: Iterable[str] = (), sandboxed: bool = True
) -> dict[str, str]:
    """Only the allow-listed variables of `environ` (TRAINER_ENV and `extra`); in a sandbox HOME and
    TMPDIR point at its private /tmp, where caches (torch compile, matplotlib) then land."""
    names = (*TRAINER_ENV, *extra)
    env = {k: v for k, v in environ.items() if k in names or _matches_pattern(k, TRAINER_ENV)}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    if sandboxed:
        env["HOME"] = SANDBOX_TMP
        env["TMPDIR"] = SANDBOX_TMP
    elif "HOME" in environ:
        env["HOME"] = environ["HOME"]
    return env


def _matches_pattern(name: str, patterns: Iterable[str]) -> bool:
    if SECRET_NAME.search(name):
        return False
    return any("*" in p and fnmatch.fnmatchcase(name, p) for p in patterns)


def hidden_eval_dir(cache: Path) -> Path:
    """`<cache>/eval/`, created when missing so that an empty tmpfs can cover it in a trainer's sandbox
    (a directory created after the sandbox started would otherwise show through the read-only bind)."""
    path = Path(cache) / EVAL_DIR
    with contextlib.suppress(OSError):  # a read-only cache: nothing can appear in it later either
        path.mkdir(exist_ok=True)
    return path


# ---------------------------------------------------------------------------------------------------------
# Policies


def trainer_sandbox(
    run_dir: Path,
    cache: Path | None,
    python: str | None = None,
    writable: Iterable[str | Path] = (),
    devices: Iterable[Mount] | None = None,
    readable: Iterable[str | Path] = (),
    hide_data: bool = False,
) -> Sandbox:
    """A trainer: writes its run directory (and `writable`: [runner] trainer_writable, its compile cache)
    only. `devices`: the slot's device nodes (swarm.runner.devices), else every GPU's; `readable`: more
    read-only paths (the libraries the library-path variables name). With `hide_data` its training shards
    (<cache>/data) are not there either: the runner's clock hands them out (swarm.runner.clock)."""
    mounts = _with_devices(system_mounts(python, gpu=devices is None), devices, readable)
    if cache is not None and Path(cache).is_dir():
        mounts.append(Mount("ro", str(cache)))
        eval_dir = hidden_eval_dir(cache)
        if eval_dir.is_dir():
            mounts.append(Mount("tmpfs", str(eval_dir)))
        data_dir = Path(cache) / DATA_DIR
        if hide_data and data_dir.is_dir():
            mounts.append(Mount("tmpfs", str(data_dir)))
    mounts += [Mount("rw", d) for d in _existing(writable)]
    mounts.append(Mount("rw", str(run_dir)))
    return Sandbox(tuple(mounts), cwd=str(run_dir), name="trainer")


def evaluator_sandbox(
    run_dir: Path,
    cache: Path,
    result_dir: Path,
    python: str | None = None,
    devices: Iterable[Mount] | None = None,
    readable: Iterable[str | Path] = (),
    writable: Iterable[str | Path] = (),
) -> Sandbox:
    """The evaluator: reads the run directory and the whole cache (validation files included), writes only
    `result_dir` (inside or beside the run directory; created here) and `writable` (its compile cache);
    `devices` and `readable` as for a trainer."""
    Path(result_dir).mkdir(parents=True, exist_ok=True)
    mounts = _with_devices(system_mounts(python, gpu=devices is None), devices, readable)
    # the evaluator is `python -I -m swarm.runner.evaluator`: the swarm package, read-only (an editable
    # install keeps it outside the interpreter's directories)
    mounts += [
        Mount("ro", d) for d in _existing([SWARM_PACKAGE]) if not _under_any(d, interpreter_dirs(python))
    ]
    mounts.append(Mount("ro", str(cache)))
    mounts.append(Mount("ro", str(run_dir)))
    mounts += [Mount("rw", d) for d in _existing(writable)]
    mounts.append(Mount("rw", str(result_dir)))
    return Sandbox(tuple(mounts), cwd=str(run_dir), name="evaluator")


def _with_devices(
    mounts: list[Mount], devices: Iterable[Mount] | None, readable: Iterable[str | Path]
) -> list[Mount]:
    bound = [m.path for m in mounts if m.kind == "ro"]
    mounts = mounts + [Mount("ro", p) for p in _existing(readable) if not _under_any(p, bound)]
    return mounts + list(devices or ())


@dataclass(frozen=True)
class AgentView:
    """What an agent's sandbox is made of: host paths, seen at the same places inside."""

    repo: Path  # the main worktree: read-only (swarm.toml, prepare.py, other worktrees, the board)
    worktree: Path  # the agent's own worktree: writable
    board: Path  # read-only (usually inside the repository; SWARM_BOARD may put it elsewhere)
    git_writable: tuple[Path, ...]  # what committing needs in .git (see agent_git_dirs)
    inbox: Path  # board/inbox/<agent>/: writable (swarm.runner.inbox)
    hidden: tuple[Path, ...] = ()  # covered by an empty directory: the board's key
    config: tuple[Path, ...] = ()  # the agent CLI's configuration directories: writable (made if missing)
    config_files: tuple[Path, ...] = ()  # ... and files (e.g. ~/.claude.json): writable when they exist
    readable: tuple[Path, ...] = ()  # more read-only paths: the CLI's installation, ~/.gitconfig, PATH
    home: Path | None = None  # covered by an empty directory first (the user's other secrets)
    # Files inside writable directories that stay read-only: where git finds the repository from a worktree
    # (<worktree>/.git, the admin dir's commondir and gitdir). Rewritten, they would point git, when run in
    # this worktree by the user or the swarm outside any sandbox, at a config of the agent's making
    # (core.fsmonitor runs a command).
    pinned: tuple[Path, ...] = ()


def agent_sandbox(view: AgentView, python: str | None = None) -> Sandbox:
    """An agent: network on, its worktree, git state, inbox and CLI configuration writable, the rest of
    the repository (board included) read-only, the board's key absent."""
    mounts = system_mounts(python, gpu=False)
    if view.home is not None and str(view.home) not in ("/", ""):
        # before the interpreter's and CLI's binds (a venv inside HOME stays visible), after the private /tmp
        mounts.insert(1, Mount("tmpfs", str(view.home)))
    mounts += [Mount("ro", d) for d in _existing(view.readable) if not _under_any(d, SYSTEM_DIRS)]
    mounts.append(Mount("ro", str(view.repo)))
    if not _under_any(str(view.board), [str(view.repo)]):
        mounts.append(Mount("ro", str(view.board)))
    for path in view.git_writable:
        Path(path).mkdir(parents=True, exist_ok=True)
        mounts.append(Mount("rw", str(path)))
    Path(view.inbox).mkdir(parents=True, exist_ok=True)
    mounts.append(Mount("rw", str(view.inbox)))
    for path in view.config:
        Path(path).mkdir(parents=True, exist_ok=True)
        mounts.append(Mount("rw", str(path)))
    mounts += [Mount("rw", f) for f in _existing(view.config_files)]
    mounts.append(Mount("rw", str(view.worktree)))
    mounts += [Mount("ro", f) for f in _existing(view.pinned)]
    mounts += [Mount("tmpfs", str(p)) for p in view.hidden if Path(p).is_dir()]
    return Sandbox(tuple(mounts), cwd=str(view.worktree), network=True, name="agent", new_session=True)


def agent_environment(environ: Mapping[str, str], allowed_secrets: Iterable[str] = ()) -> dict[str, str]:
    """An agent's environment without the secrets not meant for it: a variable whose name says it is a
    secret (..._KEY, ..._TOKEN, ...) stays only when one of `allowed_secrets` (patterns) names it."""
    allowed = tuple(allowed_secrets)
    return {
        k: v
        for k, v in environ.items()
        if not SECRET_NAME.search(k) or any(fnmatch.fnmatchcase(k, pattern) for pattern in allowed)
    }


# ---------------------------------------------------------------------------------------------------------
# Does it work here?


@functools.lru_cache(maxsize=1)
def sandbox_problem() -> str | None:
    """None when sandboxes work on this machine, else one line saying why not (cached per process)."""
    if not sys.platform.startswith("linux"):
        return f"sandboxes need Linux namespaces (bubblewrap); this is {sys.platform}"
    if shutil.which(BWRAP) is None:
        return "bubblewrap is not installed (`apt-get install bubblewrap`, or your system's package)"
    probe = Sandbox(tuple(system_mounts(gpu=False)), cwd="/", name="probe")
    try:
        done = subprocess.run(
            probe.wrap(["/bin/sh", "-c", "exit 0"]),
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bubblewrap did not start: {e}"
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return f"bubblewrap cannot create a sandbox here (user namespaces disabled?): {reason}"
    return None
