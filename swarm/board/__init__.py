"""The discovery board: the append-only store, experiment and run records, the folded state, the noise
rule, the cost ledger, progress and verification. Nothing here starts a process or knows about tmux."""
