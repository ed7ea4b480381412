"""A fake Slack Web API for tests, served on 127.0.0.1 by a threaded stdlib HTTP server.

Usage::

    with FakeSlack() as slack:
        client = WebClient(token=slack.token, base_url=slack.api_url)
        client.chat_postMessage(channel="C1", text="hi")
        slack.wait_for("chat.postMessage")
        assert slack.posted_messages()[0]["text"] == "hi"

It speaks the wire format of the real ``slack_sdk.WebClient``:

* every call is a ``POST /api/<method>`` (WebClient ignores ``http_verb``); GET with a query
  string is accepted too;
* bodies are ``application/x-www-form-urlencoded`` (e.g. ``auth.test``, ``reactions.add``,
  ``conversations.replies``, ``users.info``, ``oauth.v2.access``), ``application/json``
  (``chat.postMessage``, ``chat.update``, ``chat.postEphemeral``) or ``multipart/form-data``
  (file uploads); JSON-valued fields (``blocks``, ``attachments``, ``metadata``) sent as JSON
  strings in form posts are decoded;
* the token comes from ``Authorization: Bearer ...`` (or a ``token`` field); ``oauth.v2.access``
  uses HTTP Basic auth (client_id:client_secret) instead.

Responses carry ``Content-Type: application/json; charset=utf-8``. Scripted failures
(``fail_next``) reproduce Slack's 429 shape (``Retry-After`` header, ``{"ok": false,
"error": "ratelimited"}``), which ``RateLimitErrorRetryHandler`` understands.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP as HTTP_POLICY
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, quote, unquote, urlsplit

__all__ = ["Call", "FakeSlack", "Workspace", "WaitTimeout"]

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
RESPONSE_URL_METHOD = "response_url"
# Fields that WebClient (or a hand-written form post) may send as a JSON string.
_JSON_FIELDS = ("blocks", "attachments", "metadata", "chunks")
_TS_BASE_US = 1_700_000_000 * 1_000_000


class WaitTimeout(AssertionError):
    """Raised by :meth:`FakeSlack.wait_for` when the expected calls did not arrive in time."""


@dataclass
class Call:
    """One request received by the fake (recorded even when it was answered with an error)."""

    method: str  # e.g. "chat.postMessage", or "response_url" for respond() webhook posts
    params: dict  # query + body, JSON fields decoded; never contains "token"
    token: str | None  # bearer token (or Basic "client_id:client_secret" for oauth.v2.access)
    status: int = 200  # HTTP status answered
    response: Any = None  # JSON body answered (a str for response_url posts)
    content_type: str = ""  # request Content-Type as sent
    headers: dict = field(default_factory=dict)  # request headers
    url_id: str | None = None  # the <id> of POST /response_url/<id>

    @property
    def ok(self) -> bool:
        if self.method == RESPONSE_URL_METHOD:
            return self.status == 200
        return self.status == 200 and isinstance(self.response, dict) and bool(self.response.get("ok"))


@dataclass
class Workspace:
    """A fake workspace reachable with one bot token."""

    token: str
    team_id: str
    bot_user_id: str
    bot_id: str
    team_name: str = "Test Team"
    team_domain: str = "test-team"
    bot_name: str = "docrag"
    app_id: str = "A1"
    enterprise_id: str | None = None


@dataclass
class _Failure:
    status: int
    error: str
    retry_after: int | None
    token: str | None


class FakeSlack:
    """Threaded fake of the Slack Web API on 127.0.0.1 (ephemeral port); a context manager.

    ``FakeSlack()`` starts with one workspace (``slack.token``, ``slack.team_id``,
    ``slack.bot_user_id``, ``slack.bot_id``); add more with :meth:`add_workspace`.
    """

    def __init__(
        self,
        *,
        token: str = "xoxb-test-token",
        team_id: str = "T0000001",
        bot_user_id: str = "U0BOT0001",
        bot_id: str = "B0BOT0001",
        team_name: str = "Test Team",
        app_id: str = "A1",
        host: str = "127.0.0.1",
    ) -> None:
        self._host = host
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ts_seq = 0
        self._next_id = 0
        self.calls: list[Call] = []  # append-only; read under the lock or via helpers
        self._workspaces: dict[str, Workspace] = {}
        self._failures: dict[str, list[_Failure]] = {}
        self._messages: dict[str, list[dict]] = {}  # channel -> messages in post order
        self._ephemeral: list[dict] = []
        self._streaming: dict[tuple[str, str], str] = {}  # (channel, ts) -> streaming, stopped, expired, stopped_by_user
        self._reactions: dict[tuple[str, str], list[dict]] = {}  # (channel, ts) -> [{name, users}]
        self._channels: dict[str, dict] = {}
        self._users: dict[str, dict] = {}
        self._oauth_codes: dict[str, dict] = {}
        self._oauth_client: tuple[str, str] | None = None
        self.default = self.add_workspace(token, team_id, bot_user_id, bot_id, team_name=team_name, app_id=app_id)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "FakeSlack":
        if self._server is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer((self._host, 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="FakeSlack", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> "FakeSlack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeSlack is not running; use it as a context manager or call start()")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}/"

    @property
    def api_url(self) -> str:
        """Pass as ``WebClient(base_url=...)``: ``http://127.0.0.1:PORT/api/``."""
        return f"{self.base_url}api/"

    def response_url(self, name: str) -> str:
        """A ``response_url`` whose POSTs (e.g. Bolt's ``respond()``) are recorded under ``name``."""
        return f"{self.base_url}response_url/{quote(name, safe='')}"

    # default workspace shortcuts
    @property
    def token(self) -> str:
        return self.default.token

    @property
    def team_id(self) -> str:
        return self.default.team_id

    @property
    def bot_user_id(self) -> str:
        return self.default.bot_user_id

    @property
    def bot_id(self) -> str:
        return self.default.bot_id

    # ------------------------------------------------------------------ configuration

    def add_workspace(
        self,
        token: str,
        team_id: str,
        bot_user_id: str,
        bot_id: str,
        *,
        team_name: str | None = None,
        team_domain: str | None = None,
        bot_name: str = "docrag",
        app_id: str = "A1",
        enterprise_id: str | None = None,
    ) -> Workspace:
        """Make ``token`` valid; ``auth.test`` with it answers for this team/bot."""
        ws = Workspace(
            token=token,
            team_id=team_id,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            team_name=team_name or f"Team {team_id}",
            team_domain=team_domain or team_id.lower(),
            bot_name=bot_name,
            app_id=app_id,
            enterprise_id=enterprise_id,
        )
        with self._lock:
            self._workspaces[token] = ws
        return ws

    def revoke_token(self, token: str) -> None:
        """Make ``token`` invalid (later calls answer ``invalid_auth``)."""
        with self._lock:
            self._workspaces.pop(token, None)

    def workspace(self, token: str) -> Workspace | None:
        with self._lock:
            return self._workspaces.get(token)

    def add_channel(
        self,
        channel_id: str,
        *,
        name: str | None = None,
        is_private: bool = False,
        is_im: bool = False,
        is_member: bool = True,
        **extra: Any,
    ) -> dict:
        """Configure what ``conversations.info`` returns for ``channel_id``."""
        ch = _channel_object(channel_id, name=name, is_private=is_private, is_im=is_im, is_member=is_member)
        ch.update(extra)
        with self._lock:
            self._channels[channel_id] = ch
        return ch

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        is_bot: bool = False,
        team_id: str | None = None,
        tz: str = "Europe/London",
        **extra: Any,
    ) -> dict:
        """Configure what ``users.info`` returns for ``user_id``."""
        u = _user_object(user_id, name=name, real_name=real_name, is_bot=is_bot, team_id=team_id or self.team_id, tz=tz)
        u.update(extra)
        with self._lock:
            self._users[user_id] = u
        return u

    def add_message(
        self,
        channel: str,
        text: str,
        *,
        user: str = "U0USER0001",
        ts: str | None = None,
        thread_ts: str | None = None,
        bot_id: str | None = None,
        blocks: list | None = None,
        **extra: Any,
    ) -> str:
        """Seed a message (e.g. the user's question) so ``conversations.replies`` can return it.

        Returns its ``ts`` (generated from the same increasing counter when not given).
        """
        with self._lock:
            ts = ts or self._new_ts()
            msg: dict[str, Any] = {"type": "message", "user": user, "text": text, "ts": ts}
            if thread_ts:
                msg["thread_ts"] = thread_ts
            if bot_id:
                msg["bot_id"] = bot_id
            if blocks is not None:
                msg["blocks"] = blocks
            msg.update(extra)
            self._messages.setdefault(channel, []).append(msg)
            return ts

    def add_oauth_code(
        self,
        code: str,
        *,
        token: str,
        team_id: str,
        bot_user_id: str,
        bot_id: str,
        team_name: str | None = None,
        scope: str = "app_mentions:read,chat:write,commands,channels:history,im:history,reactions:write",
        app_id: str = "A1",
        installer_user_id: str = "U0INSTALL1",
        enterprise_id: str | None = None,
    ) -> Workspace:
        """Make ``oauth.v2.access(code=code)`` succeed, installing a workspace reachable with ``token``.

        The workspace is registered immediately (so ``auth.test(token=...)``, which Bolt's
        OAuthFlow calls right after ``oauth.v2.access``, answers for it).
        """
        ws = self.add_workspace(
            token, team_id, bot_user_id, bot_id, team_name=team_name, app_id=app_id, enterprise_id=enterprise_id
        )
        with self._lock:
            self._oauth_codes[code] = {"workspace": ws, "scope": scope, "installer_user_id": installer_user_id}
        return ws

    def set_oauth_client(self, client_id: str, client_secret: str) -> None:
        """Require these credentials (HTTP Basic or form fields) on ``oauth.v2.access``."""
        with self._lock:
            self._oauth_client = (client_id, client_secret)

    def fail_next(
        self,
        method: str,
        n: int = 1,
        status: int = 429,
        retry_after: int | None = 1,
        *,
        error: str | None = None,
        token: str | None = None,
    ) -> None:
        """Answer the next ``n`` calls to ``method`` with a failure instead of handling them.

        * ``status=429``: Slack's rate limit shape, ``Retry-After: <retry_after>`` header (whole
          seconds, as slack_sdk parses it with ``int()``; 0 is allowed) and body
          ``{"ok": false, "error": "ratelimited"}``.
        * ``status=200, error="channel_not_found"``: an ordinary API error (``ok: false``).
        * any other status (e.g. 500/503): ``{"ok": false, "error": error or "internal_error"}``.

        ``token`` restricts the failure to calls made with that token. Failed calls are recorded
        in ``calls`` like any other (``Call.ok`` is False). ``method`` may be ``"response_url"``.
        """
        if error is None:
            error = "ratelimited" if status == 429 else "internal_error"
        with self._lock:
            q = self._failures.setdefault(method, [])
            for _ in range(n):
                q.append(_Failure(status=status, error=error, retry_after=retry_after if status == 429 else None, token=token))

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    # ------------------------------------------------------------------ inspection

    def calls_to(self, method: str, *, ok: bool | None = None) -> list[Call]:
        """Calls to ``method`` in arrival order; ``ok=True``/``False`` keeps only successes/failures."""
        with self._lock:
            return [c for c in self.calls if c.method == method and (ok is None or c.ok == ok)]

    def last_call(self, method: str) -> Call:
        calls = self.calls_to(method)
        if not calls:
            raise AssertionError(f"no call to {method}; got {self.methods_called()}")
        return calls[-1]

    def methods_called(self) -> list[str]:
        with self._lock:
            return [c.method for c in self.calls]

    def clear_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5,
        *,
        where: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Block until at least ``count`` calls to ``method`` (matching ``where``) have been received.

        Counts failed attempts too (filter with ``where=lambda c: c.ok``). Calls are recorded
        after the fake's state is updated and before the HTTP response is written. Returns the
        matching calls; raises :class:`WaitTimeout` (an AssertionError) otherwise.
        """

        def matching() -> list[Call]:
            return [c for c in self.calls if c.method == method and (where is None or where(c))]

        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = matching()
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeout(
                        f"waited {timeout}s for {count} call(s) to {method}, got {len(found)}; "
                        f"calls so far: {[c.method for c in self.calls]}"
                    )
                self._cond.wait(remaining)

    def posted_messages(self, channel: str | None = None) -> list[dict]:
        """Params of successful ``chat.postMessage`` calls, in order (``text``, ``blocks``, ``thread_ts``...)."""
        return [
            c.params
            for c in self.calls_to("chat.postMessage", ok=True)
            if channel is None or c.params.get("channel") == channel
        ]

    def updated_messages(self, channel: str | None = None) -> list[dict]:
        """Params of successful ``chat.update`` calls, in order."""
        return [
            c.params for c in self.calls_to("chat.update", ok=True) if channel is None or c.params.get("channel") == channel
        ]

    def ephemeral_messages(self) -> list[dict]:
        """Params of successful ``chat.postEphemeral`` calls, in order."""
        return [c.params for c in self.calls_to("chat.postEphemeral", ok=True)]

    def responses(self, name: str | None = None) -> list[dict]:
        """JSON bodies posted to ``response_url(name)`` (all response URLs when ``name`` is None)."""
        return [
            c.params
            for c in self.calls_to(RESPONSE_URL_METHOD)
            if c.status == 200 and (name is None or c.url_id == name)
        ]

    def messages(self, channel: str) -> list[dict]:
        """Current state of a channel's stored messages (posted or seeded; updates applied, deletes removed)."""
        with self._lock:
            return copy.deepcopy(self._messages.get(channel, []))

    def message(self, channel: str, ts: str) -> dict | None:
        with self._lock:
            m = self._find_message(channel, ts)
            return copy.deepcopy(m) if m else None

    def thread(self, channel: str, thread_ts: str) -> list[dict]:
        """Parent and replies of a thread as stored, in ts order."""
        with self._lock:
            return copy.deepcopy(self._thread_messages(channel, thread_ts))

    def reactions(self, channel: str, ts: str) -> list[str]:
        """Names of reactions currently on (channel, ts)."""
        with self._lock:
            return [r["name"] for r in self._reactions.get((channel, ts), [])]

    # ------------------------------------------------------------------ internals

    def _new_ts(self) -> str:
        self._ts_seq += 1
        total = _TS_BASE_US + 100 * self._ts_seq
        return f"{total // 1_000_000}.{total % 1_000_000:06d}"

    def _new_id(self, prefix: str) -> str:
        self._next_id += 1
        return f"{prefix}{self._next_id:08d}"

    def _find_message(self, channel: str, ts: str) -> dict | None:
        for m in self._messages.get(channel, []):
            if m.get("ts") == ts:
                return m
        return None

    def _thread_messages(self, channel: str, thread_ts: str) -> list[dict]:
        msgs = [
            m
            for m in self._messages.get(channel, [])
            if m.get("ts") == thread_ts or m.get("thread_ts") == thread_ts
        ]
        return sorted(msgs, key=lambda m: _ts_key(m["ts"]))

    def _record(self, call: Call) -> None:
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()

    def _pop_failure(self, method: str, token: str | None) -> _Failure | None:
        with self._lock:
            q = self._failures.get(method)
            if not q:
                return None
            for i, f in enumerate(q):
                if f.token is None or f.token == token:
                    return q.pop(i)
            return None

    # --------------------------------------------------- request dispatch (server threads)

    def _handle_api(self, method: str, params: dict, token: str | None, basic: tuple[str, str] | None) -> tuple[int, dict, dict]:
        """Returns (status, body, extra headers)."""
        if method not in _METHODS:
            return 200, {"ok": False, "error": "unknown_method", "req_method": method}, {}
        ws: Workspace | None = None
        if method != "oauth.v2.access":
            if not token:
                return 200, {"ok": False, "error": "not_authed"}, {}
            with self._lock:
                ws = self._workspaces.get(token)
            if ws is None:
                return 200, {"ok": False, "error": "invalid_auth"}, {}
        failure = self._pop_failure(method, token)
        if failure is not None:
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            return failure.status, {"ok": False, "error": failure.error}, headers
        with self._lock:
            if method == "oauth.v2.access":
                return 200, self._oauth_v2_access(params, basic), {}
            return 200, _METHODS[method](self, ws, params), {}

    # --------------------------------------------------- Web API methods (called under lock)

    def _auth_test(self, ws: Workspace, params: dict) -> dict:
        return {
            "ok": True,
            "url": f"https://{ws.team_domain}.slack.com/",
            "team": ws.team_name,
            "user": ws.bot_name,
            "team_id": ws.team_id,
            "user_id": ws.bot_user_id,
            "bot_id": ws.bot_id,
            "is_enterprise_install": False,
            **({"enterprise_id": ws.enterprise_id} if ws.enterprise_id else {}),
        }

    def _bot_message(self, ws: Workspace, params: dict, ts: str) -> dict:
        msg: dict[str, Any] = {
            "type": "message",
            "user": ws.bot_user_id,
            "bot_id": ws.bot_id,
            "app_id": ws.app_id,
            "team": ws.team_id,
            "text": params.get("text", ""),
            "ts": ts,
        }
        if params.get("blocks") is not None:
            msg["blocks"] = params["blocks"]
        if params.get("attachments") is not None:
            msg["attachments"] = params["attachments"]
        if params.get("metadata") is not None:
            msg["metadata"] = params["metadata"]
        if params.get("thread_ts"):
            msg["thread_ts"] = str(params["thread_ts"])
        return msg

    def _chat_post_message(self, ws: Workspace, params: dict) -> dict:
        channel = params.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            return {"ok": False, "error": "no_text"}
        ts = self._new_ts()
        msg = self._bot_message(ws, params, ts)
        self._messages.setdefault(channel, []).append(msg)
        return {"ok": True, "channel": channel, "ts": ts, "message": copy.deepcopy(msg)}

    def _chat_update(self, ws: Workspace, params: dict) -> dict:
        channel, ts = params.get("channel"), params.get("ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        msg = self._find_message(channel, ts) if ts else None
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            return {"ok": False, "error": "no_text"}
        if "text" in params:
            msg["text"] = params["text"]
        for key in ("blocks", "attachments", "metadata"):
            if key in params:
                msg[key] = params[key]
        msg["edited"] = {"user": ws.bot_user_id, "ts": self._new_ts()}
        return {"ok": True, "channel": channel, "ts": ts, "text": msg.get("text", ""), "message": copy.deepcopy(msg)}

    # chat.startStream / appendStream / stopStream, as docs.slack.dev describes them: text comes as
    # ``markdown_text`` (at most 12,000 characters a call) or ``markdown_text`` chunks; a message
    # accepts appends only while it is streaming.
    def _chat_start_stream(self, ws: Workspace, params: dict) -> dict:
        channel, thread_ts = params.get("channel"), params.get("thread_ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not thread_ts:
            return {"ok": False, "error": "invalid_arguments"}
        text = _stream_text(params)
        if isinstance(text, dict):
            return text
        ts = self._new_ts()
        msg = self._bot_message(ws, {"thread_ts": thread_ts, "text": text}, ts)
        self._messages.setdefault(channel, []).append(msg)
        self._streaming[(channel, ts)] = "streaming"
        return {"ok": True, "channel": channel, "ts": ts}

    def _chat_append_stream(self, ws: Workspace, params: dict) -> dict:
        msg, error = self._streaming_message(params)
        if error:
            return error
        text = _stream_text(params)
        if isinstance(text, dict):
            return text
        if not text:
            return {"ok": False, "error": "invalid_arguments"}
        msg["text"] += text
        return {"ok": True, "channel": params["channel"], "ts": params["ts"]}

    def _chat_stop_stream(self, ws: Workspace, params: dict) -> dict:
        msg, error = self._streaming_message(params)
        if error:
            return error
        text = _stream_text(params)
        if isinstance(text, dict):
            return text
        msg["text"] += text
        for key in ("blocks", "metadata"):
            if params.get(key) is not None:
                msg[key] = params[key]
        self._streaming[(params["channel"], params["ts"])] = "stopped"
        return {"ok": True, "channel": params["channel"], "ts": params["ts"], "message": copy.deepcopy(msg)}

    def _streaming_message(self, params: dict) -> tuple[dict, dict | None]:
        channel, ts = params.get("channel"), params.get("ts")
        if not channel:
            return {}, {"ok": False, "error": "channel_not_found"}
        msg = self._find_message(channel, ts) if ts else None
        if msg is None:
            return {}, {"ok": False, "error": "message_not_found"}
        state = self._streaming.get((channel, ts))
        if state == "stopped_by_user":
            return {}, {"ok": False, "error": "stopped_by_user"}
        if state != "streaming":
            return {}, {"ok": False, "error": "message_not_in_streaming_state"}
        return msg, None

    def end_stream(self, channel: str, ts: str, *, by_user: bool = False) -> None:
        """End a stream from Slack's side: it expired (the next append or stop gets
        ``message_not_in_streaming_state``) or the user pressed stop (``stopped_by_user``)."""
        with self._lock:
            self._streaming[(channel, ts)] = "stopped_by_user" if by_user else "expired"

    def is_streaming(self, channel: str, ts: str) -> bool:
        with self._lock:
            return self._streaming.get((channel, ts)) == "streaming"

    def _chat_post_ephemeral(self, ws: Workspace, params: dict) -> dict:
        if not params.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not params.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            return {"ok": False, "error": "no_text"}
        ts = self._new_ts()
        self._ephemeral.append({**params, "ts": ts})
        return {"ok": True, "message_ts": ts}

    def _chat_delete(self, ws: Workspace, params: dict) -> dict:
        channel, ts = params.get("channel"), params.get("ts")
        msgs = self._messages.get(channel or "", [])
        for i, m in enumerate(msgs):
            if m.get("ts") == ts:
                del msgs[i]
                return {"ok": True, "channel": channel, "ts": ts}
        return {"ok": False, "error": "message_not_found"}

    def _reactions_add(self, ws: Workspace, params: dict) -> dict:
        channel, ts, name = params.get("channel"), params.get("timestamp"), params.get("name")
        if not channel or not ts:
            return {"ok": False, "error": "no_item_specified"}
        if not name:
            return {"ok": False, "error": "invalid_name"}
        name = str(name).strip(":")
        items = self._reactions.setdefault((channel, ts), [])
        for r in items:
            if r["name"] == name:
                if ws.bot_user_id in r["users"]:
                    return {"ok": False, "error": "already_reacted"}
                r["users"].append(ws.bot_user_id)
                break
        else:
            items.append({"name": name, "users": [ws.bot_user_id]})
        self._sync_message_reactions(channel, ts)
        return {"ok": True}

    def _reactions_remove(self, ws: Workspace, params: dict) -> dict:
        channel, ts, name = params.get("channel"), params.get("timestamp"), params.get("name")
        if not channel or not ts:
            return {"ok": False, "error": "no_item_specified"}
        name = str(name or "").strip(":")
        items = self._reactions.get((channel, ts), [])
        for r in items:
            if r["name"] == name and ws.bot_user_id in r["users"]:
                r["users"].remove(ws.bot_user_id)
                if not r["users"]:
                    items.remove(r)
                self._sync_message_reactions(channel, ts)
                return {"ok": True}
        return {"ok": False, "error": "no_reaction"}

    def _sync_message_reactions(self, channel: str, ts: str) -> None:
        msg = self._find_message(channel, ts)
        if msg is None:
            return
        items = self._reactions.get((channel, ts), [])
        if items:
            msg["reactions"] = [{"name": r["name"], "users": list(r["users"]), "count": len(r["users"])} for r in items]
        else:
            msg.pop("reactions", None)

    def _conversations_info(self, ws: Workspace, params: dict) -> dict:
        channel = params.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        ch = self._channels.get(channel)
        if ch is None:
            ch = _channel_object(channel, is_im=channel.startswith("D"))
        return {"ok": True, "channel": copy.deepcopy(ch)}

    def _conversations_replies(self, ws: Workspace, params: dict) -> dict:
        channel, ts = params.get("channel"), params.get("ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not ts:
            return {"ok": False, "error": "thread_not_found"}
        msgs = self._thread_messages(channel, ts)
        if not msgs:
            return {"ok": False, "error": "thread_not_found"}
        out = []
        replies = [m for m in msgs if m["ts"] != ts]
        for m in msgs:
            m = copy.deepcopy(m)
            if m["ts"] == ts and replies:
                m["thread_ts"] = ts
                m["reply_count"] = len(replies)
                m["reply_users"] = sorted({r.get("user") for r in replies if r.get("user")})
                m["reply_users_count"] = len(m["reply_users"])
                m["latest_reply"] = replies[-1]["ts"]
            out.append(m)
        inclusive = _truthy(params.get("inclusive"))
        if params.get("oldest"):
            lo = _ts_key(str(params["oldest"]))
            out = [m for m in out if m["ts"] == ts or (_ts_key(m["ts"]) >= lo if inclusive else _ts_key(m["ts"]) > lo)]
        if params.get("latest"):
            hi = _ts_key(str(params["latest"]))
            out = [m for m in out if m["ts"] == ts or (_ts_key(m["ts"]) <= hi if inclusive else _ts_key(m["ts"]) < hi)]
        start = int(params.get("cursor") or 0)
        limit = int(params.get("limit") or 1000) or 1000
        page = out[start : start + limit]
        has_more = start + limit < len(out)
        return {
            "ok": True,
            "messages": page,
            "has_more": has_more,
            "response_metadata": {"next_cursor": str(start + limit) if has_more else ""},
        }

    def _chat_get_permalink(self, ws: Workspace, params: dict) -> dict:
        channel, ts = params.get("channel"), params.get("message_ts")
        if not channel or not ts or self._find_message(channel, ts) is None:
            return {"ok": False, "error": "message_not_found"}
        return {"ok": True, "channel": channel,
                "permalink": f"https://{ws.team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"}

    def _users_info(self, ws: Workspace, params: dict) -> dict:
        user = params.get("user")
        if not user:
            return {"ok": False, "error": "user_not_found"}
        u = self._users.get(user)
        if u is None:
            u = _user_object(user, team_id=ws.team_id)
        return {"ok": True, "user": copy.deepcopy(u)}

    def _oauth_v2_access(self, params: dict, basic: tuple[str, str] | None) -> dict:
        client_id = basic[0] if basic else params.get("client_id")
        client_secret = basic[1] if basic else params.get("client_secret")
        if not client_id:
            return {"ok": False, "error": "invalid_client_id"}
        if self._oauth_client is not None:
            if client_id != self._oauth_client[0]:
                return {"ok": False, "error": "invalid_client_id"}
            if client_secret != self._oauth_client[1]:
                return {"ok": False, "error": "bad_client_secret"}
        entry = self._oauth_codes.get(params.get("code") or "")
        if entry is None:
            return {"ok": False, "error": "invalid_code"}
        ws: Workspace = entry["workspace"]
        return {
            "ok": True,
            "app_id": ws.app_id,
            "authed_user": {"id": entry["installer_user_id"]},
            "scope": entry["scope"],
            "token_type": "bot",
            "access_token": ws.token,
            "bot_user_id": ws.bot_user_id,
            "team": {"id": ws.team_id, "name": ws.team_name},
            "enterprise": {"id": ws.enterprise_id, "name": "Enterprise"} if ws.enterprise_id else None,
            "is_enterprise_install": False,
        }

    # --------------------------------------------------- response_url webhook

    def _handle_response_url(self, url_id: str, body: Any) -> tuple[int, str, dict]:
        failure = self._pop_failure(RESPONSE_URL_METHOD, None)
        if failure is not None:
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            return failure.status, failure.error, headers
        if not isinstance(body, dict):
            return 400, "invalid_payload", {}
        if not (body.get("text") or body.get("blocks") or body.get("attachments") or body.get("delete_original")):
            return 400, "no_text", {}
        return 200, "ok", {}


_METHODS: dict[str, Callable[..., dict]] = {
    "auth.test": FakeSlack._auth_test,
    "chat.postMessage": FakeSlack._chat_post_message,
    "chat.update": FakeSlack._chat_update,
    "chat.postEphemeral": FakeSlack._chat_post_ephemeral,
    "chat.delete": FakeSlack._chat_delete,
    "chat.startStream": FakeSlack._chat_start_stream,
    "chat.appendStream": FakeSlack._chat_append_stream,
    "chat.stopStream": FakeSlack._chat_stop_stream,
    "reactions.add": FakeSlack._reactions_add,
    "reactions.remove": FakeSlack._reactions_remove,
    "conversations.info": FakeSlack._conversations_info,
    "conversations.replies": FakeSlack._conversations_replies,
    "chat.getPermalink": FakeSlack._chat_get_permalink,
    "users.info": FakeSlack._users_info,
    "oauth.v2.access": None,  # type: ignore[dict-item]  # handled specially (Basic auth, no bot token)
}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeSlack  # set on the per-server subclass
    server_version = "FakeSlack/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        content_type = self.headers.get("Content-Type", "")
        headers = {k: v for k, v in self.headers.items()}
        path = parts.path

        if path.startswith("/response_url/") and self.command == "POST":
            url_id = unquote(path[len("/response_url/") :])
            try:
                body = json.loads(raw.decode("utf-8")) if raw else None
            except ValueError:
                body = None
            status, text, extra = self.fake._handle_response_url(url_id, body)
            self.fake._record(
                Call(
                    method=RESPONSE_URL_METHOD,
                    params=body if isinstance(body, dict) else {"_raw": raw.decode("utf-8", "replace")},
                    token=None,
                    status=status,
                    response=text,
                    content_type=content_type,
                    headers=headers,
                    url_id=url_id,
                )
            )
            self._send(status, text.encode("utf-8"), "text/html", extra)
            return

        if not path.startswith("/api/"):
            self._send(404, b"Not Found", "text/plain", {})
            return

        method = path[len("/api/") :].strip("/")
        try:
            params = dict(parse_qsl(parts.query, keep_blank_values=True))
            params.update(_parse_body(raw, content_type))
        except ValueError:
            params = {}
            status, resp, extra = 200, {"ok": False, "error": "invalid_form_data"}, {}
            token = None
        else:
            token, basic = _credentials(self.headers.get("Authorization"), params)
            _decode_json_fields(params)
            status, resp, extra = self.fake._handle_api(method, params, token, basic)
            if basic is not None:
                token = f"{basic[0]}:{basic[1]}"
        self.fake._record(
            Call(
                method=method,
                params=params,
                token=token,
                status=status,
                response=copy.deepcopy(resp),
                content_type=content_type,
                headers=headers,
            )
        )
        self._send(status, json.dumps(resp).encode("utf-8"), JSON_CONTENT_TYPE, extra)

    def _send(self, status: int, body: bytes, content_type: str, extra: dict) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


# ---------------------------------------------------------------------------- helpers


def _parse_body(raw: bytes, content_type: str) -> dict:
    if not raw:
        return {}
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == "application/json":
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("JSON body must be an object")
        return data
    if ctype == "multipart/form-data":
        msg = BytesParser(policy=HTTP_POLICY).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
        )
        out: dict[str, Any] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not name:
                continue
            payload = part.get_payload(decode=True) or b""
            if part.get_filename() is not None:
                out[name] = payload  # file content as bytes
            else:
                out[name] = payload.decode("utf-8")
        return out
    # application/x-www-form-urlencoded (also WebClient's default when nothing else applies)
    return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False))


def _credentials(authorization: str | None, params: dict) -> tuple[str | None, tuple[str, str] | None]:
    """(bearer token, (client_id, client_secret) from Basic auth). Removes ``token`` from params."""
    body_token = params.pop("token", None)
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip(), None
        if scheme.lower() == "basic":
            try:
                cid, _, secret = base64.b64decode(value.strip()).decode("utf-8").partition(":")
                return None, (cid, secret)
            except ValueError:
                return None, None
    return (str(body_token) if body_token else None), None


STREAM_TEXT_LIMIT = 12_000  # markdown_text per call, as the method pages say


def _stream_text(params: dict) -> str | dict:
    """The text a stream call adds (``markdown_text`` and ``markdown_text`` chunks), or the error."""
    pieces = [params.get("markdown_text") or ""]
    chunks = params.get("chunks") or []
    if isinstance(chunks, str):
        chunks = json.loads(chunks)
    for chunk in chunks:
        if not isinstance(chunk, dict) or chunk.get("type") not in ("markdown_text", "task_update", "plan_update"):
            return {"ok": False, "error": "invalid_chunks"}
        if chunk["type"] == "markdown_text":
            pieces.append(chunk.get("text") or "")
    if any(len(p) > STREAM_TEXT_LIMIT for p in pieces):
        return {"ok": False, "error": "msg_too_long"}
    return "".join(pieces)


def _decode_json_fields(params: dict) -> None:
    for key in _JSON_FIELDS:
        v = params.get(key)
        if isinstance(v, str) and v.strip()[:1] in ("[", "{"):
            try:
                params[key] = json.loads(v)
            except ValueError:
                pass


def _truthy(v: Any) -> bool:
    return v is True or (isinstance(v, (str, int)) and str(v).lower() in ("1", "true"))


def _ts_key(ts: str) -> tuple[int, int]:
    sec, _, frac = ts.partition(".")
    return int(sec or 0), int((frac + "000000")[:6] or 0)


def _channel_object(
    channel_id: str,
    *,
    name: str | None = None,
    is_private: bool = False,
    is_im: bool = False,
    is_member: bool = True,
) -> dict:
    ch: dict[str, Any] = {
        "id": channel_id,
        "created": 1_600_000_000,
        "is_archived": False,
        "is_im": is_im,
        "is_mpim": False,
        "is_private": is_private or is_im,
        "is_ext_shared": False,
        "is_shared": False,
        "is_org_shared": False,
    }
    if is_im:
        ch.update({"is_channel": False, "is_group": False, "user": "U0USER0001", "is_open": True})
    else:
        ch.update(
            {
                "name": name or channel_id.lower(),
                "is_channel": not is_private,
                "is_group": is_private,
                "is_general": False,
                "is_member": is_member,
                "topic": {"value": "", "creator": "", "last_set": 0},
                "purpose": {"value": "", "creator": "", "last_set": 0},
            }
        )
    return ch


def _user_object(
    user_id: str,
    *,
    name: str | None = None,
    real_name: str | None = None,
    is_bot: bool = False,
    team_id: str = "T0000001",
    tz: str = "Europe/London",
) -> dict:
    name = name or user_id.lower()
    real_name = real_name or name.title()
    return {
        "id": user_id,
        "team_id": team_id,
        "name": name,
        "real_name": real_name,
        "deleted": False,
        "is_bot": is_bot,
        "is_admin": False,
        "is_app_user": False,
        "tz": tz,
        "tz_offset": 0,
        "profile": {"real_name": real_name, "display_name": name, "team": team_id},
    }


# ============================================================================================
# Slack's AI-app container (issue 12, the "assistant" helper): the assistant.threads.* methods
# and the assistant_thread_* events, as docs.slack.dev describes them (docs/slack-assistant.md).
# Kept in this one block: state lives in ``fake._assistant`` (created on first use).
#
# - assistant.threads.setStatus(channel_id, thread_ts, status[, loading_messages <= 10]): an
#   empty status clears it; a reply the app posts in the thread clears it too.
# - assistant.threads.setSuggestedPrompts(channel_id, prompts[, thread_ts, title]): at most four
#   prompts, each with a title and a message.
# - assistant.threads.setTitle(channel_id, thread_ts, title).
# Errors: channel_not_found (no channel_id), invalid_thread_ts (no such thread root in the
# channel), invalid_arguments (a missing or malformed argument).
# ============================================================================================

ASSISTANT_MAX_PROMPTS = 4
ASSISTANT_MAX_LOADING_MESSAGES = 10


@dataclass
class AssistantThread:
    statuses: list[str] = field(default_factory=list)  # every status set, in order ("" = cleared)
    prompts: list[dict] = field(default_factory=list)  # the last suggested prompts set
    prompts_title: str | None = None
    title: str | None = None

    @property
    def status(self) -> str:
        return self.statuses[-1] if self.statuses else ""


def _assistant_state(fake: FakeSlack) -> dict[tuple[str, str], AssistantThread]:
    return fake.__dict__.setdefault("_assistant", {})


def _assistant_thread_of(fake: FakeSlack, params: dict) -> tuple[AssistantThread | None, dict | None]:
    """(the thread, None) or (None, the error response)."""
    channel, thread_ts = params.get("channel_id"), params.get("thread_ts")
    if not channel:
        return None, {"ok": False, "error": "channel_not_found"}
    if not thread_ts or fake._find_message(str(channel), str(thread_ts)) is None:
        return None, {"ok": False, "error": "invalid_thread_ts"}
    return _assistant_state(fake).setdefault((str(channel), str(thread_ts)), AssistantThread()), None


def _assistant_set_status(fake: FakeSlack, ws: Workspace, params: dict) -> dict:
    thread, error = _assistant_thread_of(fake, params)
    if error is not None:
        return error
    status, loading = params.get("status"), params.get("loading_messages")
    if not isinstance(status, str):
        return {"ok": False, "error": "invalid_arguments"}
    if loading is not None and (not isinstance(loading, list) or len(loading) > ASSISTANT_MAX_LOADING_MESSAGES):
        return {"ok": False, "error": "invalid_arguments"}
    thread.statuses.append(status)
    return {"ok": True}


def _assistant_set_suggested_prompts(fake: FakeSlack, ws: Workspace, params: dict) -> dict:
    thread, error = _assistant_thread_of(fake, params)
    if error is not None:
        return error
    prompts = params.get("prompts")
    if isinstance(prompts, str):
        try:
            prompts = json.loads(prompts)
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
    well_formed = isinstance(prompts, list) and 0 < len(prompts) <= ASSISTANT_MAX_PROMPTS and all(
        isinstance(p, dict) and p.get("title") and p.get("message") for p in prompts)
    if not well_formed:
        return {"ok": False, "error": "invalid_arguments"}
    thread.prompts, thread.prompts_title = copy.deepcopy(prompts), params.get("title")
    return {"ok": True}


def _assistant_set_title(fake: FakeSlack, ws: Workspace, params: dict) -> dict:
    thread, error = _assistant_thread_of(fake, params)
    if error is not None:
        return error
    if not params.get("title"):
        return {"ok": False, "error": "invalid_arguments"}
    thread.title = str(params["title"])
    return {"ok": True}


def _post_clearing_assistant_status(post: Callable[..., dict]) -> Callable[..., dict]:
    """chat.postMessage, plus Slack's rule that the app's reply in a thread clears its status."""
    def posting(fake: FakeSlack, ws: Workspace, params: dict) -> dict:
        response = post(fake, ws, params)
        key = (str(params.get("channel", "")), str(params.get("thread_ts", "")))
        thread = _assistant_state(fake).get(key)
        if response.get("ok") and thread is not None and thread.status:
            thread.statuses.append("")
        return response
    return posting


def _start_assistant_thread(
    fake: FakeSlack, channel: str, *, user: str = "U0USER0001", context_channel: str | None = None
) -> dict:
    """A user opens a new thread in the container: its root message (subtype ``assistant_app_thread``)
    is created, and the ``assistant_thread_started`` event Slack sends is returned."""
    with fake._lock:  # an RLock: add_message takes it too
        ts = fake.add_message(channel, "New chat", user=user, subtype="assistant_app_thread",
                              assistant_app_thread={"title": "New chat", "artifacts": []})
        _assistant_state(fake).setdefault((channel, ts), AssistantThread())
        event_ts = fake._new_ts()
    return {
        "type": "assistant_thread_started",
        "assistant_thread": _assistant_thread_payload(fake, channel, ts, user, context_channel),
        "event_ts": event_ts,
    }


def _assistant_context_changed(
    fake: FakeSlack, channel: str, thread_ts: str, *, user: str = "U0USER0001", context_channel: str | None = None
) -> dict:
    """The ``assistant_thread_context_changed`` event: the user looks at another channel."""
    with fake._lock:
        event_ts = fake._new_ts()
    return {
        "type": "assistant_thread_context_changed",
        "assistant_thread": _assistant_thread_payload(fake, channel, thread_ts, user, context_channel),
        "event_ts": event_ts,
    }


def _assistant_thread_payload(fake: FakeSlack, channel: str, ts: str, user: str, context_channel: str | None) -> dict:
    context: dict[str, Any] = {"team_id": fake.team_id, "enterprise_id": None}
    if context_channel:
        context["channel_id"] = context_channel
    return {"user_id": user, "context": context, "channel_id": channel, "thread_ts": ts}


def _assistant_thread_state(fake: FakeSlack, channel: str, thread_ts: str) -> AssistantThread:
    with fake._lock:
        return copy.deepcopy(_assistant_state(fake).get((channel, thread_ts), AssistantThread()))


_METHODS.update({
    "assistant.threads.setStatus": _assistant_set_status,
    "assistant.threads.setSuggestedPrompts": _assistant_set_suggested_prompts,
    "assistant.threads.setTitle": _assistant_set_title,
    "chat.postMessage": _post_clearing_assistant_status(_METHODS["chat.postMessage"]),
})
FakeSlack.start_assistant_thread = _start_assistant_thread  # type: ignore[attr-defined]
FakeSlack.assistant_context_changed = _assistant_context_changed  # type: ignore[attr-defined]
FakeSlack.assistant_thread = _assistant_thread_state  # type: ignore[attr-defined]
