"""Runner overhead per experiment with a stand-in trainer: submit -> trainer start, trainer exit -> result.

    .venv/bin/python bench/runner_overhead.py [--experiments 20] [--inbox] [--unsealed] [--shared]

A real run (git repo, board, agent worktree, `swarm runner --gpu 0` process) and a stand-in train.py that
exits at once. Figures (median / max over the experiments):
  submit -> trainer start: the queued record on disk to the trainer's first line (includes the runner's
      poll interval, claiming under the lock, allow-list diff, materialising the commit, interpreter start);
  trainer exit -> result recorded: the trainer's last line to the final record written (log parse, judging
      against the board, append + fsync); and -> seen by `swarm wait` (adds the waiter's poll interval).
Trainers run in their sandbox (swarm.runner.sandbox) unless --unsealed. With --inbox the submission takes
a sandboxed agent's path: a request in its inbox, which the runner's thread turns into the queued record
("request posted -> queued record": the ingest poll plus the checks and git calls the submission makes in
either path); "submit -> trainer start" is measured from the queued record in both paths. With --shared the
run is shaped as `swarm spawn` makes one now: the agent queues for its class (box:...), which the slot's
runner serves through the scheduler, as against a run from before, whose agent owns slot 0's queue.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from swarm.agents.protocol import agent_context, head_commit, submit, wait_for  # noqa: E402
from swarm.board.run_record import Worker, write_run_record  # noqa: E402
from swarm.board.slots import box_queue  # noqa: E402
from swarm.runner.inbox import inbox_dir, post, wait_answer  # noqa: E402
from tests.support.swarm_run import commit_train, make_run, stand_in_train, wait_until  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=20)
    parser.add_argument("--inbox", action="store_true", help="submit through the agent's inbox")
    parser.add_argument("--unsealed", action="store_true", help="trainers without a sandbox")
    parser.add_argument("--shared", action="store_true", help="the agent queues for its class (box:...)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(Path(tmp), agents=("gpu0",), profile="tiny", signed=True, unsealed=args.unsealed)
        if args.shared:
            agent = replace(run.run.agents[0], queue=box_queue("Test GPU"))
            workers = (Worker("gpu0", "0", "Test GPU"),)
            run.run = replace(run.run, agents=(agent,), workers=workers)
            write_run_record(run.board, run.run)
        os.environ["STANDIN_STATE_DIR"] = str(run.state_dir)
        inbox_dir(run.board.directory, "gpu0").mkdir(parents=True)  # the launcher makes it with the sandbox
        run.start_runner("0")
        try:
            to_start, to_record, to_seen, to_queued = [], [], [], []
            for k in range(args.experiments):
                commit_train(
                    run.worktree("gpu0"), stand_in_train(val_bpb=1.0 - k * 1e-3, marker=str(k)), f"e{k}"
                )
                with run.agent_env("gpu0"):
                    ctx = agent_context()
                    if args.inbox:  # what `swarm submit` does in a sandbox, where the board is read-only
                        commit = head_commit(ctx.identity.worktree)
                        request = {"op": "submit", "commit": commit, "description": f"experiment {k}"}
                        posted = time.time()
                        queued = wait_answer(post(ctx.board.directory, "gpu0", request))
                        to_queued.append(queued["ts"] - posted)
                    else:
                        queued = submit(ctx, f"experiment {k}")
                final = wait_for(ctx.state, queued["id"], timeout_s=60)
                seen = time.time()
                events = wait_until(lambda q=queued: _pair(run.events(), q["id"]))
                start, end = events
                to_start.append(start - queued["ts"])
                to_record.append(final["ts"] - end)
                to_seen.append(seen - end)
                assert final["status"] in ("keep", "discard", "marginal"), final
        finally:
            run.stop_runners()
    for name, values in (
        *((("request posted -> queued record", to_queued),) if to_queued else ()),
        ("submit -> trainer start", to_start),
        ("trainer exit -> result recorded", to_record),
        ("trainer exit -> seen by swarm wait", to_seen),
    ):
        print(
            f"{name + ':':36} median {statistics.median(values) * 1000:5.0f} ms, max {max(values) * 1000:5.0f} ms"
        )


def _pair(events: list[list[str]], eid: str):
    """(start, end) of the trainer of experiment `eid` (its run directory is board/runs/<eid>); trainers
    run one at a time on the one slot, so the k-th start pairs with the k-th end (calibration reruns of
    the baseline run in between)."""
    starts = [e for e in events if e[0] == "start"]
    ends = [float(e[1]) for e in events if e[0] == "end"]
    k = next((i for i, e in enumerate(starts) if len(e) > 3 and e[3].rstrip("/").endswith(eid)), None)
    return (float(starts[k][1]), ends[k]) if k is not None and len(ends) > k else None


if __name__ == "__main__":
    main()
