"""One slot's runner: claims jobs, snapshots the commit, runs the trainer in its own process group under
a hard timeout, checks what ran, and records the measured result."""
