"""One slot's runner: claims jobs, snapshots the commit from raw blobs, runs the trainer and then the
sealed evaluator in their own process groups under hard timeouts, judges the run by its own clock, and
records the measured result. Long stories: docs/trust.md, docs/cluster.md, docs/performance.md.

    service.py     `swarm runner`: one slot's loop, from a claimed job to a recorded result
    settings.py    `[runner]` in swarm.toml
    executor.py    the seam: where a materialised snapshot runs, and what comes back
    ray.py         the Ray executor: a cluster's GPUs as slots
    snapshot.py    an experiment's commit materialised into a clean run directory
    sealed.py      one sealed run: the trainer, then the evaluator, judged by the runner's clock
    sandbox.py     the bubblewrap command lines that confine trainers, the evaluator and agents
    devices.py     a slot's GPU as its sandboxes see it
    process.py     a trainer in its own process group, ended whole
    clock.py       the training window timed from outside
    evaluator.py   val_bpb of a handed-over model, computed by the swarm's code
    artifact.py    opening a handed-over model without running its author's code
    caches.py      compile caches no train.py can poison
    trust.py       checks from outside train.py: the allow-list diff, seed-only changes
    pruning.py     early stop of hopeless runs against the best's loss curve
    inbox.py       the request path: records an agent in a sandbox may not write itself
    smoke.py       `swarm doctor --smoke`: a real sealed run of a few steps
"""
