"""The cost ledger: model tokens and dollars per agent, as `usage` records on the board, and their totals.

A usage record holds the usage of one stretch of an agent's work since its previous record (deltas,
never running totals), so totals are plain sums and a record lost to a crash loses only its stretch:

    {"type": "usage", "agent": "cpu0", "tag": "mar5", "gpu": "cpu0", "kind": "api", "model": "...",
     "requests": 7, "input_tokens": 51234, "output_tokens": 2210, "cache_read_tokens": 40100,
     "cache_write_tokens": 0, "cost_usd": 0.21, "ts": ...}

`input_tokens` counts uncached input only (the Anthropic convention; OpenAI's cached tokens are moved
to `cache_read_tokens`), and `cost_usd` is null when the price is unknown. GPU-seconds per agent come
from its experiment records (started_at to finished_at of each finished run), so `swarm status` can show
model cost and GPU time side by side.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from swarm.board.fold import BoardState
from swarm.board.store import USAGE

USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


@dataclass(frozen=True)
class Usage:
    """Tokens of one stretch of model work (uncached input, output, cache reads and writes)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )

    @classmethod
    def openai(cls, input_tokens: int, output_tokens: int, cached_tokens: int) -> Usage:
        """From OpenAI's counts, whose input tokens include the cached ones: here (and in the ledger)
        input_tokens is the uncached input only, as Anthropic counts it."""
        return cls(input_tokens - cached_tokens, output_tokens, cached_tokens)

    @property
    def total(self) -> int:
        """Every token the model processed, cached or not (what a token budget counts)."""
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens


@dataclass(frozen=True)
class Prices:
    """Dollars per million tokens; None where unknown (then costs are unknown, not zero)."""

    input_usd_per_mtok: float | None = None
    output_usd_per_mtok: float | None = None
    cached_input_usd_per_mtok: float | None = None  # defaults to the input price

    @property
    def known(self) -> bool:
        return self.input_usd_per_mtok is not None and self.output_usd_per_mtok is not None

    def cost(self, usage: Usage) -> float | None:
        if not self.known:
            return None
        cached = self.cached_input_usd_per_mtok
        cached = self.input_usd_per_mtok if cached is None else cached
        dollars = (
            (usage.input_tokens + usage.cache_write_tokens) * self.input_usd_per_mtok
            + usage.cache_read_tokens * cached
            + usage.output_tokens * self.output_usd_per_mtok
        )
        return dollars / 1e6


def usage_record(
    *,
    agent: str,
    tag: str | None,
    gpu: str | None,
    kind: str,
    model: str | None,
    usage: Usage,
    requests: int,
    cost_usd: float | None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "type": USAGE,
        "agent": agent,
        "tag": tag,
        "gpu": gpu,
        "kind": kind,
        "model": model,
        "requests": requests,
        **{name: getattr(usage, name) for name in USAGE_FIELDS},
        "cost_usd": None if cost_usd is None else round(cost_usd, 6),
        **extra,
    }


@dataclass
class Totals:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = None  # None while no record had a known cost
    gpu_seconds: float = 0.0
    experiments: int = 0
    kinds: set[str] = field(default_factory=set)

    @property
    def usage(self) -> Usage:
        return Usage(**{name: getattr(self, name) for name in USAGE_FIELDS})

    @property
    def tokens(self) -> int:
        return self.usage.total

    def usage_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            **{name: getattr(self, name) for name in USAGE_FIELDS},
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 4),
        }

    def add_usage(self, record: dict[str, Any]) -> None:
        self.requests += int(record.get("requests") or 0)
        for name in USAGE_FIELDS:
            setattr(self, name, getattr(self, name) + int(record.get(name) or 0))
        if record.get("cost_usd") is not None:
            self.cost_usd = (self.cost_usd or 0.0) + float(record["cost_usd"])
        if record.get("kind"):
            self.kinds.add(str(record["kind"]))


def totals_by_agent(
    usage: Iterable[dict[str, Any]], experiments: Iterable[dict[str, Any]] = (), tag: str | None = None
) -> dict[str, Totals]:
    """Usage and GPU time per agent: `usage` records (of run `tag` when given) and the latest record of
    each experiment (BoardState.experiments.values())."""
    totals: dict[str, Totals] = {}
    for record in usage:
        if record.get("agent") and (tag is None or record.get("tag") in (None, tag)):
            totals.setdefault(record["agent"], Totals()).add_usage(record)
    for record in experiments:
        started, finished = record.get("started_at"), record.get("finished_at")
        if tag is not None and record.get("tag") not in (None, tag):
            continue
        if record.get("agent") and started is not None and finished is not None:
            agent = totals.setdefault(record["agent"], Totals())
            agent.gpu_seconds += max(0.0, float(finished) - float(started))
            agent.experiments += 1
    return totals


def board_totals(state: BoardState, tag: str | None = None) -> dict[str, Totals]:
    """Totals per agent from a board's folded state (refreshed by the caller)."""
    return totals_by_agent(state.usage, state.experiments.values(), tag)
