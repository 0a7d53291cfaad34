"""Screen, then validate, across device classes: `swarm spawn --ray ... --validate-on H200`.

The 16-GPU run screened on H100s and validated on H200s, by hand. Here the coordinator does it: whenever a
screening class (any class but the validator) has a new best content, it queues `repeats` validation
runs of that commit for the validator class's queue (`ray:H200`), marked `validate_of` the screening
experiment. They train on the validator's GPUs and land in the validator's group, so the board keeps the
classes apart (results are compared only within a class): `swarm best` shows the screening best and,
beside it, the validator's number for the same train.py. Each content is validated once.
"""

from __future__ import annotations

from typing import Any

from swarm.board.experiments import new_experiment
from swarm.board.fold import BoardState
from swarm.board.noise import NoiseSettings
from swarm.board.slots import ray_queue
from swarm.board.store import Board

REQUESTED_BY = "validate-on"


class ClassValidator:
    def __init__(self, board: Board, validator: str, repeats: int = 1, noise: NoiseSettings | None = None):
        self.board = board
        self.validator = validator
        self.repeats = repeats
        self.state = BoardState(board, noise)  # the run's [noise]: what a best is (a confirmed mean)
        self.validated: set[tuple[str, str]] = set()  # (profile, train.py sha) with validation runs
        self.state.observers.append(self._note)

    def _note(self, record: dict[str, Any]) -> None:
        if record.get("validate_of") and record.get("train_sha256"):
            self.validated.add((str(record.get("profile")), record["train_sha256"]))

    def tick(self) -> list[str]:
        """Queue validation runs of every screening class's best not validated yet; returns what it
        queued ("validate 3fa1c2d0 on H200"), for logs and tests."""
        self.state.refresh()
        actions = []
        for (device, profile), best in self.state.bests().items():
            if device == self.validator or (profile, best.train_sha256) in self.validated:
                continue
            with self.board.locked() as writer:
                self.state.refresh()
                if (profile, best.train_sha256) in self.validated:
                    continue
                original = best.experiment
                for _ in range(self.repeats):
                    writer.append(
                        new_experiment(
                            **{
                                k: original.get(k)
                                for k in ("agent", "profile", "tag", "branch", "commit", "parent", "base")
                            },
                            description=original.get("description"),
                            gpu=ray_queue(self.validator),
                            device=self.validator,
                            train_sha256=best.train_sha256,
                            validate_of=original["id"],
                            requested_by=REQUESTED_BY,
                        )
                    )
                self.validated.add((profile, best.train_sha256))
            actions.append(f"validate {original['id']} on {self.validator}")
        return actions
