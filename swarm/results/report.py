"""`swarm report [--out DIR]`: the story of a run as a Markdown page, from the board alone, its pictures beside it.

The morning after, a person wants to know what happened, what is real and what to pick: the headline per
device class, the progress plot, the best's lineage, the agents' experiments by what the board decided
(swarm.results.standing), notes, per-agent figures, cost, and the commands that pick the best. The best is
the board's one best, everywhere. Agent text is escaped for Markdown: it can neither format the page nor
inject HTML or links. Long story: docs/report.md.
"""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarm.board.experiments import (
    FAILED_STATUSES,
    FINAL_STATUSES,
    KEEP,
    GroupKey,
    group_of,
    has_result,
    is_measured,
)
from swarm.board.fold import BoardState
from swarm.board.holdout import read_holdout
from swarm.board.ledger import Totals, board_totals
from swarm.board.progress import finished_at, from_experiments
from swarm.board.stats import Best
from swarm.errors import SwarmError
from swarm.repo.git import file_at
from swarm.results.display import escape_markdown, format_number, mean_text
from swarm.results.holdout import baseline_sha, holdout_section
from swarm.results.lineage import CommitIndex, lineage
from swarm.results.queues import busy_fractions, render_queues
from swarm.results.standing import EXPERIMENT_RUN, Standing, kept_changes, kind_of, standing
from swarm.results.transfer import transfer_section
from swarm.runner.trust import sha256_bytes
from swarm.target.hparams import KNOB_NAME, read_knobs
from swarm.target.train_diff import train_diff

REPORT_FILE = "report.md"
PLOT_FILE = "progress.png"
HOUR = 3600.0
MAX_DIFF_LINES = 8  # other changed lines of train.py shown per lineage step
MAX_IDEAS = 15  # rows of "what did not work"
MAX_NOTES = 40
MAX_ROWS = 25  # rows of a section's table of experiments
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
        self._standings: dict[GroupKey, Standing] = {}

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

    def standing(self, key: GroupKey) -> Standing:
        """Where a group stands (swarm.results.standing), its baseline the run's base train.py."""
        if key not in self._standings:
            source = self.source(self.base)
            self._standings[key] = standing(
                self.state, key, sha256_bytes(source.encode()) if source is not None else None
            )
        return self._standings[key]

    def baseline(self, key: GroupKey) -> float | None:
        """Mean of the run's base train.py in a group, else of the group's first baseline or result."""
        content = self.standing(key).baseline
        return content.mean if content else None

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

    def reference_mean(self, record: dict[str, Any]) -> float | None:
        """The mean of what a result was judged against (its `reference`: the agent's best then), else of
        its parent."""
        reference = self.state.experiments.get(record.get("reference") or "")
        if reference is not None and has_result(reference):
            content = self.state.content(group_of(reference), reference["train_sha256"])
            if content is not None:
                return content.mean
        return self.parent_mean(record)

    def ideas(self, key: GroupKey) -> list[Idea]:
        """What did not work: the agents' discarded, stopped and failed experiments, by knob or idea."""
        knobs = self.knob_names(key[1])
        ideas: dict[str, Idea] = {}
        where = self.standing(key)
        for e in [*where.discarded, *(e for e in where.failed if kind_of(e) == EXPERIMENT_RUN)]:
            name = idea_of(e.get("description"), knobs)
            idea = ideas.setdefault(name, Idea(name))
            idea.tried += 1
            if e.get("status") in FAILED_STATUSES:
                idea.failed += 1
            reference = self.reference_mean(e) if is_measured(e) else None
            if reference is not None:
                idea.deltas.append(float(e["val_bpb"]) - reference)
        return list(ideas.values())

    # -- the page --------------------------------------------------------------------------------------------

    def markdown(self, plot: str | None) -> str:
        parts = [self._title(), self._headline()]
        if plot:
            parts.append(
                f"## Progress\n\n![val_bpb of every experiment and the running best]({plot})\n\n"
                "Each dot is one run; the step line is the best as the board defines it, the lowest mean of a "
                "train.py measured often enough to be confirmed, as it stood after each result (it can rise "
                "when reruns pull a mean up). The headline and the lineage use the same means.\n"
            )
        holdout = read_holdout(self.state.board.directory)  # private: the human's report only
        for key, best in self.bests.items():
            parts.append(self._lineage(key, best))
            steps = lineage(self.state, best.experiment, self.repo, self.index)
            parts.append(
                holdout_section(self.state, key, steps, baseline_sha(self.repo, self.state), holdout)
            )
        for key in self.state.groups:
            parts += [
                self._kept(key),
                self._marginal(key),
                self._promising(key),
                self._did_not_work(key),
                self._failures(key),
            ]
        parts.append(transfer_section(self.state, self.repo))
        parts += [self._notes(), self._agents(), self._slots(), self._cost(), self._pick()]
        return "\n".join(p for p in parts if p)

    def _title(self) -> str:
        tag = self.run.tag if self.run else "(no swarm record)"
        if self.bests:
            key, best = next(iter(self.bests.items()))
            baseline = self.baseline(key)
            change = f"{baseline:.6f} -> {best.mean:.6f}" if baseline is not None else f"best {best.mean:.6f}"
            title = f"# Swarm run {_md(tag)}: val_bpb {change} on {_md(key[0])}"
        else:
            measured = any(is_measured(e) for e in self.finished)
            title = f"# Swarm run {_md(tag)}: no {'confirmed' if measured else 'measured'} result yet"
        started = (
            self.run.created_at if self.run else (finished_at(self.finished[0]) if self.finished else None)
        )
        ended = finished_at(self.finished[-1]) if self.finished else started
        hours = (ended - started) / HOUR if started and ended else 0.0
        agents = self.run.agents if self.run else ()
        kinds = Counter(a.kind for a in agents)
        who = ", ".join(f"{n} {_md(kind)}" for kind, n in kinds.items()) or "agents"
        return (
            f"{title}\n\n_From the board of swarm {_md(tag)}: {_when(started)} to {_when(ended)} ({_duration(hours)}), "
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
        rows.append("")
        for key in self.state.groups:
            where = self.standing(key)
            own = ", ".join(f"{n} {kind}" for kind, n in sorted(where.own_runs.items())) or "none"
            rows.append(
                f"- {_md(where.in_words())}. Agents' experiments: {len(where.kept)} kept, "
                f"{len(where.marginal)} marginal, {len(where.promising)} promising, {len(where.discarded)} "
                f"discarded or stopped, {sum(kind_of(e) == EXPERIMENT_RUN for e in where.failed)} failed, "
                f"{where.pending} queued or running; "
                f"the swarm's own runs, counted apart: {own}."
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
        ideas = self.ideas(key)
        if not ideas:
            return ""
        ideas.sort(key=lambda i: (-i.tried, i.name))
        lines = [
            f"## What did not work: {_md(key[0])} / {_md(key[1])}\n",
            "The agents' experiments that were discarded (no improvement over the agent's best), stopped "
            "early or failed, by the knob or idea they tried, most tried first; Δ is val_bpb against the "
            "mean of what each was judged against (positive: worse). Failures are listed with their reasons "
            "below.\n",
            "| knob or idea | tried | failed | median Δ | best Δ |",
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

    def _results_table(self, records: list[dict[str, Any]], with_band: bool) -> list[str]:
        head = "| experiment | agent | val_bpb: mean ± σ (n) | Δ | " + ("band | " if with_band else "")
        lines = [
            head + "description | why |",
            "|---|---|---|---|" + ("---|" if with_band else "") + "---|---|",
        ]
        for e in records[:MAX_ROWS]:
            content = self.state.content(group_of(e), e["train_sha256"])
            mean = content.mean if content else float(e["val_bpb"])
            shown = mean_text(mean, content.sigma, content.n) if content else mean_text(mean, None, 1)
            reference = self.reference_mean(e)
            delta = _signed(mean - reference) if reference is not None else "-"
            band = f"{format_number(e.get('band'))} | " if with_band else ""
            lines.append(
                f"| {_md(e['id'])} | {_md(e.get('agent'))} | {shown} | {delta} | {band}"
                f"{_md(e.get('description'), 100)} | {_md(e.get('reason'), 160)} |"
            )
        if len(records) > MAX_ROWS:
            lines.append(f"\n{len(records) - MAX_ROWS} more not shown.")
        return lines

    def _kept(self, key: GroupKey) -> str:
        kept = self.standing(key).kept
        if not kept:
            return ""
        return (
            "\n".join(
                [
                    f"## Kept improvements: {_md(key[0])} / {_md(key[1])}\n",
                    "The agents' changes the board kept: beyond the noise band against the agent's best, confirmed "
                    "by reruns beside control runs where the noise rule asks for it. Baselines, calibration, "
                    "confirmation and control runs are not counted here. Δ: the mean against what it was judged "
                    "against.\n",
                    *self._results_table(kept, with_band=False),
                ]
            )
            + "\n"
        )

    def _marginal(self, key: GroupKey) -> str:
        marginal = self.standing(key).marginal
        if not marginal:
            return ""
        return (
            "\n".join(
                [
                    f"## Marginal gains, inside the noise band: {_md(key[0])} / {_md(key[1])}\n",
                    "Improvements smaller than the noise band (the band each was judged with is shown): they may "
                    "be real, or a lucky draw of the noise; rerun one with `swarm verify ID --repeats 3` to tell.\n",
                    *self._results_table(marginal, with_band=True),
                ]
            )
            + "\n"
        )

    def _promising(self, key: GroupKey) -> str:
        where = self.standing(key)
        if not where.promising and not where.pending:
            return ""
        lines = [f"## Awaiting confirmation: {_md(key[0])} / {_md(key[1])}\n"]
        if where.promising:
            lines += [
                "Results beyond the screening band whose confirmation reruns have not all landed: not a gain "
                "until they do.\n",
                *self._results_table(where.promising, with_band=True),
                "",
            ]
        if where.pending:
            lines.append(f"{where.pending} of the agents' experiments were still queued or running.\n")
        return "\n".join(lines)

    def _failures(self, key: GroupKey) -> str:
        failed = self.standing(key).failed
        if not failed:
            return ""
        lines = [
            f"## Failures: {_md(key[0])} / {_md(key[1])}\n",
            "Experiments that ended without a trustworthy number, and why.\n",
            "| experiment | agent | status | description | reason |",
            "|---|---|---|---|---|",
        ]
        for e in failed[:MAX_ROWS]:
            lines.append(
                f"| {_md(e['id'])} | {_md(e.get('agent'))} | {_md(e.get('status'))}{_own_run(e)} | "
                f"{_md(e.get('description'), 100)} | {_md(e.get('reason') or 'no reason recorded', 200)} |"
            )
        if len(failed) > MAX_ROWS:
            lines.append(f"\n{len(failed) - MAX_ROWS} more not shown.")
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
        kept = kept_changes(self.experiments)
        own = Counter(
            e.get("agent")
            for e in self.experiments
            if e.get("status") in FINAL_STATUSES and kind_of(e) != EXPERIMENT_RUN
        )
        lines = [
            "## Agents\n",
            "Keeps are the agent's own changes kept; its baseline and the calibration, confirmation and control "
            "reruns made in its name are counted apart.\n",
            "| agent | kind | experiments | keeps | baseline and reruns | crash rate | GPU-hours | tokens | cost |",
            "|---|---|---|---|---|---|---|---|---|",
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
                f"{kept[summary.name]} | {own[summary.name]} | {rate} | {totals.gpu_seconds / HOUR:.2f} | "
                f"{totals.tokens:,} | {cost} |"
            )
        return "\n".join(lines) + "\n"

    def _slots(self) -> str:
        """Each slot's busy share of the run, and what waits in the class queues now."""
        if self.run is None:
            return ""
        lines = ["## Slots\n", "| slot | device | busy |", "|---|---|---|"]
        for slot in busy_fractions(self.state, self.run):
            lines.append(f"| {_md(slot.slot)} | {_md(slot.device)} | {slot.busy_fraction:.0%} |")
        waiting = [line for line in render_queues(self.state, self.run) if line.startswith("queue ")]
        return "\n".join(lines) + "\n" + "".join(f"\n{_md(line)}\n" for line in waiting)

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
        lines = ["## Pick the best\n"]
        commands = []
        for key, best in self.bests.items():
            e = best.experiment
            eid = _shell_word(e["id"])
            where = self.standing(key)
            if where.baseline is not None and best.train_sha256 == where.baseline.train_sha256:
                lines.append(
                    f"On {_md(key[0])} / {_md(key[1])} the best is still the baseline's train.py: nothing to pick."
                )
                continue
            commands.append(
                f"# {_plain(key[0])} / {_plain(key[1])}: val_bpb {_plain(mean_text(best.mean, best.sigma, best.n))}"
                f" ({_confirmed(best)}{'' if where.is_kept(best.train_sha256) else ', not kept as a gain'})"
            )
            if e.get("commit"):
                commands.append(f"git show {_shell_word(e['commit'])}:train.py   # read it")
            if not best.verified:
                commands.append(f"swarm verify {eid} --repeats 3 --wait   # confirm it before you trust it")
            commands.append(f"swarm pick {eid}   # commit its train.py onto your branch")
        if commands:
            lines += ["", "Run these in the repository of the run:\n", "```sh", *commands, "```"]
        return "\n".join(lines) + "\n"


def _own_run(record: dict[str, Any]) -> str:
    """After a failure's status: which of the swarm's own runs it was, if it was one."""
    kind = kind_of(record)
    return "" if kind == EXPERIMENT_RUN else f" ({kind} run)"


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
    if plot and any(is_measured(e) for e in report.finished):  # the dots tell even before a best does
        from swarm.results.plot import render

        steps = {key: state.best_steps(key) for key in state.groups}
        render(from_experiments(report.experiments, steps), out / PLOT_FILE, report.bests)
        picture = PLOT_FILE
    path = out / REPORT_FILE
    path.write_text(report.markdown(picture))
    return path


def cmd_report(args) -> int:
    from swarm.board.opening import open_board
    from swarm.results.output import output_directory

    target = output_directory(args.out) if args.out else None  # before the board is read
    repo, board, state = open_board()
    if state.run is None:  # never an empty report in the checkout
        raise SwarmError(f"no swarm on the board {board.directory} yet: nothing to report")
    out = target or output_directory(Path.cwd() / f"report-{state.run.tag}")
    path = write_report(state, out, repo, gpu_price=args.gpu_price, plot=not args.no_plot)
    print(f"wrote {path}")
    return 0
