"""swarm.toml checked as a whole before anything starts: every section, every key, every value.

Each module reads its own table when it needs it (swarm.config.load_section), which is late: a runner or
the coordinator would die on a typo long after `swarm spawn` said "running". `spawn`, `resume` and
`doctor` call `check_config` first, so a mistake in any section is one line and a non-zero exit before a
window starts. The keys, types and ranges come from the settings dataclasses themselves (a key another
module adds to its dataclass is known here at once); only the list of sections lives here.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from swarm.config import CONFIG_FILE, did_you_mean, from_table, read_config
from swarm.errors import SwarmError

# section -> "module:dataclass", imported only when the file has that section (ray's needs ray installed)
SECTIONS: dict[str, str] = {
    "agents": "swarm.agents.kinds:AgentSettings",
    "api": "swarm.agents.api.agent:ApiSettings",
    "coordinator": "swarm.orchestration.coordinator:CoordinatorSettings",
    "noise": "swarm.board.noise:NoiseSettings",
    "optuna": "swarm.agents.optuna.agent:OptunaSettings",
    "pruning": "swarm.runner.pruning:PruningSettings",
    "ray": "swarm.runner.ray:RaySettings",
    "runner": "swarm.runner.settings:RunnerSettings",
}


def settings_class(section: str) -> type | None:
    """The dataclass of a section, or None when its module cannot be imported here (ray not installed:
    such a run cannot start anyway, and says so itself)."""
    module, _, name = SECTIONS[section].partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        return None


def check_config(repo: Path) -> None:
    """Raise SwarmError (one line) for the first mistake in the repository's swarm.toml, if any."""
    config = read_config(repo)
    for section, table in config.items():
        if section not in SECTIONS:
            raise SwarmError(
                f"{CONFIG_FILE}: unknown section [{section}]{did_you_mean(section, SECTIONS)} "
                f"(known: {', '.join(sorted(SECTIONS))})"
            )
        cls = settings_class(section)
        if cls is None:
            continue
        settings = from_table(table, cls, where=f"{CONFIG_FILE} [{section}]")
        resolved = getattr(settings, "resolved", None)  # [api]: the provider's combination of keys
        if callable(resolved):
            resolved()
