"""False keeps and power of the keep rules, on a synthetic noisy objective of known truth.

    .venv/bin/python bench/noise_decisions.py [--trials 400] [--seed 0] [--effects 0,1,2,3,4,5] [--drifts 0,-0.5]

Each trial is a fresh board of one device class with three slots: the three agents' baselines (one
content, true mean 1.0), then agent 0's change, whose true mean is lower by `effect` x sigma (effect 0: a
change that does nothing). Every value is the truth plus Gaussian noise of sigma 0.01. The board, the
runners' claim / record and everything they decide are the real code (swarm.runner.service.Runner,
swarm.board.fold, swarm.board.noise, swarm.board.reruns); only training is replaced by a draw.
The rules run side by side on the same draws:
- `single` (the rule before issue 14): one run beyond max(2 sigma, floor) is keep; a marginal result is
  rerun once by its agent (as the sweep agent does), and the mean of the two decides;
- `unpaired`: calibration, screen, then confirmation reruns queued by the runner, the mean of all the
  change's runs judged against the baselines' mean (`[noise] paired = false`);
- `paired` (the default): the same, each confirmation rerun beside a control run of the reference on its
  slot, the reruns judged against the controls only.
A drift (`--drifts`, in sigma per round of runs; negative: the machine gets faster, as when a load goes
away) adds drift x round to every value, a round being one pass in which each free slot runs one job: the
baselines run in round 0, the change in round 1, its confirmation after. Printed per drift, rule and
effect: the share of trials where the change ended `keep` (effect 0: the false-keep rate, goal <= 5%;
effect 3: the power, goal >= 80%) and the reruns (controls included) per change.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from swarm.board.experiments import KEEP, MARGINAL, new_experiment  # noqa: E402
from swarm.board.noise import NoiseSettings  # noqa: E402
from swarm.board.run_record import AgentEntry, SwarmRecord  # noqa: E402
from swarm.board.store import Board  # noqa: E402
from swarm.runner.service import Runner  # noqa: E402

SIGMA = 0.01
BASE = 1.0
DEVICE = "sim"
PROFILE = "tiny"
SLOTS = ("0", "1", "2")
# the tiny profile's floor relative to its measured sigma (0.02 / 0.039): about half a sigma
FLOOR = {PROFILE: 0.5 * SIGMA}


class Trial:
    """One board, three slots, real runners; `train` draws a value for a content."""

    def __init__(
        self, directory: Path, noise: NoiseSettings, truth: dict[str, float], rng: random.Random, drift: float
    ):
        self.board = Board(directory).create()
        agents = tuple(
            AgentEntry(f"gpu{s}", "sim", s, DEVICE, str(directory), f"swarm/sim/gpu{s}") for s in SLOTS
        )
        self.board.append(SwarmRecord("sim", "0" * 40, PROFILE, agents).to_record())
        self.runners = {s: Runner(directory, self.board, s, noise=noise, log=lambda *_: None) for s in SLOTS}
        self.truth = truth
        self.rng = rng
        self.drift = drift  # sigma per round
        self.round = 0

    def submit(self, slot: str, sha: str) -> str:
        job = new_experiment(
            agent=f"gpu{slot}", gpu=slot, device=DEVICE, profile=PROFILE, tag="sim", commit=sha * 40,
            base="0" * 40, train_sha256=sha, description=sha,
        )  # fmt: skip
        return self.board.append(job)["id"]

    def drain(self) -> list[dict]:
        """Run every queued job (and what their results queue) to the end; the final records."""
        done = []
        while True:
            worked = False
            for runner in self.runners.values():
                job = runner.claim()
                if job is None:
                    continue
                worked = True
                value = self.truth[job["train_sha256"]] + self.rng.gauss(0.0, SIGMA)
                value += self.drift * SIGMA * self.round
                done.append(runner.record(job, {"val_bpb": value, "status": None, "training_seconds": 1.0}))
            if not worked:
                return done
            self.round += 1

    def status(self, eid: str) -> str:
        state = self.runners[SLOTS[0]].state
        state.refresh()
        return state.experiments[eid]["status"]


RULES = {
    "single": NoiseSettings(floor=FLOOR, rule="single"),
    "unpaired": NoiseSettings(floor=FLOOR, paired=False),
    "paired": NoiseSettings(floor=FLOOR),
}


def run_trial(rule: str, effect: float, seed: int, scratch: Path, drift: float) -> tuple[bool, int]:
    """(the change ended keep, reruns asked for) for one trial."""
    noise = RULES[rule]
    truth = {"base": BASE, "change": BASE - effect * SIGMA}
    directory = Path(tempfile.mkdtemp(dir=scratch))
    try:
        trial = Trial(directory, noise, truth, random.Random(seed), drift)
        for slot in SLOTS:
            trial.submit(slot, "base")
        trial.drain()
        change = trial.submit(SLOTS[0], "change")
        finals = trial.drain()
        reruns = sum(1 for r in finals if r.get("verify_of"))
        if rule == "single" and trial.status(change) == MARGINAL:
            rerun = trial.submit(SLOTS[0], "change")  # the agent is asked to rerun a marginal result
            trial.drain()
            reruns += 1
            return trial.status(rerun) == KEEP, reruns
        return trial.status(change) == KEEP, reruns
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=400, help="trials per rule and effect")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--effects", default="0,1,2,3,4,5", help="true effects in sigma")
    parser.add_argument("--drifts", default="0,-0.5", help="drifts in sigma per round of runs")
    args = parser.parse_args()
    effects = [float(e) for e in args.effects.split(",")]
    drifts = [float(d) for d in args.drifts.split(",")]
    scratch = Path(
        tempfile.mkdtemp(prefix="noise-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    )
    started = time.monotonic()
    print(f"{args.trials} trials per cell; sigma {SIGMA}, floor {FLOOR[PROFILE]}, 3 slots, real board code")
    try:
        for drift in drifts:
            print(f"drift {drift:g} sigma per round")
            print(f"{'effect':>8} | " + " | ".join(f"{rule + ': keep':>14} {'reruns':>7}" for rule in RULES))
            for effect in effects:
                row = []
                for rule in RULES:
                    kept = reruns = 0
                    for t in range(args.trials):
                        # the same seed for every rule: the same draws, as far as the rules draw alike
                        seed = args.seed * 1_000_003 + int(effect * 1000) * 7919 + t
                        k, r = run_trial(rule, effect, seed, scratch, drift)
                        kept += k
                        reruns += r
                    row.append(f"{kept / args.trials:>14.1%} {reruns / args.trials:>7.2f}")
                print(f"{effect:>7g}σ | " + " | ".join(row), flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"goals: effect 0 keep <= 5% (false keeps), effect 3 keep >= 80% (power); {time.monotonic() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
