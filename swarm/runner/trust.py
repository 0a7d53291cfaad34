"""Trust checks the runner enforces from outside train.py: the allow-list diff, seed-only changes, the clock.

A result counts only if it was measured on pristine evaluation code: the commit may differ from the run's
base only in allow-listed paths (train.py by default) and by more than a random seed; prepare.py comes from
the base commit; and the runner's own clock bounds the trainer: its training window (swarm.runner.clock)
may not exceed the budget (plus a small tolerance). A trainer that never talks to the clock (a stand-in with
reported evaluation) is held to its claim: the training time it claims may not exceed the wall time the
runner measured, nor the budget limit, and what is not training (startup, compile, export) may not exceed
an allowance learned from the device class's baseline runs, which otherwise only sets the timeout.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

from swarm.repo.git import changed_paths
from swarm.target.data import sha256_bytes
from swarm.target.summary import is_finite


def sha256_file(path: Path) -> str | None:
    try:
        return sha256_bytes(Path(path).read_bytes())
    except FileNotFoundError:
        return None


def disallowed_changes(repo: Path, base: str, commit: str, allowed: tuple[str, ...]) -> list[str]:
    """Paths the commit changes relative to base that no allow-list pattern (fnmatch, full path) covers."""
    return [
        p for p in changed_paths(repo, base, commit) if not any(fnmatch.fnmatchcase(p, a) for a in allowed)
    ]


def budget_limit(budget: float, tolerance: float, tolerance_s: float) -> float:
    """The longest training a run may take: budget + max(budget x tolerance, tolerance_s).

    An honest loop stops at the step boundary nearest the budget, so it overshoots by at most the excess of
    a slow last step; whatever the limit allows beyond the budget, a stretched loop gains."""
    return budget + max(budget * tolerance, tolerance_s)


def overhead_allowance(
    baseline_overheads: list[float], slack: float, slack_s: float, default_s: float
) -> float:
    """The most non-training wall time a run may take: the largest baseline overhead x (1 + slack) + slack_s,
    or default_s before the device class has a baseline run."""
    if not baseline_overheads:
        return default_s
    return max(baseline_overheads) * (1.0 + slack) + slack_s


def run_overhead(record: dict, budget_cap: float) -> float | None:
    """A finished run's wall time outside training, or None: wall - its training window by the runner's
    clock, else - the training time it claimed, else (killed or stopped before either) - the budget limit,
    so that a baseline that overran the allowance still teaches it (the most it can have trained)."""
    wall = record.get("wall_seconds")
    if not is_finite(wall):
        return None
    for key in ("window_seconds", "training_seconds"):
        if is_finite(record.get(key)):
            return max(0.0, wall - record[key])
    return max(0.0, wall - budget_cap)


def timeout_for(budget_cap: float, allowance_s: float, timeout_s: float | None) -> float:
    """The hard wall-clock limit of a trainer: an explicit timeout, else the budget limit + the allowance."""
    return timeout_s if timeout_s is not None else budget_cap + allowance_s


def claim_problem(claimed_s: float, wall_s: float) -> str | None:
    """A trainer claiming more training time than the runner measured in all, or None."""
    if claimed_s > wall_s:
        return f"claims {claimed_s:.1f} s of training in {wall_s:.1f} s of measured wall time"
    return None


def clock_problem(claimed_s: float, wall_s: float, budget_cap: float, allowance_s: float) -> str | None:
    """Why the timing of a trainer that never talked to the runner's clock is not credible, or None."""
    if claimed_s > wall_s:
        return claim_problem(claimed_s, wall_s)
    if claimed_s > budget_cap:
        return f"training_seconds {claimed_s:.1f} beyond the budget (limit {budget_cap:.1f})"
    overhead = wall_s - claimed_s
    if overhead > allowance_s:
        return (
            f"{overhead:.1f} s of wall time outside training (startup, compile, export) is beyond the "
            f"device class's allowance of {allowance_s:.1f} s"
        )
    return None


def window_problem(window_s: float, budget_cap: float) -> str | None:
    """Why a trainer's training window (the runner's clock, from its data to its committed weights) is
    beyond the budget, or None. Its time outside the window cannot train: only the timeout bounds it."""
    if window_s > budget_cap:
        return (
            f"trained {window_s:.1f} s by the runner's clock (from its training data to its committed "
            f"weights), beyond the budget (limit {budget_cap:.1f})"
        )
    return None


# ---------------------------------------------------------------------------------------------------------
# Seed lotteries


class _HideSeeds(ast.NodeTransformer):
    """Replace every value that only picks a random seed with one marker: what is assigned to a name with
    "seed" in it, and the arguments of calls whose function has "seed" in its name (torch.manual_seed(43))."""

    MARK = "<seed>"

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        if all(isinstance(t, ast.Name) and _names_seed(t.id) for t in node.targets):
            node.value = ast.Constant(self.MARK)
            return node
        return self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if isinstance(node.target, ast.Name) and _names_seed(node.target.id) and node.value is not None:
            node.value = ast.Constant(self.MARK)
            return node
        return self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        func = node.func
        if _names_seed(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")):
            node.args = [ast.Constant(self.MARK) for _ in node.args]
            node.keywords = [ast.keyword(k.arg, ast.Constant(self.MARK)) for k in node.keywords]
            return node
        return self.generic_visit(node)


def _names_seed(name: str) -> bool:
    return "seed" in name.lower()


def _code_shape(source: bytes, hide_seeds: bool) -> str | None:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    if hide_seeds:
        tree = _HideSeeds().visit(tree)
    return ast.dump(tree)


def seed_only_change(before: bytes | None, after: bytes | None) -> bool:
    """Whether `after` differs from `before` in nothing but random seeds (comments and layout ignored)."""
    if before is None or after is None:
        return False
    plain_before, plain_after = _code_shape(before, False), _code_shape(after, False)
    if plain_before is None or plain_after is None or plain_before == plain_after:
        return False
    return _code_shape(before, True) == _code_shape(after, True)
