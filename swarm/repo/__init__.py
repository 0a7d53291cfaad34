"""The repository: one git wrapper with typed errors, worktrees (GitPython), and where a run's paths are."""
