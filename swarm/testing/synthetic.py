"""Plausible boards of a long swarm run, for benchmarks, screenshots and display tests (never a real run).

`synthetic_run(agents=64, experiments=100_000)` returns the records a run of that size leaves: the run
record, each experiment's queued -> running -> final records with every field, the first experiment of
every agent on the shared baseline content (so the repeats give a sigma), and a val_bpb that improves
slowly with noise, as in the published 8-agent run. Everything follows from `seed` and `start`, so the
same call gives the same board.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from swarm.board.experiments import CRASH, DISCARD, INVALID, KEEP, MARGINAL, RUNNING, TIMEOUT, new_experiment
from swarm.board.run_record import AgentEntry, SwarmRecord
from swarm.board.signing import sign_line
from swarm.board.store import VERIFICATION, Board

START = 1_767_225_600.0  # 2026-01-01 00:00 UTC: fixed, so that displays of a synthetic board are stable
H100 = "NVIDIA H100 80GB HBM3"
BASELINE = 0.9979
ASYMPTOTE = 0.970
FLOOR = 3e-4
NOISE = 2e-4  # run-to-run sigma of one content

CHANGES = [
    "TOTAL_BATCH_SIZE 2**19 -> 2**18 (more steps in the budget)",
    "WEIGHT_DECAY 0.2 -> 0.08",
    "SOFTCAP 15 -> 10",
    "ASPECT_RATIO 64 -> 96 (model_dim 768)",
    "MUON_BETA2 0.95 -> 0.98",
    "WARMDOWN_RATIO 0.5 -> 0.6",
    "FINAL_LR_FRAC 0.1 -> 0.05",
    "QK norm before RoPE",
    "scale queries by 1.25",
    "fixed short window 512",
    "ROPE_BASE 10000 -> 60000",
    "MATRIX_LR 0.04 -> 0.028",
    "UNEMBEDDING_LR 0.004 -> 0.009",
    "SCALAR_LR 0.5 -> 0.3",
    "DEPTH 8 -> 12, TOTAL_BATCH_SIZE 2**17",
    "ADAM_BETAS (0.8, 0.95) -> (0.7, 0.95)",
    "MUON_MOMENTUM warmup 0.85 -> 0.95",
    "EMBEDDING_LR 0.6 -> 0.5",
    "WINDOW_PATTERN SSSL -> SL",
    "GELU instead of ReLU^2",
    "label smoothing 0.1",
    "gradient clipping at 1.0",
    "GQA with 2 kv heads",
    "mixture of 4 experts",
    "DEPTH 12 -> 14",
    "WARMUP_RATIO 0.0 -> 0.02",
    "MUON_NS_STEPS 5 -> 4",
    "HEAD_DIM 128 -> 64",
]
KINDS = ("claude", "codex")


def _hex(*parts: object, n: int = 40) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:n]


def agent_slots(agents: int, device: str = H100, repo: str = "/srv/autoresearch", tag: str = "jan01"):
    return tuple(
        AgentEntry(
            name=f"gpu{i}",
            kind=KINDS[i % len(KINDS)],
            queue=str(i),
            device=device,
            worktree=f"{repo}/worktrees/gpu{i}",
            branch=f"swarm/{tag}/gpu{i}",
        )
        for i in range(agents)
    )


def synthetic_run(
    agents: int = 8,
    experiments: int = 200,
    seed: int = 0,
    start: float = START,
    device: str = H100,
    profile: str = "h100",
    tag: str = "jan01",
    lifecycle: bool = True,
) -> Iterator[dict[str, Any]]:
    """The records of a run in which `experiments` experiments were submitted, in board order.

    The board ends when the last of them was submitted: experiments still in flight then have only their
    queued / running records (with `lifecycle`; without it, only finished experiments appear, each as its
    final record), and every third agent has queued its next experiment ahead.
    """
    rng = random.Random(seed)
    base = _hex(tag, "base")
    run = SwarmRecord(
        tag=tag, base=base, profile=profile, agents=agent_slots(agents, device, tag=tag), created_at=start
    )
    yield {**run.to_record(), "ts": start}
    budget = 300.0
    # each agent works sequentially: the next experiment comes from the agent whose turn is earliest
    turns = [(start + 20.0 + rng.uniform(0, 60), agent) for agent in range(agents)]
    heapq.heapify(turns)
    done = [0] * agents
    best = [BASELINE] * agents  # each agent's current best true value
    parent = [base] * agents
    global_best = BASELINE
    records: list[tuple[float, int, dict[str, Any]]] = []  # (time of the record, order, record)
    end = start

    def job(eid: str, slot: int, submitted: float, **fields: Any) -> dict[str, Any]:
        """The queued record of an experiment of `fields["agent"]` on GPU `slot`."""
        return new_experiment(
            id=eid,
            gpu=str(slot),
            device=device,
            profile=profile,
            tag=tag,
            branch=f"swarm/{tag}/{fields['agent']}",
            base=base,
            prepare_sha256=_hex("prepare"),
            submitted_at=round(submitted, 3),
            log=f"logs/{eid}.log",
            attempt=1,
            **fields,
        )

    reruns_wanted: dict[int, tuple[dict[str, Any], float]] = {}  # slot -> (experiment to verify, its truth)
    reruns_done: dict[str, list[dict[str, Any]]] = {}
    for _ in range(experiments):
        submitted, agent = heapq.heappop(turns)
        end = submitted
        name, nth = f"gpu{agent}", done[agent]
        done[agent] += 1
        started = submitted + rng.uniform(0.2, 2.0)
        if nth and agent in reruns_wanted:
            # a verification rerun of someone's new global best takes this GPU's turn (as `swarm verify`
            # schedules them: the original's agent, commit and content, on another slot)
            original, true_value = reruns_wanted.pop(agent)
            fields = {k: original[k] for k in ("agent", "commit", "parent", "description", "train_sha256")}
            fields.update(verify_of=original["id"], requested_by=original["agent"])
            eid = _hex(tag, "verify", name, nth, n=8)
        else:
            if nth == 0:
                description, sha, true_value = "baseline", _hex(tag, "baseline-content"), BASELINE
            else:
                if rng.random() < 0.05 and global_best < best[agent] - FLOOR:
                    best[agent] = global_best  # adopted the global best
                description, sha = rng.choice(CHANGES), _hex(tag, name, nth)
                # a change scales the gap to what this setup can reach: most widen it a little, about one in
                # six narrows it, so gains shrink as the run closes in (and values stay in a sane range)
                gap = best[agent] - ASYMPTOTE
                true_value = ASYMPTOTE + gap * math.exp(rng.gauss(0.05, 0.06))
            eid = _hex(tag, name, nth, "id", n=8)
            fields = dict(
                agent=name,
                commit=_hex(tag, name, nth, "commit"),
                parent=parent[agent],
                description=description,
                train_sha256=sha,
            )
        queued = job(eid, agent, submitted, **fields)
        running = {**queued, "status": RUNNING, "started_at": round(started, 3)}
        final = _outcome(rng, running, nth, started, budget, true_value)
        if final["status"] == KEEP and nth and not final["verify_of"]:
            if final["val_bpb"] < best[agent] - FLOOR:
                best[agent] = true_value
                parent[agent] = final["commit"]
                if true_value < global_best and agents >= 3:
                    for other in (1, 2):  # verify a new global best on two other GPUs
                        reruns_wanted[(agent + other) % agents] = (final, true_value)
                global_best = min(global_best, true_value)
            else:
                final["status"] = MARGINAL if final["val_bpb"] < best[agent] else DISCARD
        order = len(records)
        if lifecycle:
            records.append((submitted, order, {**queued, "ts": round(submitted, 3)}))
            records.append((started, order + 1, {**running, "ts": round(started, 3)}))
        records.append((final["finished_at"], order + 2, {**final, "ts": final["finished_at"]}))
        if final["verify_of"]:
            done_reruns = reruns_done.setdefault(final["verify_of"], [])
            done_reruns.append(final)
            if len(done_reruns) == 2:
                verification = _verification(records, final["verify_of"], done_reruns)
                records.append((verification["ts"], order + 3, verification))
        heapq.heappush(turns, (final["finished_at"] + rng.uniform(20, 90), agent))  # it thinks, then submits
    end += 1.0
    if lifecycle:
        for agent in range(0, agents, 3):  # queue-ahead: the next experiment waits behind the running one
            name, nth = f"gpu{agent}", done[agent]
            ahead = job(
                _hex(tag, name, nth, "id", n=8),
                agent,
                end - rng.uniform(1, 60),
                agent=name,
                parent=parent[agent],
                commit=_hex(tag, name, nth, "commit"),
                description=rng.choice(CHANGES),
                train_sha256=_hex(tag, name, nth),
            )
            records.append((ahead["submitted_at"], len(records), {**ahead, "ts": ahead["submitted_at"]}))
    records.sort(key=lambda item: (item[0], item[1]))
    for at, _, record in records:
        if at <= end:
            yield record


def _verification(
    records: list[tuple[float, int, dict[str, Any]]], original_id: str, reruns: list[dict[str, Any]]
) -> dict[str, Any]:
    """The verification record once both reruns of an experiment finished (as the runner writes it)."""
    original = next(r for _, _, r in reversed(records) if r["id"] == original_id and r.get("val_bpb"))
    measured = [r["val_bpb"] for r in reruns if r.get("val_bpb") is not None]
    mean = sum(measured) / len(measured) if measured else None
    at = max(r["finished_at"] for r in reruns)
    return {
        "type": VERIFICATION,
        "id": original_id,
        "device": original["device"],
        "profile": original["profile"],
        "train_sha256": original["train_sha256"],
        "held": mean is not None and mean <= original["val_bpb"] + FLOOR,
        "mean": mean,
        "val_bpb": original["val_bpb"],
        "band": FLOOR,
        "reruns": [r["id"] for r in reruns],
        "slots": sorted({r["gpu"] for r in reruns}),
        "finished_at": at,
        "ts": at,
    }


def _outcome(
    rng: random.Random, running: dict[str, Any], nth: int, started: float, budget: float, true_value: float
) -> dict[str, Any]:
    """The final record of an experiment: a crash, timeout or invalid now and then, else a measured
    result (status keep here; the caller turns it into marginal / discard against the agent's best)."""
    wall = budget + rng.uniform(18, 32)
    final = {**running, "finished_at": round(started + wall, 3), "wall_seconds": round(wall, 1)}
    roll = rng.random()
    if nth and roll < 0.03:
        final.update(status=CRASH, reason="no val_bpb in the output (exit code 1)", exit_code=1)
        final["finished_at"] = round(started + rng.uniform(15, 60), 3)
    elif nth and roll < 0.035:
        final.update(status=TIMEOUT, reason="killed after the hard timeout of 720 s", exit_code=-9)
        final["finished_at"] = round(started + 720.0, 3)
    elif nth and roll < 0.04:
        final.update(status=INVALID, reason="changes files other than train.py: prepare.py")
        final["finished_at"] = round(started + 0.5, 3)
    else:
        steps = int(950 * (1 + rng.gauss(0, 0.01)))
        final.update(
            status=KEEP,
            reason="baseline: the agent's first result" if nth == 0 else None,
            val_bpb=round(true_value + rng.gauss(0, NOISE), 6),
            training_seconds=round(budget + rng.uniform(0, 0.4), 1),
            total_seconds=round(wall - 1.0, 1),
            peak_vram_mb=round(45060.2 + rng.uniform(-4000, 9000), 1),
            mfu_percent=round(39.8 + rng.gauss(0, 1.5), 2),
            total_tokens_M=round(499.6 * steps / 953, 1),
            num_steps=steps,
            num_params_M=50.3,
            depth=8,
            exit_code=0,
            band=FLOOR,
        )
    return final


def write_board(directory: Path, records: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> Board:
    """Append many records under one hold of the lock, in the board's line format (bulk, no fsync each;
    signed when the board has a key, as swarm.board.store writes them)."""
    board = Board(Path(directory)).create()
    key = board.signing_key()
    with board.locked(), open(board.path, "ab") as f:
        batch: list[bytes] = []
        for record in records:
            line = orjson.dumps(record)
            batch.append((sign_line(key, line) if key else line) + b"\n")
            if len(batch) >= 10_000:
                f.write(b"".join(batch))
                batch.clear()
        f.write(b"".join(batch))
    return board


def end_of(records: list[dict[str, Any]]) -> float:
    """The time of the last record: 'now' for a display of a synthetic board."""
    return max(r.get("ts") or 0.0 for r in records)
