"""A fake OpenAI-compatible HTTP server on 127.0.0.1, for tests that use the real ``openai`` client.

    with FakeOpenAI() as fake:
        client = OpenAI(base_url=fake.base_url, api_key="test")
        fake.chat_responder = lambda body: "Hello [1]"
        fake.fail_next(1, status=429)          # the client retries, then succeeds
        fake.token_delay_s = 0.025             # streamed answers arrive at 40 pieces a second
        fake.break_next_stream(after=5)        # a stream that dies after five pieces
        release = fake.pause_next_stream(after=3)  # ...or waits there until release.set()
        client.chat.completions.create(model="m", messages=[...])
        assert len(fake.requests) == 2

Endpoints: ``POST /v1/chat/completions`` (plain and ``stream: true`` as SSE), ``POST /v1/embeddings``
(``encoding_format`` float or base64, as the client asks by default) and ``GET /v1/models``.
Every request, including the ones answered with a scripted failure, is recorded, so tests can count
the client's retries. Only the standard library is used.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import math
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_CHAT_TEXT = "This is a canned answer from the fake OpenAI server."

# What OpenAI sends for each status; tests see the same error shapes as in production.
_ERROR_KINDS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Bad request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    408: ("server_error", "timeout", "Request timed out."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def error_body(status: int, message: str | None = None, code: str | None = None) -> dict[str, Any]:
    """An OpenAI-shaped error document for ``status``."""
    kind, default_code, default_message = _ERROR_KINDS.get(status, ("api_error", None, "Error."))
    return {
        "error": {
            "message": message or default_message,
            "type": kind,
            "param": None,
            "code": code if code is not None else default_code,
        }
    }


def fake_embedding(text: str, dim: int) -> list[float]:
    """A deterministic unit vector for ``text``: same text, same vector, in every process."""
    raw = hashlib.shake_256(text.encode("utf-8")).digest(4 * dim)
    values = [v / 2**31 - 1.0 for v in struct.unpack(f"<{dim}I", raw)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


@dataclass(frozen=True)
class RecordedCall:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # the parsed JSON, or None
    status: int  # what the server answered (0 when it dropped the connection)


@dataclass
class _Script:
    """A scripted behaviour for the next ``remaining`` matching requests."""

    remaining: int
    path: str | None
    status: int = 0  # 0: no failure (delay only); -1: drop the connection
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay_s: float = 0.0
    release: threading.Event | None = None  # hold the request until this is set
    arrived: threading.Event = field(default_factory=threading.Event)  # set when a request is taken

    def matches(self, path: str) -> bool:
        return self.remaining > 0 and (self.path is None or self.path == path)


@dataclass
class _StreamScript:
    """What happens to the next ``remaining`` streamed answers after ``after`` text pieces."""

    remaining: int
    after: int
    cut: bool = False  # drop the connection there
    release: threading.Event | None = None  # or wait there until this is set


class Hold:
    """Requests held by :meth:`FakeOpenAI.hold_next`: know when one is held, then let them go."""

    def __init__(self, script: _Script) -> None:
        self._script = script

    def wait_holding(self, timeout: float = 15.0) -> None:
        """Until a request is held: whoever sent it is now waiting on the upstream (a guard, not a timing)."""
        if not self._script.arrived.wait(timeout):
            raise TimeoutError(f"no request was held within {timeout}s")

    def release(self) -> None:
        assert self._script.release is not None
        self._script.release.set()


class FakeOpenAI:
    """The server. Start it with ``with FakeOpenAI() as fake`` (or ``start()``/``close()``)."""

    def __init__(
        self,
        *,
        embedding_dim: int = 8,
        chat_responder: Callable[[dict[str, Any]], str] | None = None,
        require_auth: bool = True,
        api_key: str | None = None,
    ) -> None:
        self.embedding_dim = embedding_dim
        self.chat_responder: Callable[[dict[str, Any]], str] = chat_responder or (lambda _body: DEFAULT_CHAT_TEXT)
        self.require_auth = require_auth  # a missing "Authorization: Bearer ..." gets a 401
        self.api_key = api_key  # when set, any other key gets a 401 too
        self._lock = threading.Lock()
        self._calls: list[RecordedCall] = []
        self._failures: list[_Script] = []
        self._delays: list[_Script] = []
        self._ids = itertools.count(1)
        self.token_delay_s = 0.0  # sleep before each streamed piece: a model writing at a given rate
        self._stream_scripts: list[_StreamScript] = []
        self._stopping = threading.Event()  # wakes delayed handlers so close() never waits them out
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> FakeOpenAI:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler, fake=self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()  # stops serve_forever
        server.close_connections()  # unblocks handlers waiting on idle keep-alive sockets
        server.server_close()  # joins the handler threads
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not running; use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # ----------------------------------------------------------------- what tests read
    @property
    def calls(self) -> list[RecordedCall]:
        """Every request answered (or dropped) so far, in that order (a snapshot).

        A request is recorded when it is answered: a delayed one only after its delay.
        """
        with self._lock:
            return list(self._calls)

    @property
    def requests(self) -> list[Any]:
        """The JSON bodies of the recorded requests, in the order of ``calls`` (a snapshot)."""
        return [c.body for c in self.calls]

    def requests_to(self, path: str) -> list[Any]:
        """The JSON bodies sent to one path, e.g. ``"/v1/embeddings"``."""
        return [c.body for c in self.calls if c.path == path]

    def reset(self) -> None:
        """Forget recorded requests and pending scripts."""
        with self._lock:
            self._calls.clear()
            self._failures.clear()
            self._delays.clear()
            self._stream_scripts.clear()

    # ----------------------------------------------------------------- scripting
    def fail_next(
        self,
        n: int = 1,
        status: int = 429,
        headers: dict[str, str] | None = None,
        body: Any = None,
        *,
        path: str | None = None,
    ) -> None:
        """Answer the next ``n`` requests (to ``path``, or to any path) with an error.

        ``headers`` defaults to ``{"retry-after": "0"}``. The openai client then waits its own
        backoff (about 0.5 s); ``{"retry-after-ms": "1"}`` makes it retry almost at once.
        ``body`` is a dict sent as JSON, a str used as the error message, or None for the standard
        OpenAI error document of that status.
        """
        if body is None:
            body = error_body(status)
        elif isinstance(body, str):
            body = error_body(status, message=body)
        script = _Script(n, path, status, {"retry-after": "0"} if headers is None else dict(headers), body)
        with self._lock:
            self._failures.append(script)

    def drop_next(self, n: int = 1, *, path: str | None = None) -> None:
        """Close the connection without answering the next ``n`` requests (a connection error)."""
        with self._lock:
            self._failures.append(_Script(n, path, status=-1))

    def delay_next(self, n: int, seconds: float, *, path: str | None = None) -> None:
        """Sleep ``seconds`` before answering each of the next ``n`` requests (to trigger timeouts)."""
        with self._lock:
            self._delays.append(_Script(n, path, delay_s=seconds))

    def hold_next(self, n: int = 1, *, path: str | None = None) -> Hold:
        """Hold each of the next ``n`` requests until released (a slow upstream, without a clock)."""
        script = _Script(n, path, release=threading.Event())
        with self._lock:
            self._delays.append(script)
        return Hold(script)

    def break_next_stream(self, after: int, n: int = 1) -> None:
        """The next ``n`` streamed answers stop after ``after`` text pieces: the connection is cut
        mid-body (no ``[DONE]``, no terminating chunk), as when an upstream dies while writing."""
        with self._lock:
            self._stream_scripts.append(_StreamScript(n, after=after, cut=True))

    def pause_next_stream(self, after: int) -> threading.Event:
        """Hold the next streamed answer after ``after`` text pieces until the returned event is
        set: tests see what a client shows while the model is still writing, without a clock."""
        release = threading.Event()
        with self._lock:
            self._stream_scripts.append(_StreamScript(1, after=after, release=release))
        return release

    # ----------------------------------------------------------------- used by the handler
    def _take_stream_script(self) -> _StreamScript | None:
        with self._lock:
            for script in self._stream_scripts:
                if script.remaining > 0:
                    script.remaining -= 1
                    return script
        return None

    def _take(self, scripts: list[_Script], path: str) -> _Script | None:
        with self._lock:
            for script in scripts:
                if script.matches(path):
                    script.remaining -= 1
                    script.arrived.set()
                    return script
        return None

    def _record(self, call: RecordedCall) -> None:
        with self._lock:
            self._calls.append(call)

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)


class _Server(ThreadingHTTPServer):
    # Non-daemon handler threads, joined by server_close(): a closed fake leaves no thread behind.
    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], *, fake: FakeOpenAI) -> None:
        self.fake = fake
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, conn: socket.socket, is_open: bool) -> None:
        with self._open_lock:
            (self._open.add if is_open else self._open.discard)(conn)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up before a delayed reply is expected, not a failure.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):  # already closed by the client
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the openai client's connection pool expects
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    # ----------------------------------------------------------------- dispatch
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        fake = self.server.fake
        path = self.path.split("?", 1)[0]
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
            self._reply_json(400, error_body(400, "Request body is not valid JSON."), method, path, headers, raw)
            return

        delay = fake._take(fake._delays, path)
        if delay is not None and delay.release is not None:
            while not delay.release.wait(0.05):
                if fake._stopping.is_set():
                    return  # closing: give up quietly
        elif delay is not None and fake._stopping.wait(delay.delay_s):
            return  # closing: give up quietly

        failure = fake._take(fake._failures, path)
        if failure is not None:
            if failure.status == -1:
                fake._record(RecordedCall(method, path, headers, body, 0))
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._reply_json(failure.status, failure.body, method, path, headers, body, failure.headers)
            return

        auth_error = self._auth_error(headers)
        if auth_error is not None:
            self._reply_json(401, error_body(401, auth_error), method, path, headers, body)
            return

        if method == "POST" and path == "/v1/chat/completions":
            self._chat(headers, body)
        elif method == "POST" and path == "/v1/embeddings":
            self._embeddings(headers, body)
        elif method == "GET" and path == "/v1/models":
            names = ("fake-chat", "fake-embed")
            models = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in names]
            self._reply_json(200, {"object": "list", "data": models}, method, path, headers, body)
        else:
            unknown = error_body(404, f"Unknown path {method} {path}", "unknown_url")
            self._reply_json(404, unknown, method, path, headers, body)

    def _auth_error(self, headers: dict[str, str]) -> str | None:
        fake = self.server.fake
        if not fake.require_auth:
            return None
        value = headers.get("authorization", "")
        if not value.startswith("Bearer ") or not value[7:].strip():
            return "You didn't provide an API key."
        if fake.api_key is not None and value[7:] != fake.api_key:
            return "Incorrect API key provided."
        return None

    # ----------------------------------------------------------------- endpoints
    def _chat(self, headers: dict[str, str], body: Any) -> None:
        fake = self.server.fake
        path = "/v1/chat/completions"
        if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("messages"), list):
            self._reply_json(400, error_body(400, "'model' and 'messages' are required."), "POST", path, headers, body)
            return
        try:
            text = fake.chat_responder(body)
        except Exception as exc:  # a broken responder should fail the test visibly, as a 500
            self._reply_json(500, error_body(500, f"chat_responder raised {exc!r}"), "POST", path, headers, body)
            return
        completion_id = f"chatcmpl-fake-{fake._next_id()}"
        created = int(time.time())
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"] if isinstance(m, dict))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(text.split()),
            "total_tokens": prompt_tokens + len(text.split()),
        }
        if body.get("stream"):
            fake._record(RecordedCall("POST", path, headers, body, 200))
            self._stream_chat(completion_id, created, body, text, usage)
            return
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
            for i in range(int(body.get("n") or 1))
        ]
        reply = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": body["model"],
            "choices": choices,
            "usage": usage,
            "system_fingerprint": None,
        }
        self._reply_json(200, reply, "POST", path, headers, body)

    def _stream_chat(
        self, completion_id: str, created: int, body: dict[str, Any], text: str, usage: dict[str, int]
    ) -> None:
        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }

        # Word-sized pieces that concatenate back to exactly ``text``.
        pieces = list(_split_keep_spaces(text))
        events = [chunk({"role": "assistant", "content": ""}, None)]
        events += [chunk({"content": p}, None) for p in pieces]
        events.append(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**chunk({}, None), "choices": [], "usage": usage})

        fake = self.server.fake
        script = fake._take_stream_script()
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self._write_chunk(f"data: {json.dumps(events[0])}\n\n".encode())
        for sent, event in enumerate(events[1:]):
            if script is not None and sent == script.after and sent < len(pieces):
                if script.cut:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                while script.release is not None and not script.release.wait(0.05):
                    if fake._stopping.is_set():
                        return
            if fake.token_delay_s and sent < len(pieces) and fake._stopping.wait(fake.token_delay_s):
                return
            self._write_chunk(f"data: {json.dumps(event)}\n\n".encode())
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")  # the terminating zero-length chunk

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _embeddings(self, headers: dict[str, str], body: Any) -> None:
        fake = self.server.fake
        path = "/v1/embeddings"
        raw_input = body.get("input") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not body.get("model") or raw_input is None:
            self._reply_json(400, error_body(400, "'model' and 'input' are required."), "POST", path, headers, body)
            return
        inputs = _embedding_inputs(raw_input)
        # The real API rejects empty strings and empty lists; mirror that so clients must avoid them.
        if not inputs or any(isinstance(i, str) and i == "" for i in inputs):
            self._reply_json(400, error_body(400, "'$.input' is invalid."), "POST", path, headers, body)
            return
        dim = int(body.get("dimensions") or fake.embedding_dim)
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, item in enumerate(inputs):
            vector = fake_embedding(item if isinstance(item, str) else json.dumps(item), dim)
            encoded: Any = base64.b64encode(struct.pack(f"<{dim}f", *vector)).decode() if as_base64 else vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(len(i.split()) if isinstance(i, str) else len(i) for i in inputs)
        reply = {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        self._reply_json(200, reply, "POST", path, headers, body)

    # ----------------------------------------------------------------- replies
    def _reply_json(
        self,
        status: int,
        payload: Any,
        method: str,
        path: str,
        headers: dict[str, str],
        body: Any,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        recorded_body = None if isinstance(body, bytes) else body  # unparsable bytes are not JSON
        self.server.fake._record(RecordedCall(method, path, headers, recorded_body, status))
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-request-id", f"req_fake_{self.server.fake._next_id()}")
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _embedding_inputs(raw: Any) -> list[Any]:
    """Normalise ``input``: a string, a list of strings, a token list, or a list of token lists."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw):
        return [raw]  # one input given as tokens
    return list(raw) if isinstance(raw, list) else [raw]


def _split_keep_spaces(text: str) -> Iterator[str]:
    start = 0
    for i, ch in enumerate(text):
        if ch == " " and i > start:
            yield text[start:i]
            start = i
    if start < len(text):
        yield text[start:]


def fake_openai_server() -> Iterator[FakeOpenAI]:
    """Generator for a pytest fixture: ``fake = pytest.fixture(fake_openai_server)``."""
    with FakeOpenAI() as fake:
        yield fake
