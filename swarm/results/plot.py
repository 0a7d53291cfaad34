"""`swarm plot [FILE.png]`: the run's progress picture, in the manner of upstream autoresearch's progress.png.

One panel per comparison group (device class, profile), largest first: every finished experiment as a
dot coloured by status in finishing order, crashes as marks along the top, the group's best as a step line
(the board's one best: the lowest confirmed mean, swarm.board.fold; a single lucky run never moves it), and
each new best labelled with its (escaped, shortened) description. The title gives the best with n and sigma.
"""

from __future__ import annotations

from pathlib import Path

from swarm.board.experiments import DISCARD, KEEP, MARGINAL, GroupKey
from swarm.board.progress import GroupProgress, ProgressTracker, from_experiments
from swarm.board.stats import Best
from swarm.errors import SwarmError
from swarm.results.display import escape_text, mean_text
from swarm.results.standing import EXPERIMENT_RUN, kind_of

MAX_PANELS = 4
STATUS_STYLE = {  # status -> (colour, size, label); drawn in this order, so keeps land on top
    DISCARD: ("#c8c8c8", 10, "discard"),
    MARGINAL: ("#e5a84b", 14, "marginal (inside the noise band)"),
    KEEP: ("#2ca02c", 26, "keep"),
}
BEST_COLOUR = "#1a7f1a"
FAILED_COLOUR = "#d62728"


def _value_limits(group: GroupProgress) -> tuple[float, float]:
    """A y range that shows the improvements, not the outliers: from below the best to above the start."""
    values = sorted(p.value for p in group.points if p.value is not None)
    low = values[0]
    # the baseline (first measurement) or the 90th percentile, whichever is higher, bounds the view
    high = max([s.value for s in group.best] + [values[int(0.9 * (len(values) - 1))]])
    margin = max((high - low) * 0.08, 1e-4)
    return low - margin, high + margin


def _draw_group(ax, group: GroupProgress, best: Best | None) -> None:
    device, profile = group.key
    measured = [p for p in group.points if p.value is not None]
    failed = [p for p in group.points if p.value is None]
    for status, (colour, size, label) in STATUS_STYLE.items():
        points = [p for p in measured if p.record.get("status") == status]
        if points:
            ax.scatter(
                [p.index for p in points],
                [p.value for p in points],
                s=size,
                c=colour,
                edgecolors="#145214" if status == KEEP else "none",
                linewidths=0.5,
                label=f"{label} ({len(points)})",
                zorder=3 if status == KEEP else 2,
            )
    if failed:
        # no value to place them by: ticks along the top edge (x in data, y in axes coordinates)
        ax.scatter(
            [p.index for p in failed],
            [0.985] * len(failed),
            transform=ax.get_xaxis_transform(),
            marker="x",
            s=12,
            c=FAILED_COLOUR,
            linewidths=0.8,
            label=f"crash / timeout / invalid ({len(failed)})",
            zorder=2,
        )
    steps = group.best
    if steps:
        xs = [s.index for s in steps] + [max(group.finished - 1, steps[-1].index)]
        ys = [s.value for s in steps] + [steps[-1].value]
        ax.step(
            xs, ys, where="post", color=BEST_COLOUR, linewidth=1.6, label="best (confirmed mean)", zorder=4
        )
    by_id = {p.record["id"]: p for p in measured}
    for step in steps:
        first = by_id.get(step.id)
        text = escape_text(first.record.get("description") if first else step.id, 40)
        ax.annotate(
            text,
            (step.index, step.value),
            xytext=(4, 6),
            textcoords="offset points",
            fontsize=7,
            color="#333333",
            rotation=28,
            rotation_mode="anchor",
            annotation_clip=True,
        )
    ax.set_ylim(*_value_limits(group))
    ax.set_xlim(-0.5, group.finished - 0.5 + max(group.finished * 0.02, 1))
    ax.set_title(title_of(group, best), fontsize=11)
    ax.set_xlabel("experiment # (finishing order)")
    ax.set_ylabel("val_bpb (lower is better)")
    ax.grid(True, alpha=0.25)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)


def title_of(group: GroupProgress, best: Best | None) -> str:
    """A panel's title: how many experiments, how many the agents' changes kept, and the best with n and
    sigma (the one best of swarm.board.fold, as `swarm best` shows it)."""
    device, profile = group.key
    kept = sum(
        1 for p in group.points if p.record.get("status") == KEEP and kind_of(p.record) == EXPERIMENT_RUN
    )
    steps = group.best
    shown = (
        f"best {mean_text(best.mean, best.sigma, best.n)}"
        + (f" (first confirmed best {steps[0].value:.6f})" if steps else "")
        if best is not None
        else "no confirmed best yet"
    )
    return f"{device} / {profile}: {group.finished} experiments, {kept} kept changes, {shown}"


def render(progress: ProgressTracker, path: Path, bests: dict[GroupKey, Best] | None = None) -> Path:
    """Write the progress picture of every group with a measured result to `path` (PNG); `bests`: each
    group's best (swarm.board.fold.bests), named in its title."""
    from matplotlib.figure import Figure  # imported here: matplotlib is slow to import and only needed here

    measured = [g for g in progress.groups.values() if any(p.value is not None for p in g.points)]
    groups = sorted(measured, key=lambda g: -g.finished)
    if not groups:
        raise SwarmError("no measured results on the board yet: nothing to plot")
    groups = groups[:MAX_PANELS]
    figure = Figure(figsize=(16, 7 * len(groups)), dpi=110, layout="constrained")
    for ax, group in zip(figure.subplots(len(groups), 1, squeeze=False)[:, 0], groups, strict=True):
        _draw_group(ax, group, (bests or {}).get(group.key))
    path = Path(path)
    figure.savefig(path, format="png")
    return path


def cmd_plot(args) -> int:
    from swarm.board.opening import open_board
    from swarm.results.output import output_file

    target = output_file(args.file)  # a missing directory: one line, before the board is read
    _, _, state = open_board()
    steps = {key: state.best_steps(key) for key in state.groups}
    progress = from_experiments(list(state.experiments.values()), steps)
    path = render(progress, target, state.bests())
    print(f"wrote {path}")
    return 0
