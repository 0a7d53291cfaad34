"""Each agent's own git objects, and the shared store every submitted commit is copied into.

Agents cannot write the repository's object store: a sandboxed agent's git writes into its own directory
`.git/swarm-objects/<agent>/` and reads the shared store as an alternate, so no agent can delete or rewrite
an object another agent or the board needs. When an agent submits, its runner copies the commit into the
shared store (`import_commit`) with `git index-pack`, which names each object by hashing what it received:
a rewritten object arrives under its real name, never the one the board records. Branch tips are copied the
same way every few seconds; tools outside any sandbox that read the agents' branches add every agent's
directory as an alternate (`branch_reader_env`), the runner never does. Long story: docs/trust.md.
"""

from __future__ import annotations

import os
import stat
import subprocess
import threading
from pathlib import Path

from swarm.errors import GitError
from swarm.repo.git import FULL_SHA, RAW_CONFIG, RAW_ENV, git, git_or_none, git_text

AGENT_OBJECTS = "swarm-objects"  # .git/swarm-objects/<agent>/: an agent's own objects
IMPORT_TIMEOUT_S = 60.0  # copying a submitted commit: an agent's directory that stalls git gets this long
IMPORT_MAX_BYTES = 256 << 20  # ... and this much: train.py and friends are kilobytes
ANCESTORS_LOOKED_AT = 64  # of a submitted commit, for one the shared store has already
EXPERIMENT_REFS = "refs/swarm/experiments/"  # pins of submitted commits: all in the shared store


def common_dir(repo: Path) -> Path:
    """The repository's .git (the common directory of every worktree)."""
    return Path(git_text(repo, "rev-parse", "--path-format=absolute", "--git-common-dir"))


def agent_objects(common: Path, agent: str) -> Path:
    """Where an agent's own git objects go (`agent` is a validated agent name)."""
    return common / AGENT_OBJECTS / agent


def agent_git_env(common: Path, agent: str) -> dict[str, str]:
    """The environment that makes an agent's git write its own object directory and read the shared one."""
    return {
        "GIT_OBJECT_DIRECTORY": str(agent_objects(common, agent)),
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(common / "objects"),
    }


def branch_reader_env(common: Path) -> dict[str, str]:
    """An environment in which git outside any sandbox reads every agent's unsubmitted commits too (its
    branch may point at one): every agent's object directory as an alternate. Empty when there is none."""
    base = common / AGENT_OBJECTS
    try:
        dirs = sorted(str(d) for d in base.iterdir() if d.is_dir() and not d.is_symlink())
    except OSError:
        return {}
    return {"GIT_ALTERNATE_OBJECT_DIRECTORIES": os.pathsep.join(dirs)} if dirs else {}


def in_shared_store(repo: Path, commit: str) -> bool:
    """Whether `commit` is a commit in the shared store (agents' own directories not consulted)."""
    return git_or_none(repo, *RAW_CONFIG, "cat-file", "-e", f"{commit}^{{commit}}") is not None


def _not_plain(directory: Path) -> str | None:
    """The first entry under `directory` that is neither a plain file nor a directory, or None."""
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            try:
                mode = os.lstat(os.path.join(root, name)).st_mode
            except OSError:
                continue  # gone meanwhile: git will not read it either
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                return os.path.relpath(os.path.join(root, name), directory)
    return None


def _shared_ancestors(repo: Path, commit: str, env: dict[str, str]) -> list[str]:
    """The commit's recent ancestors (ANCESTORS_LOOKED_AT, newest first) that the shared store has: what
    the copy may leave out, usually its parent, which is cheaper for git to exclude than every pin."""
    try:
        done = subprocess.run(
            ["git", *RAW_CONFIG, "rev-list", f"--max-count={ANCESTORS_LOOKED_AT}", commit],
            cwd=repo,
            env=env,
            capture_output=True,
            timeout=IMPORT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return []
    ancestors = [sha for sha in done.stdout.decode().split() if FULL_SHA.fullmatch(sha)]
    if done.returncode != 0 or not ancestors:
        return []
    try:  # asked of the shared store alone (no agent directory in this git's environment)
        checked = git(
            repo,
            *RAW_CONFIG,
            "cat-file",
            "--batch-check",
            input="".join(f"{a}\n" for a in ancestors).encode(),
        )
    except GitError:
        return []
    lines = checked.decode().splitlines()
    return [a for a, line in zip(ancestors, lines, strict=False) if not line.endswith(" missing")]


def _shared_tips(repo: Path) -> list[str]:
    """What the shared store surely has: the pins of submitted commits and the main worktree's HEAD."""
    pins = git_text(repo, "for-each-ref", "--format=%(objectname)", EXPERIMENT_REFS).split()
    head = git_or_none(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    return [*pins, head.decode().strip()] if head else pins


def import_commit(repo: Path, agent: str, commit: str) -> bool:
    """Copy `commit` and what it reaches from `agent`'s object directory into the shared store; True when
    something was copied, False when it was there already or the agent has no directory of its own (an
    unsealed run commits into the shared store directly). GitError when the copy fails or is refused."""
    if in_shared_store(repo, commit):
        return False
    common = common_dir(repo)
    own = agent_objects(common, agent)
    if not own.is_dir() or own.is_symlink():
        return False
    strange = _not_plain(own)
    if strange:  # a fifo would stall git, a link point it at any file of the machine
        raise GitError(f"{commit[:12]}: its object directory holds something that is not a file: {strange}")
    env = {**os.environ, **RAW_ENV, **agent_git_env(common, agent)}
    have = _shared_ancestors(repo, commit, env) or _shared_tips(repo)
    revs = "".join([f"{commit}\n", *(f"^{sha}\n" for sha in have)]).encode()
    pack = subprocess.Popen(
        ["git", *RAW_CONFIG, "pack-objects", "--revs", "--stdout", "-q"],
        cwd=repo,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    index = subprocess.Popen(
        ["git", *RAW_CONFIG, "index-pack", "--stdin", "--strict"],
        cwd=repo,
        env={**os.environ, **RAW_ENV},
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # a fifo or a huge object in the agent's directory must not hold the runner: both end at the deadline
    timer = threading.Timer(IMPORT_TIMEOUT_S, lambda: (pack.kill(), index.kill()))
    timer.start()
    problem = None
    try:
        try:
            pack.stdin.write(revs)
            pack.stdin.close()
        except OSError:
            problem = "git pack-objects stopped early"
        copied = 0
        while problem is None and (chunk := pack.stdout.read(1 << 16)):
            copied += len(chunk)
            if copied > IMPORT_MAX_BYTES:
                problem = f"the commit brings more than {IMPORT_MAX_BYTES >> 20} MiB of objects"
                break
            try:
                index.stdin.write(chunk)
            except OSError:
                break  # index-pack gave up: its own message below
        if problem:
            pack.kill()
            index.kill()
        with_pack = pack.wait()
        index.stdin.close()
        err = index.stderr.read().decode(errors="replace").strip()
        with_index = index.wait()
    finally:
        timer.cancel()
        for proc in (pack, index):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if problem is None and (with_pack != 0 or with_index != 0):
        last = err.splitlines()[-1] if err else f"exit codes {with_pack}, {with_index}"
        problem = f"its objects could not be copied ({last[:200]})"
    if problem is None and not in_shared_store(repo, commit):
        problem = "its objects do not make that commit"
    if problem:
        raise GitError(f"{commit[:12]}: {problem}")
    return True


def keep_refs(repo: Path, agent: str, branch: str) -> int:
    """Copy the tip of an agent's branch and of its saved refs (`swarm adopt` keeps the work it left there)
    into the shared store when they are not there (its runner does so every few seconds): other agents'
    `git log --all` then reads every branch, a user's `git gc` finds every object its refs name, and a
    commit never submitted outlives its agent's own directory. Returns how many tips were copied."""
    out = git_or_none(
        repo, "for-each-ref", "--format=%(objectname)", f"refs/heads/{branch}", f"refs/swarm/saved/{agent}/"
    )
    tips = {tip for tip in (out.decode().split() if out else []) if FULL_SHA.fullmatch(tip)}
    return sum(import_commit(repo, agent, tip) for tip in sorted(tips))
