"""The repository: one git wrapper with typed errors, worktrees, object stores, and where a run's paths are.
Nothing here deletes a branch that holds a unique commit.

    git.py         thin wrappers over the git command line that raise GitError with git's reason
    paths.py       where a run lives (repository, board, worktrees) and who is calling
    worktrees.py   one worktree per agent on its own branch, created, re-attached and removed safely
    stores.py      each agent's own git objects, and the shared store of submitted commits
"""
