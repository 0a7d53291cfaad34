"""The request path: how an agent in a sandbox has a record written that it may not write itself.

A sandboxed agent sees the board read-only, except its inbox `board/inbox/<agent>/`. Its submit, run, note,
adopt and verify (and the API agent's usage) post a request there, one JSON file renamed into place; the
runner of its slot checks every field, writes the record itself (signed) and answers `<request>.done` or
`<request>.error`. Who asks is the directory, never the request, and no link in an inbox is followed.
Unread answers and anything that is not a plain file are removed, so no inbox grows without end. A caller
that may write the board itself runs the same `Handler` in-process: both paths write the same records.
Long story: docs/trust.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import stat
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from swarm.board.charges import admit_verify
from swarm.board.experiments import METRIC_FIELDS, new_experiment
from swarm.board.fold import BoardState
from swarm.board.ledger import USAGE_FIELDS, Usage, usage_record
from swarm.board.noise import NoiseSettings
from swarm.board.reruns import schedule_verify
from swarm.board.run_record import AgentEntry, SwarmRecord
from swarm.board.slots import runner_of
from swarm.board.store import ADOPT, NOTE, Board, new_id, now
from swarm.config import load_section
from swarm.errors import BoardError, GitError, SwarmError
from swarm.repo.git import file_at, first_parent, rev_parse, update_ref
from swarm.repo.stores import import_commit, keep_refs
from swarm.runner.settings import RunnerSettings
from swarm.runner.trust import disallowed_changes, sha256_bytes

INBOX_DIR = "inbox"
EXPERIMENT_REF = "refs/swarm/experiments/"
OPS = ("submit", "note", "adopt", "verify", "usage")
REQUEST_MAX_BYTES = 64 << 10
TEXT_MAX_CHARS = 4000  # a description or a note: longer text is refused, not cut
MAX_REPEATS = 16
ANSWER_POLL_S = 0.002  # how often a waiting command looks for its answer
INGEST_POLL_S = 0.005  # how often a runner looks into its agents' inboxes
ANSWER_TIMEOUT_S = 120.0
ANSWER_KEEP_S = 2 * ANSWER_TIMEOUT_S  # an answer unread this long has no reader left: removed
SWEEP_EVERY_S = 10.0  # how often the runner looks for such answers
ANSWER_SUFFIXES = (".done", ".error")
SHA = re.compile(r"^[0-9a-f]{40}$")
REQUEST_NAME = re.compile(r"^[0-9]{1,20}-[0-9a-f]{8}\.json$")


def inbox_dir(board_dir: Path, agent: str) -> Path:
    return Path(board_dir) / INBOX_DIR / agent


# ---------------------------------------------------------------------------------------------------------
# Checking fields


def _text(request: dict[str, Any], name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str) or not value.strip():
        raise SwarmError(f"request: {name} must be a non-empty string")
    if len(value) > TEXT_MAX_CHARS:
        raise SwarmError(f"request: {name} is longer than {TEXT_MAX_CHARS} characters")
    return value


def _sha(request: dict[str, Any], name: str, optional: bool = False) -> str | None:
    value = request.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not SHA.match(value):
        raise SwarmError(f"request: {name} must be a full commit sha")
    return value


def _count(request: dict[str, Any], name: str) -> int:
    value = request.get(name, 0)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 10**12:
        raise SwarmError(f"request: {name} must be a count")
    return value


# ---------------------------------------------------------------------------------------------------------
# Requests -> records


class Handler:
    """Turns the requests of an agent into board records; one piece of code for both paths."""

    def __init__(self, repo: Path, board: Board, state: BoardState):
        self.repo = Path(repo)
        self.board = board
        self.state = state

    def handle(self, agent: AgentEntry, request: dict[str, Any]) -> Any:
        op = request.get("op")
        if op not in OPS:
            raise SwarmError(f"request: unknown op {op!r}")
        return getattr(self, f"_{op}")(agent, request)

    def _run(self) -> SwarmRecord:
        self.state.refresh()
        if self.state.run is None:
            raise BoardError("no swarm record on the board")
        return self.state.run

    def _submit(self, agent: AgentEntry, request: dict[str, Any]) -> dict[str, Any]:
        commit = _sha(request, "commit")
        description = _text(request, "description")
        try:
            # a sealed agent's commit is in its own object directory: copied into the shared store first
            import_commit(self.repo, agent.name, commit)
        except GitError as e:
            raise SwarmError(f"request: cannot take {e}") from None
        try:
            commit = rev_parse(self.repo, f"{commit}^{{commit}}")
        except GitError:
            raise SwarmError(f"request: {commit[:12]} is not a commit of this repository") from None
        return accept_submit(
            self.repo, self.board, self.state, agent, commit, description, request.get("rerun") is True
        )

    def _note(self, agent: AgentEntry, request: dict[str, Any]) -> dict[str, Any]:
        text = _text(request, "text")
        return self.board.append({"type": NOTE, "id": new_id(), "agent": agent.name, "text": text})

    def _adopt(self, agent: AgentEntry, request: dict[str, Any]) -> dict[str, Any]:
        """Record an adoption the agent made in its worktree: what was adopted comes from the board's
        record of that experiment; only the agent's previous HEAD and saved ref are its own word."""
        self.state.refresh()
        target = self.state.experiment(_text(request, "id"))
        if not target.get("commit"):
            raise SwarmError(f"experiment {target['id']} has no commit")
        saved = request.get("saved_ref")
        if saved is not None and not (
            isinstance(saved, str) and re.match(rf"^refs/swarm/saved/{re.escape(agent.name)}/[\w.-]+$", saved)
        ):
            raise SwarmError(f"request: saved_ref must be a ref under refs/swarm/saved/{agent.name}/")
        return self.board.append(
            {
                "type": ADOPT,
                "agent": agent.name,
                "id": target["id"],
                "commit": target["commit"],
                "train_sha256": target.get("train_sha256"),
                "device": target.get("device"),
                "profile": target.get("profile"),
                "previous_head": _sha(request, "previous_head", optional=True),
                "saved_ref": saved,
            }
        )

    def _verify(self, agent: AgentEntry, request: dict[str, Any]) -> list[dict[str, Any]]:
        repeats = _count(request, "repeats")
        if not 1 <= repeats <= MAX_REPEATS:
            raise SwarmError(f"request: repeats must be between 1 and {MAX_REPEATS}")
        # charged to the asker: its quota, one pending verification per experiment (swarm.board.charges)
        return schedule_verify(
            self.board,
            self.state,
            _text(request, "id"),
            repeats,
            agent.name,
            admit=lambda original: admit_verify(
                self.state.experiments.values(), original, agent.name, repeats
            ),
        )

    def _usage(self, agent: AgentEntry, request: dict[str, Any]) -> dict[str, Any]:
        """The API agent's own usage report (an agent CLI's is recorded by its launcher, outside)."""
        usage = Usage(**{name: _count(request, name) for name in USAGE_FIELDS})
        cost = request.get("cost_usd")
        if cost is not None and (
            isinstance(cost, bool) or not isinstance(cost, int | float) or not 0 <= cost < 1e6
        ):
            raise SwarmError("request: cost_usd must be a non-negative number")
        extra: dict[str, Any] = {
            k: request[k][:200] for k in ("provider",) if isinstance(request.get(k), str)
        }
        if request.get("budget_reached") is True:
            extra["budget_reached"] = True
        model = request.get("model")
        return self.board.append(
            usage_record(
                agent=agent.name,
                tag=self._run().tag,
                gpu=agent.queue,
                kind=agent.kind,
                model=model[:200] if isinstance(model, str) else None,
                usage=usage,
                requests=_count(request, "requests"),
                cost_usd=cost,
                **extra,
            )
        )


def accept_submit(
    repo: Path,
    board: Board,
    state: BoardState,
    agent: AgentEntry,
    commit: str,
    description: str,
    rerun: bool = False,
    slot: str | None = None,
) -> dict[str, Any]:
    """Queue `commit` on the agent's slot, or answer it from the board (identical train.py content already
    measured enough times); pins it under refs/swarm/experiments/<id> so that no later `git reset` lets
    git collect a commit the board points at. Returns the queued (or final) record."""
    state.refresh()
    run = state.run
    if run is None:
        raise BoardError("no swarm record on the board")
    slot = slot or agent.queue
    train = file_at(repo, commit, "train.py")
    job = new_experiment(
        agent=agent.name,
        gpu=slot,
        device=run.device_for_slot(slot),
        profile=run.profile,
        tag=run.tag,
        branch=agent.branch,
        commit=commit,
        parent=first_parent(repo, commit),
        base=run.base,
        description=description,
        train_sha256=sha256_bytes(train) if train is not None else None,
        unsealed=True if run.unsealed else None,
    )
    update_ref(repo, EXPERIMENT_REF + job["id"], commit)
    # only a commit the runner would accept may be answered from the board; the rest goes to the runner,
    # which records why it is invalid
    allowed = load_section(repo, "runner", RunnerSettings).allowed_paths
    reusable = not rerun and not disallowed_changes(repo, run.base, commit, allowed)
    with board.locked() as writer:
        state.refresh()
        answered = answer_from_board(state, job) if reusable else None
        written = writer.append(answered or job)
    state.apply(written)
    return written


def answer_from_board(state: BoardState, job: dict[str, Any]) -> dict[str, Any] | None:
    """The final record for a job whose train.py content was measured at least `reuse_runs` times in the
    job's group, or None. Its val_bpb is the mean of those runs; its other metrics are the latest run's."""
    sha = job.get("train_sha256")
    content = state.content((job["device"], job["profile"]), sha) if sha else None
    if content is None or content.n < state.noise.reuse_runs:
        return None
    runs = [state.experiments[eid] for eid in content.ids]
    latest = max(runs, key=lambda r: r.get("finished_at") or 0.0)
    metrics = {k: latest.get(k) for k in (*METRIC_FIELDS, "prepare_sha256", "log")}
    answered = {**job, **metrics, "val_bpb": content.mean, "reused_from": content.ids}
    answered.update(started_at=now(), finished_at=now())
    status, reason, reference, band = state.decide(answered)
    answered.update(
        status=status,
        reason=f"answered from the board: mean of {content.n} runs of this train.py; {reason}",
        reference=reference,
        band=band,
    )
    return answered


# ---------------------------------------------------------------------------------------------------------
# The agent's side: post a request, wait for its answer


def post(board_dir: Path, agent: str, request: dict[str, Any]) -> Path:
    """Write a request into the agent's inbox; returns its path."""
    directory = inbox_dir(board_dir, agent)
    name = f"{time.time_ns()}-{secrets.token_hex(4)}"
    tmp = directory / f".{name}.tmp"
    try:
        tmp.write_text(json.dumps(request, ensure_ascii=False))
        os.replace(tmp, directory / f"{name}.json")
    except OSError as e:
        raise BoardError(f"cannot post a request in {directory}: {e.strerror}") from None
    return directory / f"{name}.json"


def wait_answer(request: Path, timeout_s: float = ANSWER_TIMEOUT_S) -> Any:
    """What the runner wrote for a posted request, or SwarmError with the runner's reason."""
    done, error = request.with_suffix(".done"), request.with_suffix(".error")
    deadline = time.monotonic() + timeout_s
    while True:
        for answer in (done, error):
            with contextlib.suppress(FileNotFoundError):
                text = answer.read_text()
                answer.unlink(missing_ok=True)
                if answer is error:
                    raise SwarmError(text.strip())
                return json.loads(text)
        if time.monotonic() > deadline:
            request.unlink(missing_ok=True)
            raise SwarmError(
                f"no runner took the request within {timeout_s:.0f} s (is the swarm running? `swarm status`)"
            )
        time.sleep(ANSWER_POLL_S)


# ---------------------------------------------------------------------------------------------------------
# The runner's side: take the requests of the agents on its slot


class Ingestor:
    """Takes the requests of the agents on one slot (see the module's docstring). Has its own state: it
    runs on a thread beside the runner's loop, which does not share its BoardState."""

    def __init__(
        self,
        repo: Path,
        board: Board,
        slot: str,
        noise: NoiseSettings | None = None,
        on_job: Callable[[], None] | None = None,
    ):
        self.board = board
        self.slot = slot
        self.state = BoardState(board, noise)
        self.handler = Handler(repo, board, self.state)
        self.on_job = on_job or (lambda: None)  # a job was queued: wake the runner's loop
        self._swept = 0.0  # when unread answers were last looked for (monotonic)

    def agents(self) -> list[AgentEntry]:
        self.state.refresh()
        run = self.state.run
        if run is None:
            return []
        # a cluster's agents queue for their class (ray:H100), all served by the head's one runner; a box's
        # agents for their class's queue (box:cpu), which every runner of the class serves (_take claims
        # each request by renaming it, so exactly one runner answers it)
        queue = run.class_queue(self.slot)
        return [a for a in run.agents if runner_of(a.queue) == self.slot or (queue and a.queue == queue)]

    def ingest(self) -> int:
        """Handle every request waiting now, oldest first; returns how many."""
        handled = 0
        agents = self.agents()
        if time.monotonic() - self._swept > SWEEP_EVERY_S:
            self._swept = time.monotonic()
            for agent in agents:
                remove_unread_answers(inbox_dir(self.board.directory, agent.name))
                with contextlib.suppress(GitError):  # a tip that cannot be copied stays the agent's
                    keep_refs(self.handler.repo, agent.name, agent.branch)
        for agent in agents:
            directory = inbox_dir(self.board.directory, agent.name)
            try:
                names = sorted(n for n in os.listdir(directory) if n.endswith(".json"))
            except FileNotFoundError:
                continue
            for name in names:
                self._take(agent, directory / name)
                handled += 1
        return handled

    def _take(self, agent: AgentEntry, path: Path) -> None:
        taken = path.with_name(f".{path.name}.{os.getpid()}.taken")
        try:
            os.rename(path, taken)  # atomic: of the runners sharing an agent's inbox, one takes a request
        except OSError:
            return
        try:
            request = _read_request(taken, path.name)
            answer = self.handler.handle(agent, request)
            _write_answer(path.with_suffix(".done"), json.dumps(answer, ensure_ascii=False))
            if request["op"] in ("submit", "verify"):
                self.on_job()
        except SwarmError as e:
            _write_answer(path.with_suffix(".error"), str(e))
        except Exception as e:  # a bug: the agent hears of it, the runner's log gets the traceback, and
            # the thread lives on (a dead ingestor would leave every later request of the slot unanswered)
            traceback.print_exc()
            _write_answer(
                path.with_suffix(".error"), f"the runner failed on this request: {type(e).__name__}: {e}"
            )
        finally:
            _take_away(taken)

    def serve(self, stop: threading.Event) -> None:
        """Ingest until `stop` is set (the runner's thread)."""
        while not stop.is_set():
            if not self.ingest():
                stop.wait(INGEST_POLL_S)


def _take_away(path: Path) -> None:
    """Remove what was at a request's name, whatever it is: a directory an agent made there would
    otherwise be taken again at every poll (and answered every time) for ever."""
    try:
        path.unlink()
    except IsADirectoryError:
        shutil.rmtree(path, ignore_errors=True)  # never follows links: only the agent's own inbox goes
    except OSError:
        pass
    if path.is_dir() and not path.is_symlink():  # not removable (e.g. made read-only): set it aside
        with contextlib.suppress(OSError):
            path.rename(path.with_name(f".refused-{path.name}-{secrets.token_hex(4)}"))


def remove_unread_answers(directory: Path, keep_s: float = ANSWER_KEEP_S) -> int:
    """Remove the answers in an inbox that nobody read within `keep_s`; returns how many."""
    removed = 0
    cutoff = time.time() - keep_s
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for entry in entries:
        if not entry.name.endswith(ANSWER_SUFFIXES):
            continue
        with contextlib.suppress(OSError):
            if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
    return removed


def _read_request(path: Path, name: str | None = None) -> dict[str, Any]:
    """The request in `path` (posted under `name`, its own name unless it was renamed to be taken)."""
    if not REQUEST_NAME.match(name or path.name):
        raise SwarmError("request: not a request file name")
    try:  # a directory opens read-only too: refused before that, as is a link or a fifo
        regular = stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        regular = False
    if not regular:
        raise SwarmError("request: not a readable regular file")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        raise SwarmError("request: not a readable regular file") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a fifo would block the runner, a device worse
            raise SwarmError("request: not a regular file")
        data = f.read(REQUEST_MAX_BYTES + 1)
    if len(data) > REQUEST_MAX_BYTES:
        raise SwarmError(f"request: larger than {REQUEST_MAX_BYTES} bytes")
    try:
        request = json.loads(data)
    except ValueError:
        raise SwarmError("request: not JSON") from None
    if not isinstance(request, dict):
        raise SwarmError("request: not a JSON object")
    return request


def _write_answer(path: Path, text: str) -> None:
    """Write an answer whole, never through a link the agent may have planted at either name."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
