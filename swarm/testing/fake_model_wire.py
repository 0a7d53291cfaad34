"""How the fake model server writes one scripted reply in each protocol: a JSON body, or the SSE events.

Three protocols: the Anthropic Messages API, the OpenAI Chat Completions API and the OpenAI Responses
API. Each encoder takes the reply (text and tool calls), the model name and the token counts, and
returns either the whole response object or the list of (event name, data) pairs a streaming client
reads. Field names and event order follow each provider's public API reference, since the real SDKs
and CLIs parse them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Event = tuple[str | None, dict[str, Any] | str]  # (SSE event name or None, data object or raw string)


@dataclass(frozen=True)
class ToolCall:
    """One tool call in a scripted reply; `input` becomes the call's JSON arguments."""

    name: str
    input: dict[str, Any] | str = field(default_factory=dict)  # a str is a freeform (custom) tool's input

    @property
    def arguments(self) -> str:
        return self.input if isinstance(self.input, str) else json.dumps(self.input)


@dataclass(frozen=True)
class Reply:
    """What the fake model answers to one request: some text, then tool calls (possibly none)."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()

    @classmethod
    def calling(cls, name: str, text: str = "", **arguments: Any) -> Reply:
        return cls(text=text, tool_calls=(ToolCall(name, arguments),))


@dataclass(frozen=True)
class Encoded:
    """One reply ready to send: ids assigned, token counts fixed."""

    reply: Reply
    model: str
    response_id: str
    call_ids: tuple[str, ...]
    input_tokens: int
    output_tokens: int


def _chunks(text: str, size: int = 12) -> Iterator[str]:
    """Split text the way a model streams it: several small deltas, so clients really accumulate."""
    for start in range(0, len(text), size):
        yield text[start : start + size]


# ---------------------------------------------------------------------------------------------------------
# Anthropic Messages


def anthropic_message(r: Encoded) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if r.reply.text:
        content.append({"type": "text", "text": r.reply.text})
    for call, call_id in zip(r.reply.tool_calls, r.call_ids, strict=True):
        content.append({"type": "tool_use", "id": call_id, "name": call.name, "input": call.input})
    return {
        "id": r.response_id,
        "type": "message",
        "role": "assistant",
        "model": r.model,
        "content": content,
        "stop_reason": "tool_use" if r.reply.tool_calls else "end_turn",
        "stop_sequence": None,
        "usage": _anthropic_usage(r.input_tokens, r.output_tokens),
    }


def _anthropic_usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def anthropic_events(r: Encoded) -> list[Event]:
    message = {**anthropic_message(r), "content": [], "stop_reason": None}
    message["usage"] = _anthropic_usage(r.input_tokens, 1)
    events: list[Event] = [("message_start", {"type": "message_start", "message": message})]
    events.append(("ping", {"type": "ping"}))
    index = 0
    if r.reply.text:
        events.append(_block_start(index, {"type": "text", "text": ""}))
        for piece in _chunks(r.reply.text):
            events.append(_block_delta(index, {"type": "text_delta", "text": piece}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    for call, call_id in zip(r.reply.tool_calls, r.call_ids, strict=True):
        events.append(
            _block_start(index, {"type": "tool_use", "id": call_id, "name": call.name, "input": {}})
        )
        for piece in _chunks(call.arguments, 40):
            events.append(_block_delta(index, {"type": "input_json_delta", "partial_json": piece}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    stop = "tool_use" if r.reply.tool_calls else "end_turn"
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": r.output_tokens},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _block_start(index: int, block: dict[str, Any]) -> Event:
    return ("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})


def _block_delta(index: int, delta: dict[str, Any]) -> Event:
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


# ---------------------------------------------------------------------------------------------------------
# OpenAI Chat Completions


def chat_completion(r: Encoded) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": r.reply.text or None}
    if r.reply.tool_calls:
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call, call_id in zip(r.reply.tool_calls, r.call_ids, strict=True)
        ]
    return {
        "id": r.response_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": r.model,
        "choices": [{"index": 0, "message": message, "finish_reason": _chat_finish(r), "logprobs": None}],
        "usage": _chat_usage(r),
    }


def _chat_finish(r: Encoded) -> str:
    return "tool_calls" if r.reply.tool_calls else "stop"


def _chat_usage(r: Encoded) -> dict[str, int]:
    return {
        "prompt_tokens": r.input_tokens,
        "completion_tokens": r.output_tokens,
        "total_tokens": r.input_tokens + r.output_tokens,
    }


def chat_events(r: Encoded, include_usage: bool) -> list[Event]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> Event:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return (
            None,
            {
                "id": r.response_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": r.model,
                "choices": [choice],
            },
        )

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in _chunks(r.reply.text)]
    for index, (call, call_id) in enumerate(zip(r.reply.tool_calls, r.call_ids, strict=True)):
        head = {"index": index, "id": call_id, "type": "function"}
        events.append(chunk({"tool_calls": [{**head, "function": {"name": call.name, "arguments": ""}}]}))
        for piece in _chunks(call.arguments, 40):
            events.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    events.append(chunk({}, _chat_finish(r)))
    if include_usage:
        last = {**events[-1][1], "choices": [], "usage": _chat_usage(r)}  # type: ignore[dict-item]
        events.append((None, last))
    events.append((None, "[DONE]"))
    return events


# ---------------------------------------------------------------------------------------------------------
# OpenAI Responses


def _response_items(r: Encoded) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if r.reply.text:
        items.append(
            {
                "id": f"msg_{r.response_id}",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": r.reply.text, "annotations": []}],
            }
        )
    for call, call_id in zip(r.reply.tool_calls, r.call_ids, strict=True):
        if isinstance(call.input, str):  # a freeform ("custom") tool such as Codex's apply_patch
            items.append(
                {
                    "id": f"ctc_{call_id}",
                    "type": "custom_tool_call",
                    "status": "completed",
                    "call_id": call_id,
                    "name": call.name,
                    "input": call.input,
                }
            )
        else:
            items.append(
                {
                    "id": f"fc_{call_id}",
                    "type": "function_call",
                    "status": "completed",
                    "call_id": call_id,
                    "name": call.name,
                    "arguments": call.arguments,
                }
            )
    return items


def response_object(r: Encoded, status: str = "completed") -> dict[str, Any]:
    done = status == "completed"
    return {
        "id": r.response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": r.model,
        "output": _response_items(r) if done else [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "error": None,
        "incomplete_details": None,
        "usage": (
            {
                "input_tokens": r.input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": r.output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": r.input_tokens + r.output_tokens,
            }
            if done
            else None
        ),
    }


# item type -> (the field its call streams, the prefix of its .delta / .done events)
_TOOL_CALL_STREAMS = {
    "function_call": ("arguments", "response.function_call_arguments"),
    "custom_tool_call": ("input", "response.custom_tool_call_input"),
}


def responses_events(r: Encoded) -> list[Event]:
    events: list[Event] = []

    def emit(kind: str, **data: Any) -> None:
        events.append((kind, {"type": kind, "sequence_number": len(events), **data}))

    emit("response.created", response=response_object(r, "in_progress"))
    emit("response.in_progress", response=response_object(r, "in_progress"))
    for index, item in enumerate(_response_items(r)):
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            text = item["content"][0]["text"]
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "content": [], "status": "in_progress"},
            )
            empty = {"type": "output_text", "text": "", "annotations": []}
            emit("response.content_part.added", **where, content_index=0, part=empty)
            for piece in _chunks(text):
                emit("response.output_text.delta", **where, content_index=0, delta=piece, logprobs=[])
            emit("response.output_text.done", **where, content_index=0, text=text, logprobs=[])
            emit("response.content_part.done", **where, content_index=0, part=item["content"][0])
        else:  # a tool call: a function's JSON arguments, or a freeform tool's input, streamed in pieces
            key, prefix = _TOOL_CALL_STREAMS[item["type"]]
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, key: "", "status": "in_progress"},
            )
            for piece in _chunks(item[key], 40):
                emit(f"{prefix}.delta", **where, delta=piece)
            done = {key: item[key], "name": item["name"]} if key == "arguments" else {key: item[key]}
            emit(f"{prefix}.done", **where, **done)
        emit("response.output_item.done", output_index=index, item=item)
    emit("response.completed", response=response_object(r))
    return events
