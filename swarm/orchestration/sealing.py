"""What an agent's sandbox holds: the launcher's one call that confines an agent of a sealed run.

    argv, env = seal_agent(run, slot, paths, command, argv, env)

Every agent kind goes through here, so none has more than its own things writable: its worktree, what
committing needs in .git (its own object directory, swarm.repo.stores; its branch's refs), its inbox, its
CLI's configuration and a private /tmp. The rest of the repository, the board and every file its command
line names are read-only, including the files that tell git where the repository is, so git run outside
the sandbox never reads a config the agent wrote. The board's key, the rest of HOME, other processes and
secrets its kind was not given are absent. swarm.runner.sandbox has the mechanism and the reasons; an
`--unsealed` run starts agents as they are, with the same environment filter. Long story: docs/trust.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import swarm
from swarm.agents.kinds import AgentCommand, AgentSettings
from swarm.board.holdout import private_dir
from swarm.board.run_record import AgentEntry, SwarmRecord
from swarm.board.signing import key_dir
from swarm.config import load_section
from swarm.errors import SwarmError
from swarm.repo.git import git_text
from swarm.repo.paths import RunPaths
from swarm.repo.stores import agent_git_env, agent_objects, common_dir
from swarm.runner.inbox import inbox_dir
from swarm.runner.sandbox import AgentView, agent_environment, agent_sandbox


def seal_agent(
    run: SwarmRecord,
    slot: AgentEntry,
    paths: RunPaths,
    command: AgentCommand,
    argv: list[str],
    env: dict[str, str],
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment an agent starts with: inside its sandbox unless the run is
    unsealed; without the secrets that are not its own either way."""
    env = agent_environment(env, command.secrets)
    if run.unsealed:
        return argv, env
    git_dirs = agent_git_dirs(Path(slot.worktree), slot)
    admin, common = git_dirs[-1], common_dir(Path(slot.worktree))
    config, config_files = command.configuration(env)
    config += [
        Path(os.path.expandvars(d)) for d in load_section(paths.repo, "agents", AgentSettings).writable
    ]
    config += [paths.board / d for d in command.board_dirs]  # e.g. the Optuna agents' shared study
    home = Path(env.get("HOME") or Path.home())
    view = AgentView(
        repo=paths.repo,
        worktree=Path(slot.worktree),
        board=paths.board,
        git_writable=tuple(git_dirs),
        pinned=(Path(slot.worktree) / ".git", admin / "commondir", admin / "gitdir"),
        inbox=inbox_dir(paths.board, slot.name),
        hidden=(key_dir(paths.board), private_dir(paths.board, create=True)),  # key, holdout
        config=tuple(config),
        config_files=tuple(config_files),
        readable=tuple(
            installations(argv[0], env)
            + named_paths(argv[1:], home)
            + [home / ".gitconfig", home / ".config" / "git"]
        ),
        home=home,
    )
    env |= agent_git_env(common, slot.name)  # its objects go to its own directory (swarm.repo.stores)
    if "GIT_CONFIG_COUNT" not in env:
        # git's automatic housekeeping writes where an agent may not (.git/packed-refs, gc.pid): off
        env |= {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "gc.auto", "GIT_CONFIG_VALUE_0": "0"}
    return agent_sandbox(view).wrap(argv), env


def named_paths(args: list[str], home: Path) -> list[Path]:
    """The existing files and directories an agent's command line names (`python3 /opt/mybot.py --cfg
    /etc/mybot`, also `--cfg=/etc/mybot`): its program's own script and data, shown read-only. A path
    that holds HOME would show all of it: one line saying so, and what to name instead."""
    found = []
    for arg in args:
        for text in (arg, arg.partition("=")[2]):
            if not text.startswith("/") or "\n" in text:
                continue
            path = Path(text)
            try:
                exists = path.exists()
            except OSError:  # a prompt that merely starts with "/": too long to be a path
                continue
            if not exists:
                continue
            if home.resolve().is_relative_to(path.resolve()):
                raise SwarmError(
                    f"the agent command names {path}, which holds your home directory: a sandbox cannot "
                    "show it; name the files inside it the agent needs (or run with --unsealed)"
                )
            found.append(path)
    return found


def agent_git_dirs(worktree: Path, slot: AgentEntry) -> list[Path]:
    """What committing (and `swarm adopt`) writes in the repository's .git, for this agent's worktree.

    Git keeps a branch ref as a file in its directory and updates it by renaming a lock file beside it,
    so that directory is writable: an agent's branch `swarm/<tag>/<agent>/work` is alone in its own, and
    no other agent's branch can be moved, deleted or locked. (A run spawned before that layout has every
    branch in `swarm/<tag>/`, which its agents can all write: spawn a new run to have them apart. Binding
    the other branch files read-only would not do: the owner's next commit renames a new file over its
    path, which takes the binding away.)"""
    common = common_dir(worktree)
    admin = Path(git_text(worktree, "rev-parse", "--path-format=absolute", "--git-dir"))
    branch_dir = Path(slot.branch).parent
    return [
        agent_objects(common, slot.name),
        common / "refs" / "heads" / branch_dir,
        common / "logs" / "refs" / "heads" / branch_dir,
        common / "refs" / "swarm" / "saved" / slot.name,
        admin,  # last: seal_agent pins files in it
    ]


def installations(program: str, env: dict[str, str]) -> list[Path]:
    """Read-only places an agent's programs come from: this installation of swarm (an editable install
    imports from its checkout), the directories on PATH, and for each program from a node_modules tree
    (the agent CLIs) that whole tree, since its entry points are links into it."""
    places = [Path(swarm.__file__).resolve().parents[1]]
    home = Path(env.get("HOME") or Path.home()).resolve()
    for entry in env.get("PATH", "").split(os.pathsep):
        path = Path(entry).resolve() if entry else None
        # a PATH entry that is HOME or holds it (or is relative) would show all of HOME: left out
        if path is None or not Path(entry).is_absolute() or not path.is_dir() or home.is_relative_to(path):
            continue
        places.append(_node_modules(path) or path)
    found = _which(program, env)
    if found is not None:
        resolved = found.resolve()
        places.append(_node_modules(resolved) or resolved.parent)
    return places


def _node_modules(path: Path) -> Path | None:
    parts = path.parts
    if "node_modules" not in parts:
        return None
    return Path(*parts[: parts.index("node_modules") + 1])


def _which(program: str, env: dict[str, str]) -> Path | None:
    """Where `program` is on the agent's PATH (which is not necessarily this process's)."""
    if os.sep in program:
        return Path(program)
    for entry in env.get("PATH", "").split(os.pathsep):
        candidate = Path(entry or ".") / program
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None
