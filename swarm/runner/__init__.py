"""One slot's runner: claims jobs, snapshots the commit from raw blobs, runs the trainer and then the sealed
evaluator in their own process groups under hard timeouts, judges the run by its own clock, and records the
measured result."""
