"""The runner of one slot (a GPU, or a CPU worker): takes that slot's jobs from the board one at a time,
trains each commit from a clean snapshot with pristine evaluation code, and records what it measured.

    swarm runner --gpu 3        swarm runner --cpu 0

One job at a time per slot, so two experiments never share a GPU and timings stay comparable. A second
runner for the same slot refuses to start (a lock file under board/runners/ is held for the runner's life).

A runner killed mid-run loses no job: the job stays `running` on the board, and the next runner of that
slot ends what is left of the old trainer, then requeues the job in its original place (attempt 2). A job
whose runner dies again on the retry is recorded as `crash`, so one poisonous commit cannot wedge a slot.
A runner stopped cleanly (SIGTERM, Ctrl-C) ends its trainer and requeues the job without using an attempt.

The runner claims, plans (`Runner.plan`), judges and records; an executor (swarm.runner.executor) trains the
plan: the local one here, pinned to this slot, or a Ray node's for the GPUs of a cluster (swarm.runner.ray,
which reuses this class on the head).
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
from pathlib import Path
from typing import Any

from swarm.board.experiments import CRASH, INVALID, METRIC_FIELDS, QUEUED, RUNNING, TIMEOUT, evolve
from swarm.board.noise import NoiseSettings
from swarm.board.run_record import is_cpu_slot
from swarm.board.state import BoardState
from swarm.board.store import RUNNER, Board, now
from swarm.board.verification import verification_outcome
from swarm.config import load_section
from swarm.errors import SwarmError
from swarm.repo.git import file_at
from swarm.repo.paths import run_paths
from swarm.runner.executor import Executor, TrainerOutcome, TrainingPlan
from swarm.runner.local import LocalExecutor
from swarm.runner.process import end_stale_group
from swarm.runner.settings import RunnerSettings
from swarm.runner.snapshot import materialise, remove
from swarm.runner.trust import budget_limit, disallowed_changes, timeout_for
from swarm.target.profiles import time_budget
from swarm.target.summary import is_finite, last_line, read_summary


class RunnerStopped(Exception):
    """SIGTERM arrived: stop after ending the current trainer."""


def slot_from_args(gpu: str | None, cpu: str | None) -> str:
    if (gpu is None) == (cpu is None):
        raise SwarmError("give exactly one of --gpu K or --cpu K")
    value = gpu if gpu is not None else cpu
    if not value.isdigit():
        raise SwarmError(f"slot index must be a number, got {value!r}")
    return value if gpu is not None else f"cpu{value}"


def runner_flags(slot: str) -> list[str]:
    """The `swarm runner` flags that serve a slot: `--gpu 3` or `--cpu 0` (the inverse of slot_from_args)."""
    return ["--cpu", slot[3:]] if is_cpu_slot(slot) else ["--gpu", slot]


# ---------------------------------------------------------------------------------------------------------
# One runner per slot


def _lock_path(board_dir: Path, slot: str) -> Path:
    return Path(board_dir) / "runners" / f"{slot}.lock"


def runner_pid(board_dir: Path, slot: str) -> int | None:
    """The pid of the live runner of a slot, or None when no runner holds it."""
    path = _lock_path(board_dir, slot)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else -1
    finally:
        os.close(fd)  # closing drops a lock we may have taken
    return None


class SlotLock:
    """Held by a runner for its whole life (flock: released by the kernel when the process dies)."""

    def __init__(self, board_dir: Path, slot: str):
        self.path = _lock_path(board_dir, slot)
        self.slot = slot
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise SwarmError(
                f"a runner for slot {self.slot} is already running (pid {other or '?'})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# ---------------------------------------------------------------------------------------------------------
# The runner


class Runner:
    def __init__(
        self,
        repo: Path,
        board: Board,
        slot: str,
        settings: RunnerSettings | None = None,
        noise: NoiseSettings | None = None,
        log=print,
        executor: Executor | None = None,
    ):
        self.repo = Path(repo)
        self.board = board
        self.slot = slot
        # the local executor pins a trainer to this slot's GPU (none for a CPU worker)
        self.executor = executor or LocalExecutor("" if is_cpu_slot(slot) else slot)
        self.settings = settings or RunnerSettings()
        self.state = BoardState(board, noise)
        self.lock = SlotLock(board.directory, slot)
        self.say = log
        self.runs_dir = board.directory / "runs"

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Hold the slot, then recover any job a dead runner of this slot left `running`."""
        self.board.require()
        self.lock.acquire()
        self.board.append({"type": RUNNER, "slot": self.slot, "pid": os.getpid(), "event": "start"})
        self.recover_orphans()

    def close(self) -> None:
        if self.lock.fd is not None:
            self.board.append({"type": RUNNER, "slot": self.slot, "pid": os.getpid(), "event": "stop"})
        self.lock.release()

    @property
    def device(self) -> str:
        run = self.state.run
        if run is not None:
            return run.device_for_slot(self.slot)
        return "cpu" if is_cpu_slot(self.slot) else f"gpu{self.slot}"

    def recover_orphans(self) -> list[dict[str, Any]]:
        """Requeue (or, past max_attempts, fail) the jobs this slot's previous runner died during."""
        recovered = []
        with self.board.locked() as writer:
            self.state.refresh()
            orphans = [job for slot, job in self.state.running_slots().items() if slot == self.slot]
            for job in orphans:
                run_dir = self.runs_dir / job["id"]
                if end_stale_group(run_dir, self.settings.kill_grace_s):
                    self.say(f"ended the trainer a dead runner left for {job['id']}")
                remove(run_dir)
                record = retry_or_crash(job, self.settings.max_attempts, "the runner died")
                recovered.append(writer.append(record))
        for record in recovered:
            self.say(f"{record['id']}: {record['reason']}")
        return recovered

    # -- the loop --------------------------------------------------------------------------------------------

    def serve(self, max_jobs: int | None = None) -> int:
        """Take jobs until stopped (SIGTERM / Ctrl-C) or `max_jobs` are done; returns jobs done."""
        done = 0
        previous = signal.signal(signal.SIGTERM, _raise_stopped)
        try:
            self.say(f"runner {self.slot} ({self.device}) waiting for jobs on {self.board.directory}")
            while max_jobs is None or done < max_jobs:
                if self.step() is None:
                    time.sleep(self.settings.poll_interval_s)
                else:
                    done += 1
        except (RunnerStopped, KeyboardInterrupt):
            self.say(f"runner {self.slot} stopping")
        finally:
            signal.signal(signal.SIGTERM, previous)
        return done

    def step(self) -> dict[str, Any] | None:
        """Claim and run one job; the final record, or None when nothing is queued for this slot."""
        job = self.claim()
        if job is None:
            return None
        return self.execute(job)

    def claim(self) -> dict[str, Any] | None:
        """Mark the oldest job queued for this slot as running (under the board lock), or None."""
        self.state.refresh()  # lock-free look first: an idle runner never takes the lock
        if self.state.next_queued(self.slot) is None:
            return None
        with self.board.locked() as writer:
            self.state.refresh()
            job = self.state.next_queued(self.slot)
            if job is None:
                return None
            return writer.append(
                evolve(job, status=RUNNING, started_at=now(), device=self.device, finished_at=None)
            )

    # -- one job ---------------------------------------------------------------------------------------------

    def execute(self, job: dict[str, Any]) -> dict[str, Any]:
        """Train a claimed job and record the outcome; a stop request requeues it and re-raises."""
        log_rel, log = self.log_for(job)
        run_dir = self.runs_dir / job["id"]
        result: dict[str, Any] = {"log": log_rel}
        self.say(f"{job['id']} {job.get('agent')} {str(job.get('commit'))[:10]}: running")
        try:
            result.update(self._train(job, run_dir, log))
        except (RunnerStopped, KeyboardInterrupt):
            self._requeue_interrupted(job)
            raise
        except SwarmError as e:  # the job cannot run: a missing commit, a base without prepare.py, ...
            result.update(status=CRASH, reason=str(e))
        finally:
            if not self.settings.keep_run_dirs:
                remove(run_dir)
        record = self.record(job, result)
        self.say(f"{record['id']}: {record['status']} {_val(record)} {record.get('reason') or ''}".rstrip())
        return record

    def log_for(self, job: dict[str, Any]) -> tuple[str, Path]:
        """(path relative to the board, absolute path) of a job's log for its current attempt."""
        attempt = int(job.get("attempt") or 1)
        log_rel = f"logs/{job['id']}.log" if attempt == 1 else f"logs/{job['id']}.{attempt}.log"
        log = self.board.directory / log_rel
        log.parent.mkdir(parents=True, exist_ok=True)
        return log_rel, log

    def _train(self, job: dict[str, Any], run_dir: Path, log: Path) -> dict[str, Any]:
        plan, fields = self.plan(job, run_dir, log)
        if plan is None:
            return fields  # refused before training (allow-list, no prepare.py)
        outcome = self.executor.train(plan, run_dir, log)
        return fields | self.outcome_fields(plan, outcome, log)

    def plan(
        self, job: dict[str, Any], run_dir: Path, log: Path
    ) -> tuple[TrainingPlan | None, dict[str, Any]]:
        """Decide how a claimed job trains and materialise it in `run_dir`: (plan, fields for its record),
        or (None, its final status) when it must not train. Any executor trains the plan."""
        base, commit, profile = job["base"], job["commit"], job["profile"]
        outside = disallowed_changes(self.repo, base, commit, self.settings.allowed_paths)
        if outside:
            allowed = ", ".join(self.settings.allowed_paths)
            return None, {
                "status": INVALID,
                "reason": f"changes outside the allow-list ({allowed}): {', '.join(outside)}",
            }
        prepare = file_at(self.repo, base, "prepare.py")
        if prepare is None:
            return None, {"status": CRASH, "reason": f"the base commit {base[:12]} has no prepare.py"}
        budget = time_budget(prepare, profile, where=f"prepare.py of {base[:12]}")
        timeout = timeout_for(budget, self.settings.timeout_s, self.settings.timeout_grace_s)
        if run_dir.exists():
            remove(run_dir)
        snapshot = materialise(self.repo, commit, prepare, run_dir)
        fields: dict[str, Any] = {
            "train_sha256": snapshot.train_sha256,
            "prepare_sha256": snapshot.prepare_sha256,
        }
        with open(log, "ab") as f:
            f.write(
                f"# swarm runner {job.get('gpu') or self.slot} ({job.get('device') or self.device}): experiment {job['id']} attempt {job.get('attempt')}\n"
                f"# commit {commit} base {base} profile {profile} timeout {timeout:.0f}s\n"
                f"# train.py sha256 {snapshot.train_sha256} prepare.py sha256 {snapshot.prepare_sha256}\n".encode()
            )
        plan = TrainingPlan(
            job_id=job["id"],
            attempt=int(job.get("attempt") or 1),
            profile=profile,
            budget_s=budget,
            timeout_s=timeout,
            kill_grace_s=self.settings.kill_grace_s,
            prepare_sha256=snapshot.prepare_sha256,
            python=self.settings.python,
        )
        return plan, fields

    def outcome_fields(self, plan: TrainingPlan, outcome: TrainerOutcome, log: Path) -> dict[str, Any]:
        """The record fields of a trained plan: what the runner measured, and the status it earned."""
        judged = self._judge(
            log,
            outcome.exit_code,
            outcome.timed_out,
            plan.timeout_s,
            plan.budget_s,
            plan.profile,
            outcome.prepare_untouched,
        )
        return {"wall_seconds": outcome.wall_seconds, "exit_code": outcome.exit_code, **judged}

    def _judge(
        self,
        log: Path,
        code: int,
        timed_out: bool,
        timeout: float,
        budget: float,
        profile: str,
        prepare_ok: bool,
    ) -> dict[str, Any]:
        """The status of a finished trainer (or None for a measured result, judged against the board)."""
        summary = read_summary(log)
        # only the contract's numbers reach the board (no NaN in JSON; text where a number belongs is missing)
        metrics = {k: summary[k] for k in METRIC_FIELDS if is_finite(summary.get(k))}
        if timed_out:
            return {**metrics, "status": TIMEOUT, "reason": f"killed after the {timeout:.0f} s timeout"}
        if not prepare_ok:
            return {**metrics, "status": INVALID, "reason": "prepare.py was modified during the run"}
        if code != 0:
            return {**metrics, "status": CRASH, "reason": f"exit code {code}: {last_line(log)}"}
        if not summary:
            return {**metrics, "status": CRASH, "reason": "no summary block in the output"}
        if metrics.get("val_bpb") is None:
            return {**metrics, "status": CRASH, "reason": "no finite val_bpb in the summary"}
        if summary.get("profile") not in (None, profile):
            return {
                **metrics,
                "status": INVALID,
                "reason": f"ran profile {summary['profile']!r}, not {profile!r}",
            }
        seconds = metrics.get("training_seconds")
        limit = budget_limit(budget, self.settings.budget_tolerance, self.settings.budget_tolerance_s)
        if not is_finite(seconds):
            return {**metrics, "status": INVALID, "reason": "no training_seconds in the summary"}
        if seconds > limit:
            return {
                **metrics,
                "status": INVALID,
                "reason": f"training_seconds {seconds:.1f} beyond the budget {budget:.0f} s (limit {limit:.1f})",
            }
        return {**metrics, "status": None}  # measured: keep / marginal / discard is decided on the board

    # -- recording -------------------------------------------------------------------------------------------

    def record(self, job: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        """Write the final record of a job; a measured result gets keep / marginal / discard from the board."""
        with self.board.locked() as writer:
            self.state.refresh()
            final = evolve(job, finished_at=now(), **result)
            if final["status"] is None:
                status, reason, reference, band = self.state.decide(final)
                final.update(status=status, reason=reason, reference=reference, band=band)
            written = writer.append(final)
            self.state.apply(written)
            verify_of = job.get("verify_of")
            if verify_of:
                outcome = verification_outcome(self.state, verify_of)
                if outcome is not None:
                    self.state.apply(writer.append(outcome))
        return written

    def _requeue_interrupted(self, job: dict[str, Any], **requeue: Any) -> None:
        with self.board.locked() as writer:
            writer.append(
                evolve(
                    job,
                    status=QUEUED,
                    started_at=None,
                    reason="requeued: the runner was stopped during the run",
                    **requeue,
                )
            )


def retry_or_crash(job: dict[str, Any], max_attempts: int, what: str, **requeue: Any) -> dict[str, Any]:
    """The next record of a job whose attempt ended without an outcome (`what`: "the runner died"): queued
    again in its original place with the next attempt, or `crash` once `max_attempts` were used, so one
    poisonous commit cannot wedge a slot. `requeue`: fields the queued record changes (e.g. its queue)."""
    attempt = int(job.get("attempt") or 1)
    if attempt >= max_attempts:
        return evolve(job, status=CRASH, finished_at=now(), reason=f"{what} during this job {attempt} times")
    return evolve(
        job,
        status=QUEUED,
        started_at=None,
        attempt=attempt + 1,
        reason=f"requeued: {what} during attempt {attempt}",
        **requeue,
    )


def _raise_stopped(signum, frame) -> None:
    raise RunnerStopped()


def _val(record: dict[str, Any]) -> str:
    value = record.get("val_bpb")
    return f"val_bpb {value:.6f}" if is_finite(value) else ""


# ---------------------------------------------------------------------------------------------------------
# CLI


def cmd_runner(args) -> int:
    """`swarm runner --gpu K | --cpu K | --ray ADDRESS`: serve one slot (or a Ray cluster's GPUs) in the
    foreground."""
    if getattr(args, "ray", None):
        from swarm.runner.ray import serve_cluster  # imports ray: only a cluster run pays for it

        return serve_cluster(args.ray, max_jobs=args.max_jobs)
    slot = slot_from_args(args.gpu, args.cpu)
    paths = run_paths()
    board = Board(paths.board)
    settings = load_section(paths.repo, "runner", RunnerSettings)
    noise = load_section(paths.repo, "noise", NoiseSettings)
    runner = Runner(paths.repo, board, slot, settings, noise, log=lambda line: print(line, flush=True))
    runner.start()
    try:
        runner.serve(max_jobs=args.max_jobs)
    finally:
        runner.close()
    return 0
