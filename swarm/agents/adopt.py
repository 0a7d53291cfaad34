"""`swarm adopt ID|best`: move the calling agent's branch to another experiment's commit, losing nothing.

The tree must be clean (tracked files). If the agent's current HEAD is not contained in the target, its
unique commits would become unreachable; they are kept under refs/swarm/saved/<agent>/<time>-<sha> (every
submitted commit is also pinned under refs/swarm/experiments/<id>). An `adopt` record on the board makes
the adopted content part of the agent's reference, so its next result is compared with what it adopted.
"""

from __future__ import annotations

import time
from typing import Any

from swarm.agents.protocol import AgentContext, deliver, head_commit
from swarm.errors import SwarmError
from swarm.repo.git import git, is_ancestor, rev_parse, update_ref

SAVED_REF = "refs/swarm/saved/"


def adopt_target(ctx: AgentContext, what: str) -> dict[str, Any]:
    """The experiment record `what` names: an id (prefix), or `best` of the caller's device class and profile."""
    if what == "best":
        best = ctx.state.best((ctx.device, ctx.run.profile))
        if best is None:
            raise SwarmError(f"no result on {ctx.device} / {ctx.run.profile} yet: nothing to adopt")
        return best.experiment
    target = ctx.state.experiment(what)
    if not target.get("commit"):
        raise SwarmError(f"experiment {target['id']} has no commit")
    return target


def adopt(ctx: AgentContext, what: str) -> dict[str, Any]:
    """Reset the caller's worktree (and branch) to the target's commit; returns the adopt record."""
    worktree = ctx.identity.worktree
    head = head_commit(worktree)  # refuses a dirty tree
    target = adopt_target(ctx, what)
    commit = rev_parse(ctx.repo, target["commit"])
    saved = None
    if not is_ancestor(worktree, head, commit):
        saved = f"{SAVED_REF}{ctx.agent.name}/{time.strftime('%Y%m%d-%H%M%S')}-{head[:10]}"
        update_ref(worktree, saved, head)
    git(worktree, "reset", "--quiet", "--hard", commit)
    # the record's fields come from the board's record of the target (swarm.runner.inbox: Handler._adopt)
    return deliver(ctx, {"op": "adopt", "id": target["id"], "previous_head": head, "saved_ref": saved})
