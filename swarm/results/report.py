"""`swarm report [--out DIR]`: the story of a run as a Markdown page, from the board alone, its pictures beside it.

The morning after, the human wants to know what happened, what is real and what to pick. The report says it
in the order a blog post would: the headline per device class (baseline -> best mean ± sigma (n), and how
much of the run it took to get there), the progress plot, how the best came about (its lineage: every step
with its change in val_bpb, its description, its agent and what it changed in train.py), what did not work
(grouped by the knob or idea it tried, with the measured changes), the agents' notes, per-agent figures,
the cost per improvement, and the commands that pick the best.

Everything comes from the board (the repository is read only for train.py's diffs along the lineage and the
names of its knobs). Agent text (descriptions, notes, train.py lines) is escaped for Markdown: it can neither
format the page nor inject HTML or links.
"""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarm.board.experiments import FAILED_STATUSES, FINAL_STATUSES, KEEP, is_measured
from swarm.board.ledger import Totals, board_totals
from swarm.board.progress import finished_at, from_experiments
from swarm.board.state import Best, BoardState, GroupKey, group_of
from swarm.errors import SwarmError
from swarm.repo.git import file_at
from swarm.results.display import escape_markdown, format_number
from swarm.results.lineage import CommitIndex, lineage
from swarm.runner.trust import sha256_bytes
from swarm.target.hparams import KNOB_NAME, read_knobs
from swarm.target.train_diff import train_diff

REPORT_FILE = "report.md"
PLOT_FILE = "progress.png"
HOUR = 3600.0
MAX_DIFF_LINES = 8  # other changed lines of train.py shown per lineage step
MAX_IDEAS = 15  # rows of "what did not work"
MAX_NOTES = 40
IDEA_WORDS = 8  # an idea without a knob name is known by the first words of its description


@dataclass
class Idea:
    """Experiments that tried the same knob(s) or idea, and what they measured against their parent."""

    name: str
    tried: int = 0
    kept: int = 0
    failed: int = 0
    deltas: list[float] = field(default_factory=list)


def _md(text: Any, limit: int | None = None) -> str:
    return escape_markdown(text, limit)


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at)) if at else "-"


def _hours(hours: float) -> str:
    """GPU-hours with the precision a small run needs too (a demo's few minutes are not 0.0)."""
    return f"{hours:.1f}" if hours >= 10 else f"{hours:.2f}"


def _duration(hours: float) -> str:
    return f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.0f} min"


def _signed(value: float | None) -> str:
    return f"{value:+.6f}" if value is not None else "-"


class Report:
    """The parts of the report, computed once from a refreshed state (and the repository when at hand)."""

    def __init__(self, state: BoardState, repo: Path | None = None, gpu_price: float | None = None):
        self.state = state
        self.repo = repo
        self.gpu_price = gpu_price
        self.run = state.run
        self.experiments = list(state.experiments.values())
        self.finished = sorted(
            (e for e in self.experiments if e.get("status") in FINAL_STATUSES), key=finished_at
        )
        self.bests = state.bests()
        self.index = CommitIndex(state).update()
        self.totals = board_totals(state)
        self.base = self.run.base if self.run else None
        self._sources: dict[str, str | None] = {}
        self._baselines: dict[GroupKey, float | None] = {}

    # -- reading train.py ------------------------------------------------------------------------------------

    def source(self, commit: str | None) -> str | None:
        if not commit or self.repo is None:
            return None
        if commit not in self._sources:
            data = file_at(self.repo, commit, "train.py")
            self._sources[commit] = data.decode(errors="replace") if data is not None else None
        return self._sources[commit]

    def knob_names(self, profile: str) -> set[str]:
        source = self.source(self.base)
        if source is not None:
            try:
                return set(read_knobs(source, profile))
            except (SwarmError, ValueError):
                pass
        return set()

    # -- figures ---------------------------------------------------------------------------------------------

    def baseline(self, key: GroupKey) -> float | None:
        """Mean of the run's base train.py in a group, else of the group's first measured content."""
        if key not in self._baselines:
            source = self.source(self.base)
            content = self.state.content(key, sha256_bytes(source.encode())) if source is not None else None
            if content is None:
                first = next((e for e in self.finished if is_measured(e) and group_of(e) == key), None)
                content = self.state.content(key, first["train_sha256"]) if first else None
            self._baselines[key] = content.mean if content else None
        return self._baselines[key]

    def parent_mean(self, record: dict[str, Any]) -> float | None:
        """The mean of what an experiment changed: its parent commit's content, or the baseline."""
        key = group_of(record)
        parent = self.index.get(record.get("parent"))
        if parent is not None and group_of(parent) == key:
            content = self.state.content(key, parent.get("train_sha256") or "")
            if content is not None:
                return content.mean
        return self.baseline(key) if record.get("parent") in (self.base, None) else None

    def gpu_hours(self, records: list[dict[str, Any]]) -> float:
        return (
            sum(
                max(0.0, float(e["finished_at"]) - float(e["started_at"]))
                for e in records
                if e.get("started_at") is not None and e.get("finished_at") is not None
            )
            / HOUR
        )

    def ideas(self, key: GroupKey) -> list[Idea]:
        knobs = self.knob_names(key[1])
        ideas: dict[str, Idea] = {}
        for e in self.finished:
            if group_of(e) != key or e.get("verify_of") or e.get("reused_from"):
                continue
            name = idea_of(e.get("description"), knobs)
            if name == "baseline":
                continue
            idea = ideas.setdefault(name, Idea(name))
            idea.tried += 1
            if e.get("status") == KEEP:
                idea.kept += 1
            if e.get("status") in FAILED_STATUSES:
                idea.failed += 1
            parent = self.parent_mean(e) if is_measured(e) else None
            if parent is not None:
                idea.deltas.append(float(e["val_bpb"]) - parent)
        return list(ideas.values())

    # -- the page --------------------------------------------------------------------------------------------

    def markdown(self, plot: str | None) -> str:
        parts = [self._title(), self._headline()]
        if plot:
            parts.append(
                f"## Progress\n\n![val_bpb of every experiment and the running best]({plot})\n\n"
                "Each dot is one run; the step line is the best single run so far, which a lucky draw of the "
                "noise can set. The headline and the lineage use each train.py's mean over its runs.\n"
            )
        for key, best in self.bests.items():
            parts.append(self._lineage(key, best))
        for key in self.bests:
            parts.append(self._did_not_work(key))
        parts += [self._notes(), self._agents(), self._cost(), self._pick()]
        return "\n".join(p for p in parts if p)

    def _title(self) -> str:
        tag = self.run.tag if self.run else "(no run record)"
        if self.bests:
            key, best = next(iter(self.bests.items()))
            baseline = self.baseline(key)
            change = f"{baseline:.6f} -> {best.mean:.6f}" if baseline is not None else f"best {best.mean:.6f}"
            title = f"# Swarm run {_md(tag)}: val_bpb {change} on {_md(key[0])}"
        else:
            title = f"# Swarm run {_md(tag)}: no measured result yet"
        started = (
            self.run.created_at if self.run else (finished_at(self.finished[0]) if self.finished else None)
        )
        ended = finished_at(self.finished[-1]) if self.finished else started
        hours = (ended - started) / HOUR if started and ended else 0.0
        agents = self.run.agents if self.run else ()
        kinds = Counter(a.kind for a in agents)
        who = ", ".join(f"{n} {_md(kind)}" for kind, n in kinds.items()) or "agents"
        return (
            f"{title}\n\n_From the board of run {_md(tag)}: {_when(started)} to {_when(ended)} ({_duration(hours)}), "
            f"{len(agents) or len(self.state.agents)} agents ({who}), {len(self.finished):,} finished experiments, "
            f"{_hours(self.gpu_hours(self.finished))} GPU-hours._\n"
        )

    def _headline(self) -> str:
        if not self.bests:
            return ""
        rows = [
            "## Headline\n",
            "| device / profile | baseline | best: mean ± σ (n) | change | confirmed | reached after | "
            "share of the run's GPU-hours |",
            "|---|---|---|---|---|---|---|",
        ]
        for key, best in self.bests.items():
            baseline = self.baseline(key)
            change = "-"
            if baseline is not None:
                change = f"{best.mean - baseline:+.6f} ({(best.mean - baseline) / baseline:+.2%})"
            group = [e for e in self.finished if group_of(e) == key]
            first = best.experiment
            until = [e for e in group if finished_at(e) <= finished_at(first)]
            total_hours, hours = self.gpu_hours(group), self.gpu_hours(until)
            share = (
                f"{_hours(hours)} of {_hours(total_hours)} ({hours / total_hours:.0%})"
                if total_hours
                else "-"
            )
            rows.append(
                f"| {_md(key[0])} / {_md(key[1])} | {format_number(baseline)} | {_mean_sigma(best)} | {change} | "
                f"{_confirmed(best)} | experiment {len(until):,} of {len(group):,} | {share} |"
            )
        return "\n".join(rows) + "\n"

    def _lineage(self, key: GroupKey, best: Best) -> str:
        steps = lineage(self.state, best.experiment, self.repo, self.index)
        baseline = self.baseline(key)
        lines = [
            f"## How the best came about: {_md(key[0])} / {_md(key[1])}\n",
            "Every step the best was built on, from the baseline: its change in val_bpb (mean of its train.py's "
            "runs against the step before), what it did and who did it.\n",
            "| # | experiment | agent | val_bpb | Δ | description | change to train.py |",
            "|---|---|---|---|---|---|---|",
            f"| 0 | base {_md(str(self.base or '-')[:10])} | | {format_number(baseline)} | | baseline | |",
        ]
        previous_commit, previous_mean = self.base, baseline
        for n, step in enumerate(steps, 1):
            e = step.record
            delta = step.delta
            if n == 1 and step.mean is not None and previous_mean is not None:
                delta = step.mean - previous_mean
            agent = _md(e.get("agent"))
            if step.adopted_from:
                agent += f" (adopted from {_md(step.adopted_from)})"
            lines.append(
                f"| {n} | {_md(e['id'])} | {agent} | {format_number(step.mean)} | {_signed(delta)} | "
                f"{_md(e.get('description'), 120)} | {self._change(previous_commit, e)} |"
            )
            previous_commit, previous_mean = e.get("commit"), step.mean
        return "\n".join(lines) + "\n"

    def _change(self, old_commit: str | None, record: dict[str, Any]) -> str:
        old, new = self.source(old_commit), self.source(record.get("commit"))
        if old is None or new is None:
            return "(diff unavailable: commit not in this repository)"
        diff = train_diff(old, new, record.get("profile") or "")
        parts = [_md(str(k)) for k in diff.knobs]
        if diff.lines:
            shown = "<br>".join(_md(line.strip(), 100) for line in diff.lines[:MAX_DIFF_LINES])
            more = len(diff.lines) - MAX_DIFF_LINES
            parts.append(
                f"+{diff.added} −{diff.removed} lines: {shown}" + (f" (+{more} more)" if more > 0 else "")
            )
        return "; ".join(parts) or "no change"

    def _did_not_work(self, key: GroupKey) -> str:
        ideas = [i for i in self.ideas(key) if not i.kept]
        if not ideas:
            return ""
        ideas.sort(key=lambda i: (-i.tried, i.name))
        lines = [
            f"## What did not work: {_md(key[0])} / {_md(key[1])}\n",
            "Knobs and ideas that were tried and never kept, most tried first; Δ is val_bpb against the "
            "train.py the change was made to (positive: worse).\n",
            "| knob or idea | tried | crashed | median Δ | best Δ |",
            "|---|---|---|---|---|",
        ]
        for idea in ideas[:MAX_IDEAS]:
            median = statistics.median(idea.deltas) if idea.deltas else None
            best = min(idea.deltas) if idea.deltas else None
            lines.append(
                f"| {_md(idea.name, 80)} | {idea.tried} | {idea.failed} | {_signed(median)} | {_signed(best)} |"
            )
        if len(ideas) > MAX_IDEAS:
            lines.append(f"\n{len(ideas) - MAX_IDEAS} more not shown.")
        return "\n".join(lines) + "\n"

    def _notes(self) -> str:
        notes = self.state.notes
        if not notes:
            return ""
        lines = ["## Notes from the agents\n"]
        if len(notes) > MAX_NOTES:
            lines.append(f"The last {MAX_NOTES} of {len(notes)}.\n")
        for note in notes[-MAX_NOTES:]:
            lines.append(
                f"- **{_md(note.get('agent'), 40)}** ({_when(note.get('ts'))}): {_md(note.get('text'), 500)}"
            )
        return "\n".join(lines) + "\n"

    def _agents(self) -> str:
        kinds = {a.name: a.kind for a in self.run.agents} if self.run else {}
        lines = [
            "## Agents\n",
            "| agent | kind | experiments | keeps | crash rate | GPU-hours | tokens | cost |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for summary in self.state.agent_summaries():
            counts = summary.counts
            finished = sum(n for status, n in counts.items() if status in FINAL_STATUSES)
            failed = sum(counts.get(s, 0) for s in FAILED_STATUSES)
            totals = self.totals.get(summary.name, Totals())
            rate = f"{failed / finished:.0%}" if finished else "-"
            cost = f"${totals.cost_usd:,.2f}" if totals.cost_usd is not None else "-"
            lines.append(
                f"| {_md(summary.name)} | {_md(kinds.get(summary.name, '?'))} | {summary.submitted} | "
                f"{counts.get(KEEP, 0)} | {rate} | {totals.gpu_seconds / HOUR:.2f} | {totals.tokens:,} | {cost} |"
            )
        return "\n".join(lines) + "\n"

    def _cost(self) -> str:
        if not self.bests:
            return ""
        key, best = next(iter(self.bests.items()))
        steps = lineage(self.state, best.experiment, self.repo, self.index)
        improvements = sum(
            1 for s in steps if s.record.get("status") == KEEP and (s.delta is None or s.delta < 0)
        )
        gpu = sum(t.gpu_seconds for t in self.totals.values()) / HOUR
        tokens = sum(t.tokens for t in self.totals.values())
        costs = [t.cost_usd for t in self.totals.values() if t.cost_usd is not None]
        lines = [
            "## Cost per improvement\n",
            f"The best on {_md(key[0])} / {_md(key[1])} stands on {improvements} kept improvement(s). The run "
            f"spent {_hours(gpu)} GPU-hours, {tokens:,} model tokens"
            + (f" and ${sum(costs):,.2f} of model use" if costs else "")
            + ".\n",
        ]
        if improvements:
            per = f"{gpu / improvements:.2f} GPU-hours and {tokens / improvements:,.0f} tokens"
            if costs:
                per += f" (${sum(costs) / improvements:,.2f} of model use)"
            if self.gpu_price is not None:
                per += f"; at ${self.gpu_price:.2f} per GPU-hour, ${gpu * self.gpu_price / improvements:,.2f} of GPU"
            lines.append(f"Per improvement: {per}.\n")
        return "\n".join(lines)

    def _pick(self) -> str:
        if not self.bests:
            return ""
        lines = ["## Pick the best\n", "Run these in the repository of the run:\n", "```sh"]
        for key, best in self.bests.items():
            e = best.experiment
            eid = _shell_word(e["id"])
            lines.append(
                f"# {_plain(key[0])} / {_plain(key[1])}: val_bpb {best.mean:.6f} ({_confirmed(best)})"
            )
            if e.get("commit"):
                lines.append(f"git show {_shell_word(e['commit'])}:train.py   # read it")
            if not best.verified:
                lines.append(f"swarm verify {eid} --repeats 3 --wait   # confirm it before you trust it")
            lines.append(f"swarm pick {eid}   # commit its train.py onto your branch")
        lines.append("```\n")
        return "\n".join(lines)


def _mean_sigma(best: Best) -> str:
    sigma = f" ± {best.sigma:.6f}" if best.sigma is not None else ""
    return f"{best.mean:.6f}{sigma} (n={best.n})"


def _confirmed(best: Best) -> str:
    if best.verified:
        return "verified by reruns"
    return "single run" if best.n == 1 else f"mean of {best.n} runs, not verified"


_SHELL_SAFE = re.compile(r"^[A-Za-z0-9._/-]+$")


def _shell_word(text: str) -> str:
    """An id or commit as a shell word: board ids and commits are hex, anything else is refused."""
    return text if _SHELL_SAFE.match(text) else "'<unsafe id>'"


def _plain(text: Any) -> str:
    """Agent-free text in a code block: control characters out."""
    return re.sub(r"[^\x20-\x7e]", "?", str(text))


_NUMBER = re.compile(r"[-+]?\d[\d_.,e*x/+-]*")
_WORD = re.compile(r"\S+")
_SWEEP_PREFIX = re.compile(r"^sweep[\w -]*:\s*")


def idea_of(description: Any, knobs: set[str]) -> str:
    """The knob(s) a description names (`MATRIX_LR`, `DEPTH + TOTAL_BATCH_SIZE`), else its first words with
    numbers left out ("GELU instead of ReLU^2"), so that the same idea tried with other values groups."""
    text = str(description or "").strip()
    tokens = re.findall(r"[A-Z][A-Z0-9_]*", text)
    named = [
        t for t in dict.fromkeys(tokens) if t in knobs or (not knobs and KNOB_NAME.match(t) and "_" in t)
    ]
    if named:
        return " + ".join(sorted(named))
    text = _SWEEP_PREFIX.sub("", text)  # the sweep agent's descriptions start by saying who wrote them
    if text.lower().startswith("baseline"):
        return "baseline"
    words = [w for w in _WORD.findall(_NUMBER.sub("", text)) if any(c.isalpha() for c in w)]
    return " ".join(words[:IDEA_WORDS]).lower() or "(no description)"


def write_report(
    state: BoardState, out: Path, repo: Path | None = None, gpu_price: float | None = None, plot: bool = True
) -> Path:
    """Write report.md (and progress.png) into `out`; returns the report's path."""
    out.mkdir(parents=True, exist_ok=True)
    report = Report(state, repo, gpu_price)
    picture = None
    if plot and report.bests:
        from swarm.results.plot import render

        render(from_experiments(report.experiments), out / PLOT_FILE)
        picture = PLOT_FILE
    path = out / REPORT_FILE
    path.write_text(report.markdown(picture))
    return path


def cmd_report(args) -> int:
    from swarm.board.state import open_board
    from swarm.results.output import output_directory

    target = output_directory(args.out) if args.out else None  # before the board is read
    repo, board, state = open_board()
    if state.run is None:  # never an empty report in the checkout
        raise SwarmError(f"no run on the board {board.directory} yet: nothing to report")
    out = target or output_directory(Path.cwd() / f"report-{state.run.tag}")
    path = write_report(state, out, repo, gpu_price=args.gpu_price, plot=not args.no_plot)
    print(f"wrote {path}")
    return 0
