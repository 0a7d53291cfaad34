"""The cost ledger: usage records summed per agent next to GPU time, `swarm status` showing them, and the
relay's reading of Claude Code / Codex events (the real CLIs are driven in test_cli_agents.py)."""

import io
import json
import sys

import pytest

from swarm.agents.relay import ClaudeEvents, CodexEvents, relay
from swarm.board.experiments import new_experiment
from swarm.board.ledger import Prices, Usage, totals_by_agent, usage_record
from swarm.board.store import USAGE


def test_totals_sum_deltas_keep_unknown_cost_unknown_and_add_gpu_time():
    usage = [
        usage_record(agent="gpu0", tag="t", gpu="0", kind="api", model="m", usage=Usage(100, 10, 50, 0), requests=2, cost_usd=0.5),
        usage_record(agent="gpu0", tag="t", gpu="0", kind="api", model="m", usage=Usage(20, 5), requests=1, cost_usd=0.25),
        usage_record(agent="gpu1", tag="t", gpu="1", kind="codex", model=None, usage=Usage(7, 3), requests=None, cost_usd=None),
        usage_record(agent="gpu1", tag="old", gpu="1", kind="codex", model=None, usage=Usage(999, 9), requests=None, cost_usd=1.0),
    ]  # fmt: skip
    experiments = [
        new_experiment(agent="gpu0", status="keep", started_at=100.0, finished_at=400.0),
        new_experiment(agent="gpu0", status="running", started_at=500.0),  # not finished: no GPU time yet
        new_experiment(agent="gpu1", status="crash", started_at=10.0, finished_at=70.5),
        new_experiment(
            agent="gpu1", tag="old", status="keep", started_at=0.0, finished_at=1e6
        ),  # another run
    ]
    totals = totals_by_agent(usage, experiments, tag="t")
    gpu0, gpu1 = totals["gpu0"], totals["gpu1"]
    assert (gpu0.requests, gpu0.input_tokens, gpu0.cache_read_tokens, gpu0.tokens) == (3, 120, 50, 185)
    assert gpu0.cost_usd == pytest.approx(0.75) and gpu0.gpu_seconds == 300.0 and gpu0.experiments == 1
    assert gpu1.cost_usd is None and gpu1.tokens == 10 and gpu1.gpu_seconds == 60.5


def test_prices_charge_cached_input_at_its_own_rate():
    prices = Prices(input_usd_per_mtok=3.0, output_usd_per_mtok=15.0, cached_input_usd_per_mtok=0.3)
    assert prices.cost(Usage(1_000_000, 100_000, 2_000_000, 0)) == pytest.approx(3.0 + 1.5 + 0.6)
    assert Prices().cost(Usage(5, 5)) is None


def test_swarm_status_shows_tokens_cost_and_gpu_hours(make_swarm_run, cli, monkeypatch, swarm_shell):
    run = make_swarm_run(agents=("cpu0", "cpu1"))
    record = usage_record(agent="cpu0", tag=run.run.tag, gpu="cpu0", kind="api", model="m", usage=Usage(1500, 500, 10_000), requests=4, cost_usd=0.1234)  # fmt: skip
    run.board.append(record)
    run.board.append(
        new_experiment(agent="cpu0", gpu="cpu0", status="crash", started_at=0.0, finished_at=1800.0)
    )
    monkeypatch.chdir(run.repo)
    code, out, _ = cli("status", "--json")
    assert code == 0
    agents = {a["name"]: a for a in json.loads(out)["agents"]}
    assert agents["cpu0"]["usage"] == {
        "requests": 4, "input_tokens": 1500, "output_tokens": 500, "cache_read_tokens": 10_000,
        "cache_write_tokens": 0, "cost_usd": 0.1234,
    }  # fmt: skip
    assert agents["cpu0"]["gpu_seconds"] == 1800.0 and agents["cpu1"]["usage"]["cost_usd"] is None
    code, out, _ = cli("status")
    header, cpu0, cpu1 = out.splitlines()[1:4]
    assert "TOKENS" in header and "COST" in header and "GPU-H" in header
    assert "12.0k" in cpu0 and "$0.12" in cpu0 and " 0.50 " in cpu0
    assert " 0 " in cpu1 and " - " in cpu1


CLAUDE_EVENTS = [
    {"type": "system", "subtype": "init", "model": "claude-x", "claude_code_version": "2.1.330"},
    {"type": "assistant", "message": {"id": "m1", "content": [{"type": "text", "text": "Let me run it."}]}},
    {"type": "assistant", "message": {"id": "m1", "content": [{"type": "tool_use", "name": "Bash", "input": {"command": "swarm run -m x"}}]}},
    {"type": "user", "message": {"content": [{"type": "tool_result", "content": "line\n" * 9, "is_error": False}]}},
    {"type": "assistant", "message": {"id": "m2", "content": [{"type": "text", "text": "Done."}]}},
    {"type": "result", "subtype": "success", "num_turns": 2, "total_cost_usd": 0.42,
     "usage": {"input_tokens": 900, "output_tokens": 80, "cache_read_input_tokens": 5000, "cache_creation_input_tokens": 300}},
]  # fmt: skip
CODEX_EVENTS = [
    {"type": "thread.started", "thread_id": "th1"},
    {"type": "item.completed", "item": {"type": "agent_message", "text": "Running."}},
    {"type": "item.completed", "item": {"type": "command_execution", "command": "bash -c 'exit 3'", "aggregated_output": "boom\n", "exit_code": 3}},
    {"type": "error", "message": "stream disconnected; retrying"},
    {"type": "turn.completed", "usage": {"input_tokens": 1200, "cached_input_tokens": 1000, "output_tokens": 40}},
]  # fmt: skip


@pytest.mark.parametrize(
    "reader, events, shown, usage, requests, cost",
    [
        (ClaudeEvents, CLAUDE_EVENTS, ["$ Bash: swarm run -m x", "... (3 more lines)", "$0.4200"], Usage(900, 80, 5000, 300), 2, 0.42),
        (CodexEvents, CODEX_EVENTS, ["$ bash -c 'exit 3'", "  ! boom", "(exit 3)", "! stream disconnected"], Usage(200, 40, 1000, 0), None, None),
    ],
)  # fmt: skip
def test_relay_shows_events_readably_and_reports_usage(
    tmp_path, reader, events, shown, usage, requests, cost
):
    emitter = tmp_path / "emit.py"
    lines = "\n".join(json.dumps(e) for e in events)
    emitter.write_text(f"print('plain text passes through')\nprint({lines!r})\n")
    out, reports = io.StringIO(), []
    code = relay(reader(), [sys.executable, str(emitter)], record=reports.append, out=out)
    assert code == 0 and "plain text passes through" in out.getvalue()
    for text in shown:
        assert text in out.getvalue(), out.getvalue()
    [report] = reports
    assert (report["usage"], report["requests"], report["cost_usd"]) == (usage, requests, cost)
    assert not any(line.lstrip().startswith("{") for line in out.getvalue().splitlines())  # no raw JSON
    assert USAGE == "usage"
