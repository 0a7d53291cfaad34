"""Typed errors: a SwarmError is a user mistake or an environment problem, shown as one line."""


class SwarmError(Exception):
    """A problem the user can fix. The CLI prints `swarm: <message>` and exits with `exit_code`."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class BoardError(SwarmError):
    """The board is missing, unreadable, or a record does not exist."""


class GitError(SwarmError):
    """A git operation failed or the repository is not in the state a command needs."""


class SandboxError(SwarmError):
    """No working sandbox where a sealed run needs one (no bubblewrap, no namespaces, not Linux)."""


class DataError(SwarmError):
    """The prepared data cache is missing, predates sealed evaluation, or does not match its pinned manifest."""


class DeviceFault(DataError):
    """The machine, not the model, failed the evaluation: no CUDA, a compiler that fails, out of memory on a
    known-good shape, a compiled forward or a trainer failing on a device that fails the evaluator's check. Like a changed data cache
    (hence the subclass: every path that stops on one stops on this), nothing is recorded: the job is
    requeued and the runner stops with this line."""


class ModelRejected(SwarmError):
    """A handed-over model breaks the sealed-evaluation contract: its run is `invalid` with this reason."""


class ArtifactRejected(ModelRejected):
    """A model archive is not a plain, static, stateless aten program (it could run code on loading)."""
