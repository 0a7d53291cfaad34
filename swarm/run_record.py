"""The run record: what a swarm run is (tag, base commit, profile) and which agent sits on which slot.

`swarm spawn` writes one when it creates or resumes a run; the latest run record on the board wins. The
runner takes `prepare.py` and the allow-list diff base from `base`; agent commands find their slot and
device class here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from swarm.board import RUN, Board, now
from swarm.errors import BoardError

PROFILES = ("h100", "tiny")


@dataclass(frozen=True)
class AgentSlot:
    name: str  # "gpu3", "cpu0"
    kind: str  # "claude", "codex", "sweep", "api", ...
    gpu: str  # runner slot: "3" or "cpu0"
    device: str  # device class: "NVIDIA H100 80GB HBM3", or "cpu" for a CPU worker
    worktree: str  # absolute path
    branch: str  # swarm/<tag>/<agent>
    stopped: bool = False  # `swarm stop AGENT`: left down by the coordinator

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> AgentSlot:
        """Build from a record's agent entry; keys added by newer writers are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in entry.items() if k in known})


@dataclass(frozen=True)
class RunRecord:
    tag: str
    base: str  # full sha of the base commit
    profile: str  # "h100" | "tiny"
    agents: tuple[AgentSlot, ...] = ()
    created_at: float = field(default_factory=now)

    def agent(self, name: str) -> AgentSlot | None:
        return next((a for a in self.agents if a.name == name), None)

    def slot(self, gpu: str) -> AgentSlot | None:
        return next((a for a in self.agents if a.gpu == gpu), None)

    def device_for_slot(self, gpu: str) -> str:
        """The device class of a runner slot: the run record's, else "cpu" for CPU slots, else "gpuK"."""
        agent = self.slot(gpu)
        if agent and agent.device:
            return agent.device
        return "cpu" if gpu.startswith("cpu") else f"gpu{gpu}"

    def slots(self) -> list[str]:
        return [a.gpu for a in self.agents]

    def to_record(self) -> dict[str, Any]:
        return {
            "type": RUN,
            "tag": self.tag,
            "base": self.base,
            "profile": self.profile,
            "agents": [asdict(a) for a in self.agents],
            "created_at": self.created_at,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RunRecord:
        try:
            return cls(
                tag=record["tag"],
                base=record["base"],
                profile=record["profile"],
                agents=tuple(AgentSlot.from_json(a) for a in record.get("agents") or ()),
                created_at=record.get("created_at") or record.get("ts") or 0.0,
            )
        except (KeyError, TypeError) as e:
            raise BoardError(f"malformed run record on the board: {e}") from None


def write_run_record(board: Board, run: RunRecord) -> dict[str, Any]:
    """Append a run record (the latest one is the run's current definition); returns what was written."""
    if run.profile not in PROFILES:
        raise BoardError(f"unknown profile {run.profile!r} (known: {', '.join(PROFILES)})")
    board.create()
    return board.append(run.to_record())
