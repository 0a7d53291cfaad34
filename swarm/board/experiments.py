"""The shape of board records: experiment fields and statuses, and builders that keep records self-describing.

An experiment goes through several records with the same id (queued -> running -> a final status). Each
is written whole, with every field below (None where not known yet), so the latest record of an id is the
experiment's complete state and any single line can be read on its own.
"""

from __future__ import annotations

from typing import Any

from swarm.board.store import EXPERIMENT, new_id, now
from swarm.target.summary import SUMMARY_KEYS, TEXT_KEYS

# Statuses, in the order an experiment meets them.
QUEUED = "queued"
RUNNING = "running"
PROMISING = "promising"  # beyond the screening band: confirmation reruns are queued (swarm.board.noise)
KEEP = "keep"
MARGINAL = "marginal"
DISCARD = "discard"
CRASH = "crash"
TIMEOUT = "timeout"
INVALID = "invalid"
PRUNED = "pruned"  # stopped early: its training curve was clearly behind the best's (swarm.runner.pruning)
TRANSFER = "transfer"  # measured at budget_x times the budget (swarm.board.transfer): never compared or kept

# Who asked for a rerun (`requested_by`) when it was not an agent or the user: the runner, for a promising
# result's confirmation, and for the calibration of a device class (swarm.board.reruns). Calibration
# reruns go first in their slot's queue: no keep is decided on a class before they ran.
CONFIRMATION = "confirmation"
CALIBRATION = "calibration"

PENDING_STATUSES = frozenset({QUEUED, RUNNING})
# A measured result: the runner parsed a finite val_bpb from pristine evaluation code within the budget.
MEASURED_STATUSES = frozenset({PROMISING, KEEP, MARGINAL, DISCARD})
FAILED_STATUSES = frozenset({CRASH, TIMEOUT, INVALID})  # ended without a trustworthy number
# The run is over. A `promising` result is final for its run (`swarm wait` returns) but not yet decided.
FINAL_STATUSES = frozenset({PROMISING, KEEP, MARGINAL, DISCARD, PRUNED, CRASH, TIMEOUT, INVALID, TRANSFER})
DECIDED_STATUSES = FINAL_STATUSES - {PROMISING}
STATUSES = (QUEUED, RUNNING, PROMISING, KEEP, MARGINAL, DISCARD, PRUNED, CRASH, TIMEOUT, INVALID, TRANSFER)

# The summary block's numbers, as they land on the board (floats; num_steps and depth ints).
METRIC_FIELDS = tuple(key for key in SUMMARY_KEYS if key not in TEXT_KEYS)

# How val_bpb was obtained (the `evaluation` field): by the runner's evaluator from the handed-over model, or
# read from the trainer's own summary (`[runner] evaluation = "reported"`: stand-in trainers in tests, and
# train.py versions from before sealed evaluation; never comparable with sealed results).
SEALED = "sealed"
REPORTED = "reported"
EVALUATIONS = (SEALED, REPORTED)

# Why a run is `invalid` (the start of its `reason`), so tools can tell the classes apart.
LOOKS_AHEAD = "the model looks ahead"
OUTPUT_LIMIT = "output limit"
SEED_ONLY = "seed-only change"
CLOCK = "clock"  # a training window beyond the budget, weights changed after their commit, or a claimed time beyond the wall time
BAD_MODEL = "bad model"  # no model handed over, or one the evaluator refuses to load or run
PINNED_CODE = "pinned code"  # the base's prepare.py is not the one pinned when the run was spawned

MAX_DESCRIPTION_CHARS = 500  # agent text on the board: longer descriptions are refused at submit

EXPERIMENT_FIELDS = (
    # who and where
    "id",
    "agent",
    "gpu",  # where it waits, then where it runs: a class's queue ("box:cpu", "ray:H100") or one slot ("3",
    # "cpu0") until a slot takes it (swarm.board.scheduling), then that slot ("3", or on a Ray cluster
    # "a1b2c3d4/0": node id and the node's slot)
    "queue",  # the queue it waited in ("box:cpu", "ray:H100", or one slot "3"): a requeue puts it back there
    "node",  # the Ray node that trained it ("a1b2c3d4@10.0.0.5"); None on one box
    "device",  # device class results are compared within, e.g. "NVIDIA H100 80GB HBM3" or "cpu"
    "profile",  # AUTORESEARCH_PROFILE the runner sets: "h100" | "tiny"
    "tag",
    # what
    "branch",
    "commit",
    "parent",
    "base",  # the run's base commit: prepare.py and the allow-list diff come from it
    "description",  # agent text, stored verbatim
    "status",
    "reason",  # why a crash / timeout / invalid happened, or how a status was decided
    *METRIC_FIELDS,
    "train_sha256",
    "prepare_sha256",
    # when
    "submitted_at",
    "started_at",
    "finished_at",
    "log",  # path of the run's log, relative to the board directory
    # bookkeeping
    "reference",  # id of the experiment this result was compared with (the agent's best), None for a baseline
    "band",  # the noise band used for keep / marginal / discard
    "attempt",  # 1, or 2 when a runner died during the first attempt and reran the job
    "exit_code",
    "wall_seconds",  # trainer wall time as the runner measured it
    "window_seconds",  # the training window by the runner's clock: training data handed out -> weights committed
    "evaluation",  # "sealed" (val_bpb from the runner's evaluator) or "reported" (from the trainer's summary)
    "eval_seconds",  # the evaluator's wall time
    "verify_of",  # for a verification rerun: the id being verified
    "reused_from",  # answered from the board: ids of the runs whose mean this is
    "requested_by",  # who asked for a verification rerun ("confirmation", "calibration": the runner)
    "control",  # True: a confirmation's control run, the agent's reference rerun beside a rerun of verify_of
    "unsealed",  # True: measured without a sandbox (`swarm spawn --unsealed`); None for a sealed run
    "validate_of",  # for a validation run on the validator device class: the screening experiment's id
    "saved_seconds",  # pruned: the training time left in the budget when the runner stopped it
    "budget_x",  # a transfer check: trained for this many times the profile's budget (runner-set)
    "transfer_of",  # a transfer check: the experiment whose train.py it runs ("base": the run's base)
    "transfer_batch",  # a transfer check: the id shared by the runs queued together, paired on one slot
)


GroupKey = tuple[str, str]  # (device class, profile): results are compared only within one


def submitted(record: dict[str, Any]) -> float:
    """When an experiment was submitted: its submitted_at, or for a record without one its time of writing."""
    return record.get("submitted_at") or record.get("ts") or 0.0


def group_of(record: dict[str, Any]) -> GroupKey:
    """The comparison group of an experiment (or adopt / verification) record."""
    return (str(record.get("device") or "unknown"), str(record.get("profile") or "unknown"))


def new_experiment(**fields: Any) -> dict[str, Any]:
    """A complete experiment record: every field present, unknown keys refused (a typo is a bug)."""
    unknown = set(fields) - set(EXPERIMENT_FIELDS)
    if unknown:
        raise TypeError(f"unknown experiment fields: {sorted(unknown)}")
    record: dict[str, Any] = {"type": EXPERIMENT}
    for name in EXPERIMENT_FIELDS:
        record[name] = fields.get(name)
    if record["id"] is None:
        record["id"] = new_id()
    if record["status"] is None:
        record["status"] = QUEUED
    if record["submitted_at"] is None:
        record["submitted_at"] = now()
    if record["attempt"] is None:
        record["attempt"] = 1
    return record


def evolve(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The next record of the same experiment: all fields carried over, `changes` applied, a fresh `ts`."""
    unknown = set(changes) - set(EXPERIMENT_FIELDS)
    if unknown:
        raise TypeError(f"unknown experiment fields: {sorted(unknown)}")
    following = {k: v for k, v in record.items() if k != "ts"}
    following.update(changes)
    return following


def has_result(record: dict[str, Any]) -> bool:
    """A keep / marginal / discard with a val_bpb: measured now, or answered from earlier measurements."""
    value = record.get("val_bpb")
    return (
        record.get("status") in MEASURED_STATUSES
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and bool(record.get("train_sha256"))
    )


def is_measured(record: dict[str, Any]) -> bool:
    """A result the noise statistics may use: measured by a runner, not answered from the board."""
    return has_result(record) and not record.get("reused_from")


def is_control(record: dict[str, Any]) -> bool:
    """A confirmation's control run: the agent's reference, rerun beside a rerun of the result on trial
    (swarm.board.reruns); its val_bpb measures the reference, not the result in `verify_of`."""
    return bool(record.get("control"))
