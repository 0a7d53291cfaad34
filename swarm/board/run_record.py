"""The run record: what a swarm run is (tag, base commit, profile) and which agent sits on which slot, and
how commands find the run they are about.

`swarm spawn` writes one when it creates or resumes a run; the latest run record on the board wins. The
runner takes `prepare.py` and the allow-list diff base from `base`; agent commands find their slot and
device class here. `swarm stop AGENT` / `swarm resume` write it again with agents' `stopped` flags changed: the
latest one is the run's desired state, which the coordinator reconciles the tmux windows against.

Words (docs/glossary.md): the record's type is still `run`, but what it defines is a *swarm* (a tag); a
*slot* is where a run executes ("3" for GPU 3, "cpu0" for a CPU worker; swarm.board.slots); an
*experiment* is one commit submitted to be measured.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from swarm.board.slots import (
    BOX_QUEUE_PREFIX,
    CLUSTER_RUNNER,
    box_queue,
    default_device,
    is_class_queue,
    is_ray_queue,
    queue_device,
)
from swarm.board.store import RUN, Board, now
from swarm.errors import BoardError, SwarmError

PROFILES = ("h100", "tiny")
TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")  # a branch component, a tmux session and socket name


@dataclass(frozen=True)
class AgentEntry:
    """An agent as the swarm record lists it."""

    name: str  # "gpu3", "cpu0"
    kind: str  # "claude", "codex", "sweep", "api", ...
    queue: str  # where its jobs go: its own slot ("3", "cpu0") or its class's queue ("box:cpu", "ray:H100")
    device: str  # device class: "NVIDIA H100 80GB HBM3", or "cpu" for a CPU worker
    worktree: str  # absolute path
    branch: str  # swarm/<tag>/<agent>/work (swarms from before: swarm/<tag>/<agent>)
    stopped: bool = False  # `swarm stop AGENT`: left down by the coordinator

    def to_json(self) -> dict[str, Any]:
        """The entry as the board has always written it: the queue under its contract name `gpu`."""
        return {("gpu" if k == "queue" else k): v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> AgentEntry:
        """Build from a record's agent entry; keys added by newer writers are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in entry.items() if k in known}
        values["queue"] = entry["gpu"]
        return cls(**values)


@dataclass(frozen=True)
class Worker:
    """A slot of one box that trains: its runner window, and the device class whose queue it serves."""

    name: str  # "gpu3", "cpu0": the runner's window is runner-<name>
    slot: str  # "3", "cpu0": the runner's slot (its lock, CUDA_VISIBLE_DEVICES)
    device: str

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> Worker:
        return cls(str(entry["name"]), str(entry["slot"]), str(entry["device"]))


@dataclass(frozen=True)
class SwarmRecord:
    """A swarm as the board's `run` record defines it (the record type keeps its old name, a contract)."""

    tag: str
    base: str  # full sha of the base commit
    profile: str  # "h100" | "tiny"
    agents: tuple[AgentEntry, ...] = ()
    created_at: float = field(default_factory=now)
    # `swarm spawn --unsealed`: trainers and agents run without a sandbox (swarm.runner.sandbox), and every
    # result of the run says so
    unsealed: bool = False
    # Pinned by `swarm spawn`: the sha256 of the base's prepare.py and of the profile's data manifest. The
    # runner records nothing from code or data that no longer match (None: not known at spawn).
    prepare_sha256: str | None = None
    data_sha256: str | None = None
    cluster: str | None = None  # Ray address ("auto", "10.0.0.5:6379") when the GPUs are a Ray cluster's
    validate_on: str | None = None  # device class that validates each screening class's new best
    # The slots of a box whose agents share them (agents queue for their class: box_queue). Empty in a swarm
    # from before, where each agent's queue is its own slot, and in a cluster swarm (the cluster's GPUs).
    workers: tuple[Worker, ...] = ()

    def agent(self, name: str) -> AgentEntry | None:
        return next((a for a in self.agents if a.name == name), None)

    def agent_of_queue(self, queue: str) -> AgentEntry | None:
        return next((a for a in self.agents if a.queue == queue), None)

    def device_for_slot(self, key: str) -> str:
        """The device class of a slot or queue: the swarm record's, else "cpu" for CPU slots, else "gpuK"."""
        worker = next((w for w in self.workers if w.slot == key), None)
        if worker is not None:
            return worker.device
        if key.startswith(BOX_QUEUE_PREFIX):
            return queue_device(key)
        agent = self.agent_of_queue(key)
        if agent and agent.device:
            return agent.device
        if is_ray_queue(key):
            return queue_device(key)
        return default_device(key)

    def slots(self) -> list[str]:
        """The slots that train: the box's workers, else (a run from before) each agent's own slot."""
        if self.workers:
            return [w.slot for w in self.workers]
        return list(dict.fromkeys(a.queue for a in self.agents))

    def worker(self, name: str) -> Worker | None:
        """A box's worker by name ("gpu3"); in a run from before, the slot of the agent of that name."""
        found = next((w for w in self.workers if w.name == name), None)
        if found is None and not self.workers:
            agent = self.agent(name)
            if agent is not None and not is_class_queue(agent.queue):
                found = Worker(agent.name, agent.queue, agent.device)
        return found

    def worker_names(self) -> list[str]:
        """The runner windows' names of a box run (runner-<name>)."""
        if self.workers:
            return [w.name for w in self.workers]
        return [a.name for a in self.agents if not is_class_queue(a.queue)]

    def runners_of(self, queue: str) -> list[str]:
        """The runner slots that take jobs from `queue`: the cluster's one runner for its classes, every
        slot of a box's class for the class's queue, else the slot itself."""
        if is_ray_queue(queue):
            return [CLUSTER_RUNNER]
        if queue.startswith(BOX_QUEUE_PREFIX):
            return [w.slot for w in self.workers if box_queue(w.device) == queue]
        return [queue]

    def class_queue(self, slot: str) -> str | None:
        """The class queue a slot serves besides its own, or None (a run from before: its own only)."""
        worker = next((w for w in self.workers if w.slot == slot), None)
        return box_queue(worker.device) if worker is not None else None

    def to_record(self) -> dict[str, Any]:
        record = {
            "type": RUN,
            "tag": self.tag,
            "base": self.base,
            "profile": self.profile,
            "agents": [a.to_json() for a in self.agents],
            "created_at": self.created_at,
            "unsealed": self.unsealed,
            "prepare_sha256": self.prepare_sha256,
            "data_sha256": self.data_sha256,
        }
        if self.cluster:  # only a cluster run says so: a one-box run's record is as it always was
            record.update(cluster=self.cluster, validate_on=self.validate_on)
        if self.workers:
            record["workers"] = [asdict(w) for w in self.workers]
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SwarmRecord:
        try:
            return cls(
                tag=record["tag"],
                base=record["base"],
                profile=record["profile"],
                agents=tuple(AgentEntry.from_json(a) for a in record.get("agents") or ()),
                created_at=record.get("created_at") or record.get("ts") or 0.0,
                unsealed=record.get("unsealed") is True,
                prepare_sha256=record.get("prepare_sha256"),
                data_sha256=record.get("data_sha256"),
                cluster=record.get("cluster"),
                validate_on=record.get("validate_on"),
                workers=tuple(Worker.from_json(w) for w in record.get("workers") or ()),
            )
        except (KeyError, TypeError) as e:
            raise BoardError(f"malformed run record on the board: {e}") from None


def write_run_record(board: Board, run: SwarmRecord) -> dict[str, Any]:
    """Append a run record (the latest one is the run's current definition); returns what was written."""
    if run.profile not in PROFILES:
        raise BoardError(f"unknown profile {run.profile!r} (known: {', '.join(PROFILES)})")
    board.create()
    return board.append(run.to_record())


def validate_tag(tag: str) -> str:
    if not TAG.match(tag):
        raise SwarmError(f"invalid tag {tag!r}: use letters, digits, '_' or '-' (max 32, no '/' or '.')")
    return tag


def require_agent(run: SwarmRecord, name: str) -> AgentEntry:
    slot = run.agent(name)
    if slot is None:
        known = ", ".join(a.name for a in run.agents)
        raise SwarmError(f"no agent {name!r} in swarm {run.tag} (agents: {known})")
    return slot


def latest_run(records: list[dict[str, Any]], tag: str | None = None) -> SwarmRecord | None:
    """The latest run record (of `tag`, when given) among board records."""
    for record in reversed(records):
        if record.get("type") == RUN and (tag is None or record.get("tag") == tag):
            return SwarmRecord.from_record(record)
    return None


class SwarmFollower:
    """The latest swarm record of a tag, following the board incrementally (cheap to ask every tick)."""

    def __init__(self, board: Board, tag: str):
        self.tag = tag
        self.reader = board.reader()
        self.run: SwarmRecord | None = None

    def refresh(self) -> SwarmRecord | None:
        self.run = latest_run(self.reader.read_new(), self.tag) or self.run
        return self.run


def choose_tag(tag: str | None, latest_tag: str | None, board_dir: Path) -> str:
    """The one rule for which run a command is about: `tag`, else $SWARM_TAG, else the board's latest run."""
    tag = tag or os.environ.get("SWARM_TAG") or latest_tag
    if not tag:
        raise SwarmError(f"no swarm on the board {board_dir} (start one with `swarm spawn`)")
    return validate_tag(tag)


def open_run(board: Board, tag: str | None, records: list[dict[str, Any]] | None = None) -> SwarmRecord:
    """The run a command is about (choose_tag), from the board's records (`records`: when the caller has
    read them already; a caller holding a BoardState asks its find_run instead)."""
    board.require()
    if records is None:
        records = board.records()
    latest = latest_run(records)
    tag = choose_tag(tag, latest.tag if latest else None, board.directory)
    run = latest_run(records, tag)
    if run is None:
        raise SwarmError(f"no swarm {tag!r} on the board {board.directory}")
    return run


def set_stopped(board: Board, tag: str, agents: set[str] | None, stopped: bool) -> SwarmRecord:
    """Write the run record again with these agents' (None: all) `stopped` flag set; read and append under
    the board lock, so two `swarm stop AGENT` at once cannot undo each other."""
    with board.locked() as writer:
        run = latest_run(board.records(), tag)
        if run is None:
            raise SwarmError(f"no swarm {tag!r} on the board {board.directory}")
        names = {a.name for a in run.agents} if agents is None else agents
        changed = replace(
            run, agents=tuple(replace(a, stopped=stopped) if a.name in names else a for a in run.agents)
        )
        if changed != run:
            writer.append(changed.to_record())
        return changed
