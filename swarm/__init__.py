"""autoresearch-swarm: many autoresearch agents on one multi-GPU machine, one trustworthy board.

The package, in layers (a package imports only those below it; `lint-imports` checks it):

    cli.py demo.py doctor.py   the commands: argparse table, the offline demo, the machine check
    tui/                       `swarm watch`: the Textual app, one module per widget, the board folded on a worker
    orchestration/             a swarm's processes: GPUs, tmux, window launcher, coordinator, spawn, stop, status
    agents/                    the agent side: submit/wait/adopt protocol, agent commands, kinds, prompts,
                               the relay of CLI agents' JSON, api/ (the model-API agent), sweep/ (the sweep agent)
    results/                   what people do with results: text output, best/board/export, plot, pick,
                               lineage, the morning-after report
    runner/                    one slot's runner: snapshots of commits, the trainer process, trust checks
    board/                     the append-only store, experiment and run records, folded state and its
                               checkpoint, noise rule, cost ledger, progress, verification
    repo/ target/              git and worktrees; what swarm knows of prepare.py / train.py
    config.py installation.py  swarm.toml sections; how a child process runs this installation's swarm
    errors.py                  the SwarmError family and its exit codes
    testing/                   beside the layers: the fake model server and synthetic boards, for tests only
"""

__version__ = "0.1.0"
