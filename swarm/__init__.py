"""autoresearch-swarm: many autoresearch agents on one multi-GPU machine, one trustworthy board.

The package, in layers from the top (a package imports only those below it; `lint-imports` checks it):

    cli.py           the `swarm` command line: one table of commands, each a function a test can call
    __main__.py      `python -m swarm`, the same as the console script
    demo.py          `swarm demo`: a real swarm of CPU workers in a few minutes
    doctor.py        `swarm doctor`: what this machine offers a swarm
    tui/             `swarm watch`: the Textual app, one module per widget, the board folded on a worker
    orchestration/   a swarm's processes: slots, tmux, the window launcher, coordinator, spawn, stop, status
    agents/          the agent side: the commands agents type, kinds, prompts, the built-in agents
    results/         what people do with results: best and board, export, plot, pick, the report
    runner/          one slot's runner: snapshots of commits, sealed trainer and evaluator, trust checks
    board/           the append-only store, its records, the folded state, noise rule, ledger, verification
    repo/            git, worktrees and where a run's paths are
    target/          what swarm knows of prepare.py and train.py
    config.py        `swarm.toml`: one table per concern, each read into a frozen dataclass
    installation.py  how a child process runs this installation's `swarm`
    errors.py        the SwarmError family and its exit codes
    testing/         beside the layers: the fake model server and synthetic boards, for tests only

Words: docs/glossary.md. Every key of swarm.toml: docs/configuration.md.
"""

__version__ = "0.1.0"
