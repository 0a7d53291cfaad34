"""A swarm's processes: GPUs, the private tmux server, the window launcher, the coordinator, spawn, stop,
clean, status, and the one vocabulary of agent states."""
