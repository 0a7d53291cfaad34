"""A swarm's processes: slots, the private tmux server, the window launcher, the coordinator, spawn,
stop, clean and status. Long story: docs/cluster.md for Ray.

    spawn.py            `swarm spawn` and `swarm resume`: a repository into a running swarm
    settings_check.py   swarm.toml checked whole before anything starts
    gpus.py             which GPUs this machine has, and which slots a request names
    cluster.py          a Ray cluster's GPUs as a run's agents
    validate.py         screen on one device class, validate on another
    tmux.py             the run's private tmux server: one window per process
    launch.py           what each window runs, and `swarm launch WINDOW`
    sealing.py          what an agent's sandbox holds
    coordinator.py      keeps the swarm's windows matching what the board says the swarm is
    best_verifier.py    reruns of each group's new best, unasked
    crashes.py          why a process died, in one line
    agent_state.py      what an agent is doing, in one vocabulary
    status.py           `swarm status`: per agent, its state, experiment and best
    stop.py             `swarm stop` and `swarm attach`
    clean.py            `swarm clean`: remove worktrees that hold no unique commit
"""
