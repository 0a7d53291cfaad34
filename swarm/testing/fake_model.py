"""A scriptable fake model server on loopback, for offline tests and benchmarks of every agent kind.

It speaks the three protocols real agents use (Anthropic Messages, OpenAI Chat Completions, OpenAI
Responses), each with and without streaming, and accepts either auth header (`x-api-key` or
`Authorization: Bearer`). What it answers comes from a `Script`: the replies to the agent's turns in
order (a reply may be computed from the request, e.g. from the tool result it carries), and a short
fixed answer to side requests (a CLI's title or quota probes). Every request is kept for assertions.

    script = Script([Reply.calling("run", command="git status"), Reply("done")])
    with FakeModelServer(script) as server:
        client = anthropic.Anthropic(base_url=server.url, api_key=server.api_key)

It lives in the package (not under tests/) so that `bench/` and a user trying the swarm without an
API key can use it too. It binds 127.0.0.1 only and needs nothing beyond the standard library.
"""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from pathlib import Path
from typing import Any

from swarm.testing import fake_model_wire as wire
from swarm.testing.fake_model_wire import Reply, ToolCall

__all__ = ["FakeModelServer", "HttpError", "ModelRequest", "Reply", "Script", "ToolCall"]

DEFAULT_API_KEY = "fake-model-key"
ANTHROPIC, CHAT, RESPONSES = "anthropic", "chat", "responses"
_ROUTES = {"/messages": ANTHROPIC, "/chat/completions": CHAT, "/responses": RESPONSES}


@dataclass(frozen=True)
class HttpError:
    """A scripted failure: the server answers this status with the protocol's error body."""

    status: int
    message: str = "scripted error"


@dataclass
class ModelRequest:
    """One request as the server saw it, with protocol-independent views for scripts and assertions."""

    protocol: str | None  # anthropic | chat | responses; None for any other path
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.body.get("model") or "fake-model")

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    def tool_results(self) -> list[str]:
        """The outputs of the previous reply's tool calls, as this request hands them back (oldest first)."""
        if self.protocol == ANTHROPIC:
            messages = self.body.get("messages") or []
            last = messages[-1] if messages else {}
            if last.get("role") != "user" or not isinstance(last.get("content"), list):
                return []
            return [_text_of(b.get("content")) for b in last["content"] if b.get("type") == "tool_result"]
        if self.protocol == CHAT:
            results = []
            for message in reversed(self.body.get("messages") or []):
                if message.get("role") != "tool":
                    break
                results.append(_text_of(message.get("content")))
            return results[::-1]
        if self.protocol == RESPONSES:
            items = self.body.get("input")
            results = []
            for item in reversed(items if isinstance(items, list) else []):
                if item.get("type") not in ("function_call_output", "custom_tool_call_output"):
                    break
                results.append(_text_of(item.get("output")))
            return results[::-1]
        return []

    def text(self) -> str:
        """The whole body as text, for `in` checks in tests."""
        return json.dumps(self.body, ensure_ascii=False)


def _text_of(content: Any) -> str:
    """Tool-result content is a string or a list of typed parts depending on protocol and client."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_text_of(part.get("text", part.get("output", ""))) for part in content)
    return json.dumps(content)


ASIDE = Reply("OK.")
DONE = Reply("Done: the script is over.")
Turn = Reply | HttpError | Callable[[ModelRequest], "Reply | HttpError"]


def has_tools(request: ModelRequest) -> bool:
    return bool(request.body.get("tools"))


class Script:
    """The replies of a scripted conversation.

    `turns` answer the agent's turns in order: by default a turn is a request that offers tools (an
    agent's loop always does; CLIs' side requests such as titles or quota probes do not). Side
    requests get `aside`; turns after the script ran out get `done`, a reply without tool calls, so a
    CLI ends its session.
    """

    def __init__(
        self,
        turns: Sequence[Turn],
        *,
        aside: Reply = ASIDE,
        done: Reply = DONE,
        is_turn: Callable[[ModelRequest], bool] = has_tools,
    ):
        self._turns = list(turns)
        self._next = 0
        self._lock = threading.Lock()
        self.aside = aside
        self.done = done
        self.is_turn = is_turn

    @property
    def remaining(self) -> int:
        return len(self._turns) - self._next

    def reply(self, request: ModelRequest) -> Reply | HttpError:
        if not self.is_turn(request):
            return self.aside
        with self._lock:
            turn = self._turns[self._next] if self._next < len(self._turns) else self.done
            self._next += 1
        return turn(request) if callable(turn) else turn


class FakeModelServer:
    """The HTTP server: `start()` binds 127.0.0.1 on a free port and serves from a thread; `close()` stops it."""

    def __init__(self, script: Script, api_key: str = DEFAULT_API_KEY):
        self.script = script
        self.api_key = api_key
        self.requests: list[ModelRequest] = []
        self.errors: list[str] = []  # exceptions raised by the script's turns
        self._ids = count(1)
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> FakeModelServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        # A short poll interval: shutdown() waits for it, and tests start and stop many servers.
        httpd = self._httpd
        self._thread = threading.Thread(
            target=lambda: httpd.serve_forever(poll_interval=0.05), name="fake-model", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> FakeModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The base URL without a path: Anthropic clients take it as is, OpenAI clients want `url + "/v1"`."""
        assert self._httpd, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- what was asked -------------------------------------------------------------------------------------

    def model_requests(self, protocol: str | None = None) -> list[ModelRequest]:
        with self._lock:
            return [r for r in self.requests if r.protocol and (protocol is None or r.protocol == protocol)]

    def unexpected(self) -> list[ModelRequest]:
        """Requests to paths the server does not serve (a CLI phoning somewhere it should not)."""
        with self._lock:
            return [r for r in self.requests if r.protocol is None and r.path not in _QUIET_PATHS]

    def _record(self, request: ModelRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _encode(self, request: ModelRequest, reply: Reply) -> wire.Encoded:
        n = next(self._ids)
        prefix = "toolu" if request.protocol == ANTHROPIC else "call"
        id_prefix = {ANTHROPIC: "msg", CHAT: "chatcmpl", RESPONSES: "resp"}[request.protocol or CHAT]
        spoken = reply.text + "".join(c.name + c.arguments for c in reply.tool_calls)
        return wire.Encoded(
            reply=reply,
            model=request.model,
            response_id=f"{id_prefix}_fake{n:06d}",
            call_ids=tuple(f"{prefix}_fake{n:06d}_{i}" for i in range(len(reply.tool_calls))),
            # Token counts are a fixed function of the text (about 4 characters a token), so a scripted
            # run's usage is reproducible and grows with the context the way a real model's does.
            input_tokens=max(1, len(request.text()) // 4),
            output_tokens=max(1, len(spoken) // 4),
        )


# Paths of the APIs that are not model turns (probes, model lists, Claude Code's token counting): answered,
# and not counted as unexpected.
_QUIET_PATHS = {"/", "/v1/models", "/models", "/v1/messages/count_tokens"}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeModelServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # requests are kept in `fake.requests`; stderr stays clean for the test output

    # -- dispatch -------------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = self._path()
        request = ModelRequest(None, "GET", path, self._headers(), {})
        self.fake._record(request)
        if path in ("/v1/models", "/models"):
            model = {"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}
            anthropic_model = {
                "type": "model",
                "id": "fake-model",
                "display_name": "Fake",
                "created_at": "2025-01-01T00:00:00Z",
            }
            if "anthropic-version" in request.headers:
                body = {
                    "data": [anthropic_model],
                    "has_more": False,
                    "first_id": "fake-model",
                    "last_id": "fake-model",
                }
            else:
                body = {"object": "list", "data": [model]}
            self._send_json(200, body)
        elif path == "/":
            self._send_json(200, {"status": "ok"})
        else:
            self._send_json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})

    def do_CONNECT(self) -> None:
        # Tests set HTTPS_PROXY to this server, so a client reaching for any other host lands here: it is
        # recorded (see `unexpected()`) and refused at once instead of hanging on a network that is absent.
        self.fake._record(ModelRequest(None, "CONNECT", self.path, self._headers(), {}))
        self._send_json(403, {"error": {"message": "the fake model server is no proxy", "type": "forbidden"}})
        self.close_connection = True

    def do_HEAD(self) -> None:
        self.fake._record(ModelRequest(None, "HEAD", self._path(), self._headers(), {}))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        path = self._path()
        headers = self._headers()
        try:
            body = json.loads(self._read_body(headers) or b"{}")
        except (ValueError, OSError) as e:
            self.fake._record(ModelRequest(None, "POST", path, headers, {}))
            self._send_json(
                400, {"error": {"message": f"bad request body: {e}", "type": "invalid_request_error"}}
            )
            return
        route = path.removeprefix("/v1")
        protocol = _ROUTES.get(route)
        if route == "/messages/count_tokens":
            self.fake._record(ModelRequest(None, "POST", path, headers, body))
            self._send_json(200, {"input_tokens": max(1, len(json.dumps(body)) // 4)})
            return
        request = ModelRequest(protocol, "POST", path, headers, body if isinstance(body, dict) else {})
        self.fake._record(request)
        if protocol is None:
            self._send_json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})
            return
        if not self._authorised(headers):
            self._send_error(protocol, HttpError(401, "invalid api key"), kind="authentication_error")
            return
        try:
            reply = self.fake.script.reply(request)
        except Exception as e:  # a bug in a test's script: answer it, and keep it for the test to see
            self.fake.errors.append(f"{type(e).__name__}: {e}")
            reply = HttpError(500, f"the script failed: {type(e).__name__}: {e}")
        if isinstance(reply, HttpError):
            self._send_error(protocol, reply)
            return
        encoded = self.fake._encode(request, reply)
        if protocol == ANTHROPIC:
            self._answer(
                request, lambda: wire.anthropic_message(encoded), lambda: wire.anthropic_events(encoded)
            )
        elif protocol == CHAT:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._answer(
                request,
                lambda: wire.chat_completion(encoded),
                lambda: wire.chat_events(encoded, include_usage),
            )
        else:
            self._answer(
                request, lambda: wire.response_object(encoded), lambda: wire.responses_events(encoded)
            )

    # -- pieces ---------------------------------------------------------------------------------------------

    def _path(self) -> str:
        return self.path.split("?", 1)[0]

    def _headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
        else:
            data = self.rfile.read(int(headers.get("content-length") or 0))
        encoding = headers.get("content-encoding", "").lower()
        if encoding == "gzip":
            return gzip.decompress(data)
        if encoding == "deflate":
            return zlib.decompress(data)
        if encoding == "zstd":
            import zstandard  # only some clients compress requests; zstandard is pulled in by httpx2

            return zstandard.ZstdDecompressor().decompressobj().decompress(data)
        return data

    def _authorised(self, headers: dict[str, str]) -> bool:
        bearer = headers.get("authorization", "")
        given = headers.get("x-api-key") or (bearer[7:] if bearer.lower().startswith("bearer ") else "")
        return given == self.fake.api_key

    def _answer(self, request: ModelRequest, whole: Callable[[], dict], events: Callable[[], list]) -> None:
        if request.stream:
            self._send_events(events())
        else:
            self._send_json(200, whole())

    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_events(self, events: list[wire.Event]) -> None:
        # No Content-Length on a stream: the connection closes after the last event.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for name, data in events:
            text = data if isinstance(data, str) else json.dumps(data)
            frame = (f"event: {name}\n" if name else "") + f"data: {text}\n\n"
            self.wfile.write(frame.encode())
            self.wfile.flush()

    def _send_error(self, protocol: str, error: HttpError, kind: str = "api_error") -> None:
        if protocol == ANTHROPIC:
            body = {"type": "error", "error": {"type": kind, "message": error.message}}
        else:
            body = {"error": {"message": error.message, "type": kind, "code": str(error.status)}}
        self._send_json(error.status, body)


# ---------------------------------------------------------------------------------------------------------
# Pointing the real agent CLIs at a fake server, with every other network use switched off


def network_trap(server: FakeModelServer) -> dict[str, str]:
    """Proxy variables that send any request to another host to this server, which records and refuses
    it (`unexpected()`): a test then fails on a stray call instead of hanging on the absent network."""
    return {
        "HTTPS_PROXY": server.url,
        "HTTP_PROXY": server.url,
        "https_proxy": server.url,
        "http_proxy": server.url,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


def claude_code_env(server: FakeModelServer, config_dir: Path) -> dict[str, str]:
    """Environment for Claude Code: this server as its API, a private config directory, and no
    auto-update, telemetry, error reporting or other non-essential traffic."""
    return {
        "ANTHROPIC_BASE_URL": server.url,
        "ANTHROPIC_API_KEY": server.api_key,
        "CLAUDE_CONFIG_DIR": str(config_dir),
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        **network_trap(server),
    }


CODEX_KEY_VARIABLE = "FAKE_MODEL_API_KEY"


def codex_env(server: FakeModelServer, codex_home: Path, model: str = "fake-model") -> dict[str, str]:
    """Environment for the Codex CLI: a private CODEX_HOME whose config.toml makes this server its model
    provider (Responses API) and turns off analytics, feedback, OpenTelemetry export, update checks and
    the features that fetch from the network (plugin sync, apps, web search)."""
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(
        f"""model = "{model}"
model_provider = "fake"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false
web_search = "disabled"

[analytics]
enabled = false

[feedback]
enabled = false

[otel]
exporter = "none"
metrics_exporter = "none"
trace_exporter = "none"

[features]
plugins = false
remote_plugin = false
apps = false
in_app_updates = false

[model_providers.fake]
name = "fake model server"
base_url = "{server.url}/v1"
env_key = "{CODEX_KEY_VARIABLE}"
wire_api = "responses"
"""
    )
    return {"CODEX_HOME": str(codex_home), CODEX_KEY_VARIABLE: server.api_key, **network_trap(server)}
