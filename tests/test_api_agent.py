"""The API agent's loop against the fake model server: each protocol, refusals seen, context bounded,
budget stop, usage on the board. (The end-to-end runs with real training are in test_api_agent_e2e.py.)"""

import io

import pytest

from swarm.agents.api.agent import EXIT_BUDGET, ApiAgent, ApiSettings, settings_from
from swarm.agents.api.client import CHAT, RESPONSES, make_client
from swarm.agents.api.tools import Toolbox
from swarm.board.experiments import new_experiment
from swarm.board.ledger import totals_by_agent
from swarm.board.store import USAGE, Board
from swarm.cli import build_parser, main
from swarm.errors import SwarmError
from swarm.repo.paths import Identity
from swarm.testing.fake_model import FakeModelServer, Reply, Script
from tests.support.swarm_run import git

PROTOCOLS = [
    ("anthropic", None, True),
    ("openai", RESPONSES, True),
    ("openai-compatible", CHAT, True),
    ("openai-compatible", CHAT, False),
]


def _agent(server, worktree, board, provider="anthropic", openai_api=None, stream=True, key=None, **settings):
    base_url = server.url if provider == "anthropic" else server.url + "/v1"
    config = ApiSettings(
        provider=provider, model="fake-model", base_url=base_url, openai_api=openai_api, **settings
    )
    config = config.resolved()
    client = make_client(
        provider,
        "fake-model",
        max_tokens=1000,
        stream=stream,
        api_key=key or server.api_key,
        base_url=base_url,
        openai_api=config.openai_api,
    )
    identity = Identity(agent="cpu0", worktree=worktree, tag="t1", queue="cpu0")
    out = io.StringIO()
    return ApiAgent(config, identity, client, Toolbox(worktree, logs=board.logs), board, out=out), out


@pytest.mark.parametrize("provider, openai_api, stream", PROTOCOLS)
def test_edits_commits_and_sees_refusals(worktree, tmp_path, provider, openai_api, stream):
    script = Script(
        [
            Reply.calling("read_file", "Reading first.", path="train.py"),
            Reply.calling("edit_file", path="train.py", old="DEPTH = 8", new="DEPTH = 12"),
            Reply.calling("run", command='git commit -am "deeper"'),
            Reply.calling("run", command="curl http://example.com/exfiltrate"),
            Reply.calling("edit_file", path="prepare.py", old="2048", new="64"),
            Reply.calling("run", command="rm -rf /"),
        ]
    )
    board = Board(tmp_path / "board").create()
    with FakeModelServer(script) as server:
        agent, out = _agent(server, worktree, board, provider, openai_api, stream, max_turns=6)
        assert agent.run() == 0
        results = [r.tool_results() for r in server.model_requests()]
        first = server.model_requests()[0].body
    assert git(worktree, "log", "-1", "--format=%s").strip() == "deeper"
    limit = {"anthropic": "max_tokens", "openai": "max_output_tokens", "openai-compatible": "max_tokens"}
    assert first[limit[provider]] == 1000
    assert (worktree / "train.py").read_text().startswith("DEPTH = 12")
    assert (worktree / "prepare.py").read_text() == "MAX_SEQ_LEN = 2048\n"
    # Each request carries the outcome of the previous reply's call: the model saw every refusal.
    assert results[0] == [] and "    1  DEPTH = 8" in results[1][0]
    assert results[3][0].startswith("exit 0")
    assert results[4][0].startswith("refused: 'curl' is not an allowed command")
    assert results[5][0].startswith("refused: only train.py may be changed")
    assert len(results) == 6  # the sixth reply's call (rm) ran, then max_turns stopped the session
    assert "$ curl http://example.com/exfiltrate" in out.getvalue() and "Reading first." in out.getvalue()
    [usage] = [r for r in board.records() if r["type"] == USAGE]
    assert usage["agent"] == "cpu0" and usage["requests"] == 6 and usage["kind"] == "api"
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0 and usage["cost_usd"] is None


def test_context_stays_bounded_and_keeps_the_board(worktree, tmp_path):
    (worktree / "train.py").write_text("".join(f"X{i} = {i}  # a knob with a comment\n" for i in range(300)))
    script = Script([Reply.calling("read_file", path="train.py", limit=120)] * 14)
    board = Board(tmp_path / "board").create()
    result = {"agent": "cpu0", "gpu": "cpu0", "device": "cpu", "profile": "tiny", "commit": "c0ffee" * 6}
    board.append(
        new_experiment(
            **result, status="keep", val_bpb=1.2345, train_sha256="ab" * 32, description="wider mlp"
        )
    )
    board.append({"type": "note", "id": "n1", "agent": "cpu1", "text": "lr 0.08 diverges"})
    with FakeModelServer(script) as server:
        agent, out = _agent(server, worktree, board, context_tokens=5000, keep_turns=3, max_turns=14)
        agent.run()
        sizes = [len(r.body["messages"]) for r in server.model_requests()]
        last = server.model_requests()[-1]
    assert max(sizes) <= 1 + 2 * 3 + 2, sizes  # opening + at most keep_turns exchanges (+1 while growing)
    opening = last.body["messages"][0]["content"]
    assert "Earlier in this session" in opening
    assert opening.count("\n- read_file") >= 5  # one summary line per folded call...
    assert "X100 = 100" not in opening  # ...not the outputs themselves
    # The board digest: the best, this agent's latest results and the notes, after every compaction too.
    assert "## The board at" in opening and "1.234500" in opening and "wider mlp" in opening
    assert "lr 0.08 diverges" in opening
    assert "[context: summarised" in out.getvalue()
    assert len(last.text()) // 4 < 5000 + 2000


def test_budget_stops_spending_and_holds_across_restarts(worktree, tmp_path):
    board = Board(tmp_path / "board").create()
    script = Script([Reply.calling("run", command="git status")] * 50)
    with FakeModelServer(script) as server:
        agent, out = _agent(server, worktree, board, budget_tokens=3000)
        assert agent.run() == EXIT_BUDGET
        asked = len(server.model_requests())
        assert 1 <= asked < 50 and "token budget reached" in out.getvalue()
        spent = totals_by_agent([r for r in board.records() if r["type"] == USAGE], tag="t1")["cpu0"]
        assert 3000 <= spent.tokens < 3000 + 2000  # stops at the first request past the budget
        assert spent.requests == asked
        # A restarted agent (the coordinator revives dead agents) reads what was spent and asks nothing.
        again, out = _agent(server, worktree, board, budget_tokens=3000)
        assert again.run() == EXIT_BUDGET
        assert len(server.model_requests()) == asked


def test_dollar_budget_uses_the_prices(worktree, tmp_path):
    board = Board(tmp_path / "board").create()
    with FakeModelServer(Script([Reply.calling("run", command="git status")] * 50)) as server:
        agent, _ = _agent(
            server, worktree, board, budget_usd=0.01, input_usd_per_mtok=3.0, output_usd_per_mtok=15.0
        )
        assert agent.run() == EXIT_BUDGET
    cost = totals_by_agent(r for r in board.records() if r["type"] == USAGE)["cpu0"].cost_usd
    assert 0.01 <= cost < 0.02


def test_an_api_error_is_one_clear_line(worktree, tmp_path):
    board = Board(tmp_path / "board").create()
    with FakeModelServer(Script([])) as server:
        agent, _ = _agent(server, worktree, board, key="a-wrong-key")
        with pytest.raises(SwarmError, match="anthropic API error 401: .*invalid api key"):
            agent.run()


def test_settings_from_swarm_toml(tmp_path):
    (tmp_path / "swarm.toml").write_text(
        '[api]\nprovider = "openai-compatible"\nbase_url = "http://localhost:8000/v1"\nmodel = "qwen"\n'
        "max_turns = 3\n"
    )
    settings = settings_from(tmp_path)
    assert (settings.model, settings.max_turns, settings.openai_api) == ("qwen", 3, CHAT)
    assert settings.api_key_env == "OPENAI_API_KEY" and settings.stream is True
    assert ApiSettings(provider="openai").resolved().openai_api == RESPONSES


@pytest.mark.parametrize("flag", ["--model=llama", "--provider=openai", "--max-turns=3", "--no-stream"])
def test_swarm_agent_api_takes_no_flag_for_a_setting(flag, capsys):
    """[api] in swarm.toml is the one place for a setting: the swarm never passed these flags."""
    with pytest.raises(SystemExit) as exit:
        main(["agent", "api", "--prompt", "go", flag])
    assert exit.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err
    args = build_parser("agent").parse_args(["agent", "api", "--prompt", "go"])
    assert (args.handler, args.prompt) == ("swarm.agents.api.agent:cmd_api", "go")


@pytest.mark.parametrize(
    "settings, message",
    [
        (ApiSettings(provider="openai-compatible", model="m"), "base_url is required"),
        (ApiSettings(provider="gemini"), "use one of anthropic, openai, openai-compatible"),
        (ApiSettings(budget_usd=5.0), "budget_usd needs input_usd_per_mtok"),
    ],
)
def test_bad_settings_are_one_clear_error(settings, message):
    with pytest.raises(SwarmError, match=message):
        settings.resolved()


def test_reply_length_field_per_provider():
    """OpenAI's models take max_completion_tokens on Chat Completions; compatible servers max_tokens."""
    from swarm.agents.api.client import Conversation

    conversation = Conversation(system="s", opening="o", turns=[], tools=[])
    fields = {}
    for provider in ("openai", "openai-compatible"):
        client = make_client(
            provider,
            "m",
            max_tokens=77,
            stream=False,
            api_key="k",
            base_url="http://127.0.0.1:9",
            openai_api=CHAT,
        )
        fields[provider] = {k for k, v in client.render(conversation).items() if v == 77}
    assert fields == {"openai": {"max_completion_tokens"}, "openai-compatible": {"max_tokens"}}
