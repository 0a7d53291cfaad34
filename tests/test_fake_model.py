"""The fake model server against the real anthropic and openai SDKs: every protocol, streamed or not."""

import anthropic
import openai
import pytest
import requests

from swarm.testing.fake_model import FakeModelServer, HttpError, Reply, Script, ToolCall

REPLY = Reply("Looking at train.py first.", (ToolCall("read_file", {"path": "train.py"}),))


@pytest.fixture
def server():
    with FakeModelServer(Script([REPLY] * 4, is_turn=lambda r: True)) as s:
        yield s


def _anthropic(server, key=None):
    return anthropic.Anthropic(base_url=server.url, api_key=key or server.api_key, max_retries=0)


def _openai(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=server.api_key, max_retries=0)


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_messages(server, stream):
    client = _anthropic(server)
    request = {"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        with client.messages.stream(**request) as s:
            deltas = list(s.text_stream)
            message = s.get_final_message()
        assert len(deltas) > 1 and "".join(deltas) == REPLY.text  # really streamed, in pieces
    else:
        message = client.messages.create(**request)
    assert message.stop_reason == "tool_use"
    [text, call] = message.content
    assert text.text == REPLY.text
    assert (call.name, call.input) == ("read_file", {"path": "train.py"})
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert server.model_requests("anthropic")[-1].stream is stream


@pytest.mark.parametrize("stream", [False, True])
def test_openai_chat_completions(server, stream):
    client = _openai(server)
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        with client.chat.completions.stream(**request, stream_options={"include_usage": True}) as s:
            kinds = {event.type for event in s}
            completion = s.get_final_completion()
        assert "content.delta" in kinds and "tool_calls.function.arguments.delta" in kinds
    else:
        completion = client.chat.completions.create(**request)
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls"
    assert message.content == REPLY.text
    [call] = message.tool_calls
    assert (call.function.name, call.function.arguments) == ("read_file", '{"path": "train.py"}')
    assert completion.usage.prompt_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
def test_openai_responses(server, stream):
    client = _openai(server)
    if stream:
        with client.responses.stream(model="m", input="hi") as s:
            kinds = [event.type for event in s]
            response = s.get_final_response()
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
        assert "response.function_call_arguments.delta" in kinds
    else:
        response = client.responses.create(model="m", input="hi")
    assert response.output_text == REPLY.text
    [call] = [item for item in response.output if item.type == "function_call"]
    assert (call.name, call.arguments) == ("read_file", '{"path": "train.py"}')
    assert response.usage.input_tokens > 0


def test_either_auth_header_and_a_wrong_key_is_refused(server):
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    by_api_key = requests.post(server.url + "/v1/messages", json=body, headers={"x-api-key": server.api_key})
    by_bearer = requests.post(
        server.url + "/v1/messages", json=body, headers={"Authorization": f"Bearer {server.api_key}"}
    )
    assert by_api_key.status_code == by_bearer.status_code == 200
    with pytest.raises(anthropic.AuthenticationError):
        _anthropic(server, key="wrong").messages.create(**body)


def test_tool_results_are_read_back_for_scripts(server):
    """A script sees what the client sends back for its tool calls, in every protocol."""
    _anthropic(server).messages.create(
        model="m",
        max_tokens=5,
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "x", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "out-a"}]},
        ],
    )
    _openai(server).chat.completions.create(
        model="m",
        messages=[
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "x", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "out-b"},
        ],
    )
    _openai(server).responses.create(
        model="m",
        input=[
            {"type": "function_call", "call_id": "c2", "name": "x", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c2", "output": "out-c"},
        ],
    )
    assert [r.tool_results() for r in server.model_requests()] == [["out-a"], ["out-b"], ["out-c"]]


def test_script_order_asides_errors_and_the_end():
    script = Script(
        [Reply("one"), HttpError(529, "overloaded"), lambda request: Reply(f"saw {request.model}")]
    )
    with FakeModelServer(script) as server:
        client = _anthropic(server)
        tool = [{"name": "t", "description": "d", "input_schema": {"type": "object"}}]

        def ask(**extra):
            return client.messages.create(
                model="m7", max_tokens=5, messages=[{"role": "user", "content": "hi"}], **extra
            )

        assert ask(tools=tool).content[0].text == "one"
        assert ask().content[0].text == "OK."  # no tools: a side request, answered without using a turn
        with pytest.raises(anthropic.APIStatusError) as error:
            ask(tools=tool)
        assert error.value.status_code == 529
        assert ask(tools=tool).content[0].text == "saw m7"
        assert ask(tools=tool).stop_reason == "end_turn"  # the script is over: no more tool calls
        assert script.remaining < 0 and not server.unexpected()
