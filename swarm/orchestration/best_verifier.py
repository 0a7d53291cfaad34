"""Verifying new bests unasked: the coordinator queues a rerun of each group's new best on another slot.

A best found once may be a lucky draw of the noise; the morning question is whether it holds. So when a
(device class, profile) group gets a new best content, the coordinator schedules `swarm verify` for it
once on another slot of the same class (none when the class has one slot only: `swarm verify` by hand),
and `swarm best` / `swarm watch` show it verified when the rerun holds. A content is verified at most once: a failed verification is an
answer too, and its reruns already count as repeats of that content.

Under the `confirm` noise rule (the default, swarm.board.noise) a best is already a mean of confirmed runs
(its confirmation reruns were queued by the runner, through the same verification records), so the
verifier only acts under the `single` rule.
"""

from __future__ import annotations

from swarm.board.fold import BoardState
from swarm.board.noise import NoiseSettings
from swarm.board.reruns import rerun_queues, schedule_verify
from swarm.board.store import Board
from swarm.errors import SwarmError

REQUESTED_BY = "coordinator"


class BestVerifier:
    def __init__(
        self,
        board: Board,
        repeats: int = 1,
        state: BoardState | None = None,
        noise: NoiseSettings | None = None,
    ):
        self.board = board
        self.repeats = repeats
        # its owner's state when it has one (the coordinator's), else its own, folded with `noise`
        self.state = state or BoardState(board, noise)

    def tick(self) -> list[str]:
        """Queue verification of every group's best that was never verified nor is being verified;
        returns what it queued ("verify 3fa1c2d0 on 1"), for logs and tests."""
        if self.state.noise.confirms:
            return []  # bests are confirmed means already
        self.state.refresh()
        actions = []
        for key, best in self.state.bests().items():
            if best.verified or (key, best.train_sha256) in self.state.verifications:
                continue
            content = self.state.content(key, best.train_sha256)
            if content is None or any(self.state.verify_reruns(eid) for eid in content.ids):
                continue  # its reruns are queued or running (or were lost before a verdict)
            own = str(best.experiment.get("gpu"))
            if rerun_queues(self.state, best.experiment, 1) == [own]:
                continue  # no other slot of its class: a rerun where it ran says little, and costs its agent
            try:
                reruns = schedule_verify(
                    self.board, self.state, best.experiment["id"], self.repeats, REQUESTED_BY
                )
            except SwarmError as e:  # e.g. the best is itself a rerun: nothing to verify
                actions.append(f"no verify of {best.experiment['id']}: {e}")
                continue
            slots = ",".join(sorted({str(r["gpu"]) for r in reruns}))
            actions.append(f"verify {best.experiment['id']} on {slots}")
        return actions
