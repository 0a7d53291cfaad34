"""`swarm agent sweep`: the built-in agent with no LLM, a hyperparameter sweep that follows program.md.

It works like any other agent, in its own worktree and only through the agent commands (`swarm submit`,
`swarm wait`, `swarm best`, `swarm board`, `swarm adopt`, `swarm note`, all with --json): its branch
always points at its best commit; a proposal (swarm.agents.sweep.proposals) is one commit on top of it, submitted and
then reset away (the board pins every submitted commit), with up to `--queue` proposals in flight so its
runner never waits for it. A `keep` moves the branch to that commit; a `promising` one is waited on again
for its confirmation's verdict; `marginal` is run once more under the `single` noise rule only; every
few results it writes a note of what it learned (negative results too) and adopts the global best when
that is ahead by more than the noise band. Restarted, it picks up from its branch and the board.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from swarm.agents.sweep.proposals import Change, Planner, Proposal
from swarm.board.experiments import KEEP, MARGINAL, MEASURED_STATUSES, PENDING_STATUSES, PROMISING
from swarm.errors import SwarmError
from swarm.installation import swarm_argv
from swarm.repo.git import git, rev_parse
from swarm.repo.paths import caller_identity, worktree_root
from swarm.target.hparams import read_knobs, set_knob
from swarm.target.profiles import read_profiles

MAX_SKIPPED = 2000  # proposals in a row already on the board: the neighbourhood is exhausted


@dataclass
class InFlight:
    id: str
    proposal: Proposal
    commit: str
    rerun: bool = False
    verdict: bool = False  # it was `promising`: wait for its confirmation's verdict


class SweepAgent:
    def __init__(
        self,
        worktree: Path,
        max_experiments: int | None = None,
        queue: int | None = None,
        adopt_every: int = 4,
        note_every: int = 4,
        out=print,
    ):
        self.worktree = worktree
        self.max_experiments = max_experiments
        self.queue = queue or 2  # None: a wave sized to its share of the class's slots (start)
        self.wave = queue is None
        self.adopt_every = adopt_every
        self.note_every = note_every
        self.out = out
        self.submitted = 0
        self.finished = 0
        self.in_flight: deque[InFlight] = deque()
        self.seen: set[str] = set()  # train.py contents already on the board (or in flight)
        self.learned: list[str] = []  # results not yet written in a note
        self.config: dict[str, Any] = {}  # knob -> value of the best commit's train.py

    # ---------------------------------------------------------------------------------------------------
    # The world, through the agent commands and git

    def swarm(self, *args: str) -> Any:
        proc = subprocess.run(
            swarm_argv(*args, "--json"),
            cwd=self.worktree,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise SwarmError(f"swarm {args[0]}: {(proc.stderr.strip().splitlines() or ['failed'])[-1]}")
        return json.loads(proc.stdout)

    def log(self, text: str) -> None:
        self.out(f"{time.strftime('%H:%M:%S')} {text}", flush=True)

    # ---------------------------------------------------------------------------------------------------
    # State: the best commit (the branch head), its config and value

    def start(self) -> None:
        status = self.swarm("status")
        self.name = caller_identity(self.worktree).agent
        me = next((a for a in status["agents"] if a["name"] == self.name), None)
        if me is None:
            raise SwarmError(f"agent {self.name!r} is not part of swarm {status['tag']}")
        self.profile = status["profile"]
        # under `confirm` the swarm reruns what deserves it; under `single` a marginal result asks for a rerun
        self.noise_rule = status.get("noise_rule", "single")
        self.group = (me["device"], self.profile)
        if self.wave:  # keep its share of the class's slots busy: ceil(slots / agents sharing them) + 1
            self.queue = max(self.queue, wave_size(status, me))
        # Drop an edit a killed predecessor left half done.
        git(self.worktree, "reset", "--quiet", "--hard", "HEAD")
        self.planner = Planner(self.name, self.profile)
        prepare = (self.worktree / "prepare.py").read_text()
        self.seq_len = read_profiles(prepare)[self.profile]["max_seq_len"]
        self._load_best(rev_parse(self.worktree, "HEAD"), None)
        mine = self.swarm("board", "--agent", self.name, "--top", "100000")["experiments"]
        self.mine = mine
        self.seen |= {e["train_sha256"] for e in mine if e.get("train_sha256")}
        self._refresh_seen()
        for e in mine:  # experiments a previous run of this agent left in flight: see them through
            if e.get("status") in PENDING_STATUSES:
                self.in_flight.append(InFlight(e["id"], Proposal((), kind="earlier"), e["commit"]))
        results = [
            e for e in mine if e.get("status") in MEASURED_STATUSES and e.get("train_sha256") == self.best_sha
        ]
        if results:
            self.best_value = results[-1]["val_bpb"]
        self.log(
            f"sweep {self.name}: profile {self.profile}, best {self._value(self.best_value)} at {self.best_commit[:10]}"
        )

    def _load_best(self, commit: str, value: float | None) -> None:
        self.best_commit = commit
        source = git(self.worktree, "show", f"{commit}:train.py").decode()
        self.best_source = source
        self.best_sha = hashlib.sha256(source.encode()).hexdigest()
        self.best_value = value
        knobs = read_knobs(source, self.profile)
        self.config.clear()  # replaced in place: the planner's stream reads this dict
        self.config.update({name: knob.value for name, knob in knobs.items()})

    def _refresh_seen(self) -> None:
        board = self.swarm("board", "--top", "100000")
        for group in board["groups"]:
            if (group["device"], group["profile"]) == self.group:
                self.seen |= {row["train_sha256"] for row in group["top"]}

    # ---------------------------------------------------------------------------------------------------
    # The loop

    def run(self) -> int:
        self.start()
        stream = self.planner.proposals(self.config)
        if self.best_value is None and not self.in_flight:
            self._submit(Proposal((), kind="baseline"))
        while True:
            while len(self.in_flight) < self.queue and self._budget_left():
                proposal = self._next_new(stream)
                if proposal is None:
                    break
                self._submit(proposal)
            if not self.in_flight:
                break
            job = self.in_flight.popleft()
            self._finish(job, self.swarm("wait", job.id, *(["--verdict"] if job.verdict else [])))
        self._write_note()
        self.log(
            f"sweep {self.name}: done after {self.finished} results; best {self._value(self.best_value)}"
        )
        return 0

    def _budget_left(self) -> bool:
        return self.max_experiments is None or self.submitted < self.max_experiments

    def _next_new(self, stream) -> Proposal | None:
        """The next proposal whose train.py nobody has measured (or queued) yet."""
        for _ in range(MAX_SKIPPED):
            proposal = self._fit(next(stream))
            if proposal is None:
                continue
            sha = hashlib.sha256(self._source_of(proposal).encode()).hexdigest()
            if sha not in self.seen:
                return proposal
        return None

    def _fit(self, proposal: Proposal) -> Proposal | None:
        """The proposal with DEVICE_BATCH_SIZE adjusted so the batch still divides into whole passes, or
        None when it cannot (train.py refuses such a config)."""
        config = proposal.apply(self.config)
        total, device = config.get("TOTAL_BATCH_SIZE"), config.get("DEVICE_BATCH_SIZE")
        if not isinstance(total, int) or not isinstance(device, int):
            return proposal
        while device > 1 and total % (device * self.seq_len):
            device //= 2
        if total % (device * self.seq_len):
            return None
        if device != config["DEVICE_BATCH_SIZE"]:
            fix = Change("DEVICE_BATCH_SIZE", self.config["DEVICE_BATCH_SIZE"], device)
            return replace(proposal, changes=(*proposal.changes, fix))
        return proposal

    def _source_of(self, proposal: Proposal) -> str:
        source = self.best_source
        for change in proposal.changes:
            source = set_knob(source, self.profile, change.name, change.new)
        return source

    def _submit(self, proposal: Proposal, commit: str | None = None) -> None:
        """Commit the proposal on top of the best (or check out `commit` for a rerun), submit, go back."""
        rerun = commit is not None
        if rerun:
            git(self.worktree, "reset", "--quiet", "--hard", commit)
        elif proposal.changes:
            source = self._source_of(proposal)
            (self.worktree / "train.py").write_text(source)
            git(self.worktree, "commit", "--quiet", "-am", proposal.description)
            self.seen.add(hashlib.sha256(source.encode()).hexdigest())
        description = proposal.summary + (" (rerun)" if rerun else "")
        args = ["submit", "-m", description] + (["--rerun"] if rerun else [])
        head = rev_parse(self.worktree, "HEAD")
        try:
            record = self.swarm(*args)
        finally:  # refused or not, the branch goes back to the best: never a proposal left as the base
            git(self.worktree, "reset", "--quiet", "--hard", self.best_commit)
        self.submitted += 1
        self.in_flight.append(InFlight(record["id"], proposal, head, rerun))
        self.log(f"submitted {record['id']}: {description}")

    def _finish(self, job: InFlight, result: dict[str, Any]) -> None:
        status, value = result.get("status"), result.get("val_bpb")
        if status == PROMISING:  # confirmation reruns decide: wait for the verdict after the other jobs
            job.verdict = True
            self.in_flight.append(job)
            self.log(f"{job.id} promising {self._value(value)}: waiting for its confirmation")
            return
        self.finished += 1
        if isinstance(result.get("train_sha256"), str):
            self.seen.add(result["train_sha256"])
        gain = (
            self.best_value - value if status in MEASURED_STATUSES and self.best_value is not None else None
        )
        self.planner.record(job.proposal, gain, kept=status == KEEP)
        self.log(f"{job.id} {status} {self._value(value)}: {job.proposal.description}")
        if job.proposal.kind == "baseline" and status in MEASURED_STATUSES:
            self.best_value = value
        elif status == KEEP:
            git(self.worktree, "reset", "--quiet", "--hard", job.commit)
            self._load_best(job.commit, value)
        elif status == MARGINAL and self.noise_rule == "single" and not job.rerun and self._budget_left():
            self._submit(job.proposal, commit=job.commit)  # inside the noise band: measure it again
        if job.proposal.changes:
            delta = f"{-gain:+.5f}" if gain is not None else "no result"
            self.learned.append(f"{', '.join(str(c) for c in job.proposal.changes)}: {delta} ({status})")
        if self.finished % self.note_every == 0:
            self._write_note()
        if self.finished % self.adopt_every == 0:
            self._adopt_if_behind()

    def _write_note(self) -> None:
        if not self.learned:
            return
        base = f" vs best {self._value(self.best_value)}" if self.best_value is not None else ""
        text = f"sweep {self.name} ({self.profile}){base}: " + "; ".join(self.learned)
        self.swarm("note", text)
        self.learned.clear()

    def _adopt_if_behind(self) -> None:
        """Adopt the global best of this device class and profile when it beats ours beyond the band."""
        best = next((b for b in self.swarm("best") if (b["device"], b["profile"]) == self.group), None)
        self._refresh_seen()
        if best is None or best["agent"] == self.name or self.best_value is None:
            return
        if best["mean"] < self.best_value - best["band"]:
            adopted = self.swarm("adopt", "best")
            self._load_best(adopted["commit"], best["mean"])
            self.swarm(
                "note",
                f"sweep {self.name}: adopted {best['id']} by {best['agent']} "
                f"({self._value(best['mean'])}, ahead of mine by more than the band {best['band']:.5f})",
            )
            self.log(f"adopted {best['id']} from {best['agent']}")

    @staticmethod
    def _value(value: Any) -> str:
        return f"{value:.6f}" if isinstance(value, int | float) else "-"


def wave_size(status: dict[str, Any], me: dict[str, Any]) -> int:
    """How many experiments an agent keeps in flight to keep its share of its class's slots busy (`swarm
    status --json`: the class queue's slots, the agents queueing there), one more to cover the gap between
    a result and the next submission."""
    queue = next((q for q in status.get("queues", []) if q["queue"] == me["gpu"]), None)
    if queue is None or not queue["slots"]:
        return 2
    sharing = sum(1 for a in status["agents"] if a["gpu"] == me["gpu"]) or 1
    return -(-queue["slots"] // sharing) + 1


def cmd_sweep(args) -> int:
    agent = SweepAgent(worktree_root(), max_experiments=args.max_experiments, queue=args.queue)
    return agent.run()
