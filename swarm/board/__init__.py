"""The discovery board: the append-only store, its records, the folded state, the noise rule, the cost
ledger, progress and verification. Nothing here starts a process or knows about tmux. Long stories:
docs/noise.md, docs/trust.md.

    store.py          the append-only JSON Lines file of a swarm's records, under a file lock
    signing.py        a MAC on every line a trusted writer appends
    keys.py           where a signed board's key lives
    experiments.py    experiment fields and statuses, and the builders of records
    run_record.py     the swarm record: tag, base commit, profile, and which agent sits on which slot
    stats.py          the fold's statistics: a content's repeats, a group's pooled sigma and best
    fold.py           the board folded into queryable state, incrementally; imports nothing that saves it
    packing.py        a folded state as bytes and back, for the checkpoint
    checkpoint.py     a saved fold, so a new process folds only what was appended since
    envelope.py       the one format and trust rule of every cached file beside the board
    opening.py        a command's board and state: the fold restored from its checkpoint
    identity.py       which board file, how far into it, and which code read it: the key of a cache
    noise.py          noise rules: repeat statistics, noise bands, the decision of a result
    reruns.py         verify, confirm and calibrate reruns on other slots of a class, and their judgement
    slots.py          the one place that writes and reads slot and queue keys
    scheduling.py     which queued job a free slot takes next
    charges.py        who pays for a job, and the order of a slot's jobs
    ledger.py         the cost ledger: tokens and dollars per agent, as usage records
    progress.py       a swarm's progress over time: finished experiments and running bests
    transfer.py       transfer checks: does a gain hold at K times the budget?
    holdout.py        the private holdout record of every measured run
"""
