"""One model call for the API agent, in whichever protocol its endpoint speaks.

The agent keeps its conversation in a protocol-neutral form (`Turn`s of text, tool calls and tool
outputs); a `ModelClient` renders it for the Anthropic Messages API, the OpenAI Chat Completions API
or the OpenAI Responses API, streams the reply (text goes to a callback as it arrives, so the agent's
tmux window shows the model thinking aloud) and hands back text, tool calls and token usage.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from swarm.board.ledger import Usage
from swarm.errors import SwarmError

ANTHROPIC, OPENAI, OPENAI_COMPATIBLE = "anthropic", "openai", "openai-compatible"
PROVIDERS = (ANTHROPIC, OPENAI, OPENAI_COMPATIBLE)
CHAT, RESPONSES = "chat", "responses"


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object


@dataclass(frozen=True)
class ToolUse:
    """A tool call the model made; `arguments` is None when its JSON did not parse (`raw` keeps it)."""

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw: str


@dataclass(frozen=True)
class ToolOutcome:
    call_id: str
    output: str
    is_error: bool = False


@dataclass
class Turn:
    """One exchange: what the model said and called, then what the agent answered."""

    text: str
    calls: list[ToolUse]
    outcomes: list[ToolOutcome] = field(default_factory=list)
    nudge: str | None = None  # a plain user message after the outcomes (e.g. "keep going")


@dataclass(frozen=True)
class Completion:
    text: str
    calls: tuple[ToolUse, ...]
    usage: Usage


@dataclass(frozen=True)
class Conversation:
    system: str
    opening: str  # the first user message: the task, the board digest, the summary of older turns
    turns: list[Turn]
    tools: list[ToolSpec]


def parse_arguments(raw: str | None) -> dict[str, Any] | None:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class ModelClient:
    """Sends a conversation, returns the completion. Subclasses speak one protocol each."""

    def __init__(self, model: str, max_tokens: int, stream: bool):
        self.model = model
        self.max_tokens = max_tokens
        self.stream = stream

    provider = ""
    _errors: tuple[type[Exception], ...] = ()  # the SDK's API errors, raised as one SwarmError line

    def complete(self, conversation: Conversation, on_text: Callable[[str], None]) -> Completion:
        try:
            return self._complete(self.render(conversation), on_text)
        except self._errors as e:
            raise _sdk_error(self.provider, e) from None

    def render(self, conversation: Conversation) -> dict[str, Any]:
        raise NotImplementedError

    def _complete(self, request: dict[str, Any], on_text: Callable[[str], None]) -> Completion:
        raise NotImplementedError


def _sdk_error(provider: str, error: Exception) -> SwarmError:
    status = getattr(error, "status_code", None)
    message = getattr(error, "message", None) or str(error)
    where = f"{provider} API" + (f" error {status}" if status else "")
    return SwarmError(f"{where}: {message}")


# ---------------------------------------------------------------------------------------------------------
# Anthropic Messages


class AnthropicClient(ModelClient):
    provider = ANTHROPIC

    def __init__(self, model: str, max_tokens: int, stream: bool, api_key: str, base_url: str | None):
        super().__init__(model, max_tokens, stream)
        import anthropic

        self._errors = (anthropic.APIError,)
        self._sdk = anthropic.Anthropic(api_key=api_key, base_url=base_url, max_retries=4)

    def render(self, conversation: Conversation) -> dict[str, Any]:
        messages: list[dict[str, Any]] = [{"role": "user", "content": conversation.opening}]
        for turn in conversation.turns:
            content: list[dict[str, Any]] = [{"type": "text", "text": turn.text}] if turn.text else []
            content += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments or {}}
                for c in turn.calls
            ]
            messages.append(
                {"role": "assistant", "content": content or [{"type": "text", "text": "(silence)"}]}
            )
            answer: list[dict[str, Any]] = [
                {"type": "tool_result", "tool_use_id": o.call_id, "content": o.output, "is_error": o.is_error}
                for o in turn.outcomes
            ]
            if turn.nudge:
                answer.append({"type": "text", "text": turn.nudge})
            if answer:
                messages.append({"role": "user", "content": answer})
        # Mark the newest user block as a cache breakpoint: each request then re-reads the conversation so
        # far from the prompt cache instead of paying full price for it again.
        last = messages[-1]["content"]
        if isinstance(last, list) and last:
            last[-1] = {**last[-1], "cache_control": {"type": "ephemeral"}}
        return {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": [{"type": "text", "text": conversation.system, "cache_control": {"type": "ephemeral"}}],
            "messages": messages,
            "tools": [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in conversation.tools
            ],
        }

    def _complete(self, request: dict[str, Any], on_text: Callable[[str], None]) -> Completion:
        if self.stream:
            with self._sdk.messages.stream(**request) as stream:
                for text in stream.text_stream:
                    on_text(text)
                message = stream.get_final_message()
        else:
            message = self._sdk.messages.create(**request)
            on_text("".join(b.text for b in message.content if b.type == "text"))
        calls = tuple(
            ToolUse(b.id, b.name, b.input if isinstance(b.input, dict) else None, json.dumps(b.input))
            for b in message.content
            if b.type == "tool_use"
        )
        u = message.usage
        usage = Usage(
            u.input_tokens or 0,
            u.output_tokens or 0,
            getattr(u, "cache_read_input_tokens", 0) or 0,
            getattr(u, "cache_creation_input_tokens", 0) or 0,
        )
        text = "".join(b.text for b in message.content if b.type == "text")
        return Completion(text, calls, usage)


# ---------------------------------------------------------------------------------------------------------
# OpenAI: Chat Completions (also what OpenAI-compatible local servers speak) and Responses


class _OpenAIBase(ModelClient):
    provider = OPENAI

    def __init__(self, model: str, max_tokens: int, stream: bool, api_key: str, base_url: str | None):
        super().__init__(model, max_tokens, stream)
        import openai

        self._errors = (openai.APIError,)
        self._sdk = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=4)


class ChatCompletionsClient(_OpenAIBase):
    max_tokens_field = "max_completion_tokens"

    def render(self, conversation: Conversation) -> dict[str, Any]:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": conversation.system},
            {"role": "user", "content": conversation.opening},
        ]
        for turn in conversation.turns:
            message: dict[str, Any] = {"role": "assistant", "content": turn.text or None}
            if turn.calls:
                message["tool_calls"] = [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.raw}}
                    for c in turn.calls
                ]
            else:
                message["content"] = turn.text or "(silence)"
            messages.append(message)
            messages += [
                {"role": "tool", "tool_call_id": o.call_id, "content": o.output} for o in turn.outcomes
            ]
            if turn.nudge:
                messages.append({"role": "user", "content": turn.nudge})
        return {
            "model": self.model,
            # OpenAI's own models take max_completion_tokens (max_tokens is refused by the newer ones);
            # OpenAI-compatible servers (vLLM, llama.cpp, Ollama) know max_tokens.
            self.max_tokens_field: self.max_tokens,
            "messages": messages,
            "tools": [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                }
                for t in conversation.tools
            ],
        }

    def _complete(self, request: dict[str, Any], on_text: Callable[[str], None]) -> Completion:
        if self.stream:
            with self._sdk.chat.completions.stream(
                **request, stream_options={"include_usage": True}
            ) as stream:
                for event in stream:
                    if event.type == "content.delta":
                        on_text(event.delta)
                completion = stream.get_final_completion()
        else:
            completion = self._sdk.chat.completions.create(**request)
            on_text(completion.choices[0].message.content or "")
        message = completion.choices[0].message
        calls = tuple(
            ToolUse(c.id, c.function.name, parse_arguments(c.function.arguments), c.function.arguments or "")
            for c in message.tool_calls or []
            if c.type == "function"
        )
        u = completion.usage
        cached = getattr(getattr(u, "prompt_tokens_details", None), "cached_tokens", 0) or 0
        usage = Usage.openai(u.prompt_tokens or 0, u.completion_tokens or 0, cached) if u else Usage()
        return Completion(message.content or "", calls, usage)


class ResponsesClient(_OpenAIBase):
    def render(self, conversation: Conversation) -> dict[str, Any]:
        items: list[dict[str, Any]] = [{"role": "user", "content": conversation.opening}]
        for turn in conversation.turns:
            if turn.text or not turn.calls:
                items.append({"role": "assistant", "content": turn.text or "(silence)"})
            items += [
                {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.raw}
                for c in turn.calls
            ]
            items += [
                {"type": "function_call_output", "call_id": o.call_id, "output": o.output}
                for o in turn.outcomes
            ]
            if turn.nudge:
                items.append({"role": "user", "content": turn.nudge})
        return {
            "model": self.model,
            "instructions": conversation.system,
            "input": items,
            "max_output_tokens": self.max_tokens,
            "store": False,  # the agent resends its (bounded) context; nothing needs keeping server-side
            "tools": [
                {"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters}
                for t in conversation.tools
            ],
        }

    def _complete(self, request: dict[str, Any], on_text: Callable[[str], None]) -> Completion:
        if self.stream:
            with self._sdk.responses.stream(**request) as stream:
                for event in stream:
                    if event.type == "response.output_text.delta":
                        on_text(event.delta)
                response = stream.get_final_response()
        else:
            response = self._sdk.responses.create(**request)
            on_text(response.output_text or "")
        calls = tuple(
            ToolUse(item.call_id, item.name, parse_arguments(item.arguments), item.arguments or "")
            for item in response.output
            if item.type == "function_call"
        )
        u = response.usage
        cached = getattr(getattr(u, "input_tokens_details", None), "cached_tokens", 0) or 0
        usage = Usage.openai(u.input_tokens or 0, u.output_tokens or 0, cached) if u else Usage()
        return Completion(response.output_text or "", calls, usage)


def make_client(
    provider: str,
    model: str,
    *,
    max_tokens: int,
    stream: bool,
    api_key: str,
    base_url: str | None,
    openai_api: str,
) -> ModelClient:
    """The client for a provider; `openai_api` picks Chat Completions or Responses for the OpenAI ones."""
    if provider == ANTHROPIC:
        return AnthropicClient(model, max_tokens, stream, api_key, base_url)
    if provider in (OPENAI, OPENAI_COMPATIBLE):
        cls = ResponsesClient if openai_api == RESPONSES else ChatCompletionsClient
        client = cls(model, max_tokens, stream, api_key, base_url)
        if provider == OPENAI_COMPATIBLE and isinstance(client, ChatCompletionsClient):
            client.max_tokens_field = "max_tokens"
        return client
    raise SwarmError(f"unknown provider {provider!r} (use one of: {', '.join(PROVIDERS)})")
