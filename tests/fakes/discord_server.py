"""A fake Discord (REST + gateway on one 127.0.0.1 port) that the real discord.py client talks to.

Usage::

    with FakeDiscord() as fake, fake.patch_discord():      # sets Route.BASE / DEFAULT_GATEWAY
        guild_id = fake.add_guild(name="Docs", channels=["general"])
        general = fake.channel_by_name("general")
        client = discord.Client(intents=intents, guild_ready_timeout=0.1)
        ... run ``client.start("any-token")`` on its own thread/loop, wait for ``on_ready`` ...
        mid = fake.send_message(general, f"{fake.bot_mention} how do I install?")
        [call] = fake.wait_for(r"POST /channels/\\d+/messages")
        assert fake.sent_messages()[-1]["content"].startswith("To install")

The server runs in its own thread with its own event loop; every public method is thread-safe
and meant to be called from the test thread (not from inside the fake's own loop).

What the bot needs (discord.py 2.7.1, plain ``Client``/``commands.Bot``)::

    discord.http.Route.BASE = fake.api_base                            # http://127.0.0.1:PORT/api/v10
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)   # ws://.../gw

``Client`` never calls ``GET /gateway``; ``AutoShardedClient`` calls ``GET /gateway/bot`` (served).
Interactions and follow-ups go through ``Route.BASE`` too.

Behaviour worth knowing:

* REST replies carry exactly ``Content-Type: application/json`` (discord.py compares the header
  verbatim) and every REST call is recorded (``calls``, ``calls_to``, ``wait_for``).
* 429s carry Discord's JSON (``retry_after``, ``global``) plus ``X-RateLimit-*`` and ``Via``
  headers: without ``Via`` discord.py treats a 429 as a Cloudflare ban and raises at once.
* Gateway events honour the IDENTIFY intents: guild messages need GUILD_MESSAGES, DMs need
  DIRECT_MESSAGES, threads/channels need GUILDS; without MESSAGE_CONTENT, other users' guild
  messages that do not mention the bot arrive with empty content/embeds/attachments/components.
* The bot's own messages are echoed back as MESSAGE_CREATE/MESSAGE_UPDATE (``echo_bot_messages``),
  and starting a thread sends THREAD_CREATE, as real Discord does.
* Message payloads are validated like Discord (2000 chars, empty message, embed and component
  limits) and answer 400 with Discord's error shapes.
* A create-message with ``nonce`` and ``enforce_nonce: true`` returns the message the bot already
  created with that nonce in the past few minutes instead of creating another, as Discord does.
* Interactions must be acknowledged within ``interaction_ack_timeout`` seconds (default 3, as on
  Discord), else the callback gets 404 "Unknown interaction" (10062). The first follow-up after a
  deferred (thinking) response replaces the loading message, as on Discord.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from aiohttp import WSMsgType, web

__all__ = ["Call", "FakeDiscord", "InteractionRef", "Intents", "NotConnected"]

log = logging.getLogger(__name__)

API_VERSION = 10
API_PREFIX = f"/api/v{API_VERSION}"
GATEWAY_PATH = "/gw"
DISCORD_EPOCH_MS = 1420070400000
JSON_TYPE = "application/json"

# Message flags / types used below.
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
NONCE_WINDOW_S = 180.0  # enforce_nonce: "checked for uniqueness in the past few minutes"
MSG_DEFAULT, MSG_REPLY, MSG_CHAT_INPUT = 0, 19, 20
CH_TEXT, CH_DM, CH_PUBLIC_THREAD, CH_PRIVATE_THREAD = 0, 1, 11, 12
THREAD_TYPES = (10, CH_PUBLIC_THREAD, CH_PRIVATE_THREAD)

# Per-request storage keys for the parsed body (set by the middleware, read by handlers).
PAYLOAD_KEY: Any = web.RequestKey("payload", object) if hasattr(web, "RequestKey") else "payload"
FILES_KEY: Any = web.RequestKey("files", list) if hasattr(web, "RequestKey") else "files"


class Intents:
    """Gateway intent bits (the subset the fake cares about)."""

    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_REACTIONS = 1 << 10
    DIRECT_MESSAGES = 1 << 12
    DIRECT_MESSAGE_REACTIONS = 1 << 13
    MESSAGE_CONTENT = 1 << 15
    PRIVILEGED = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT


# Permissions given to @everyone by default: view, send, embed, attach, history, react,
# use app commands, create public threads, send in threads.
DEFAULT_PERMISSIONS = sum(1 << b for b in (6, 10, 11, 14, 15, 16, 31, 35, 38))


# --------------------------------------------------------------------------- records


@dataclass
class Call:
    """One REST request the bot made (path is relative to ``/api/v10``, percent-decoded)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[dict[str, Any]] = field(default_factory=list)
    status: int = 0
    response: Any = None
    at: float = field(default_factory=time.monotonic)

    def matches(self, method: str | None, path_regex: str) -> bool:
        method_ok = method in (None, "*") or self.method == method.upper()
        return method_ok and re.search(path_regex, self.path) is not None


class InteractionRef(NamedTuple):
    """What ``send_slash_command``/``click_button`` return."""

    id: int
    token: str


class _ApiError(Exception):
    """Raised by handlers to answer with a Discord-shaped JSON error."""

    def __init__(self, status: int, code: int, message: str, errors: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.body = status, {"message": message, "code": code}
        if errors:
            self.body["errors"] = errors


def _form_error(errors: dict) -> _ApiError:
    return _ApiError(400, 50035, "Invalid Form Body", errors)


def _field_error(code: str, message: str) -> dict:
    return {"_errors": [{"code": code, "message": message}]}


# --------------------------------------------------------------------------- small helpers


class _Snowflakes:
    """Increasing, realistic Discord ids (timestamp << 22 | worker | increment)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0
        self._inc = itertools.count()

    def next(self) -> int:
        with self._lock:
            ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
            candidate = (ms << 22) | (1 << 17) | (next(self._inc) & 0xFFF)
            self._last = max(candidate, self._last + 1)
            return self._last


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def _json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    body = json.dumps(data).encode()
    # Set the header by hand: aiohttp's json_response/text= would append "; charset=utf-8",
    # which discord.py's json_or_text() does not recognise as JSON.
    return web.Response(body=body, status=status, headers={"Content-Type": JSON_TYPE, **(headers or {})})


def _no_content() -> web.Response:
    return web.Response(status=204)


def _sid(value: Any) -> str | None:
    return None if value is None else str(value)


def _user_payload(user_id: int, username: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": username,
        "global_name": None if bot else username.title(),
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
        "flags": 0,
    }


def _member_payload(user: dict[str, Any] | None, *, joined_at: str, permissions: int | None = None) -> dict:
    member: dict[str, Any] = {"roles": [], "joined_at": joined_at, "deaf": False, "mute": False, "flags": 0}
    if user is not None:
        member["user"] = user
    if permissions is not None:
        member["permissions"] = str(permissions)
    return member


def _role_payload(role_id: int, name: str, permissions: int, position: int = 0) -> dict[str, Any]:
    return {
        "id": str(role_id), "name": name, "permissions": str(permissions), "position": position,
        "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0,
    }


def _thread_metadata(auto_archive_duration: int = 1440) -> dict[str, Any]:
    now = _now_iso()
    return {
        "archived": False, "auto_archive_duration": auto_archive_duration, "archive_timestamp": now,
        "locked": False, "create_timestamp": now,
    }


# --------------------------------------------------------------------------- validation


def _validate_message(payload: dict[str, Any], files: list[dict], *, creating: bool) -> None:
    """Reproduce Discord's size limits for message content, embeds and components."""
    content = payload.get("content")
    if content is not None and len(str(content)) > 2000:
        raise _form_error({"content": _field_error("BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")})
    _validate_embeds(payload.get("embeds") or [])
    _validate_components(payload.get("components") or [])
    if creating and not any(
        (content, payload.get("embeds"), payload.get("components"), payload.get("sticker_ids"),
         payload.get("poll"), files)
    ):
        raise _ApiError(400, 50006, "Cannot send an empty message")


_EMBED_LIMITS = {"title": 256, "description": 4096}


def _validate_embeds(embeds: list[dict]) -> None:
    if len(embeds) > 10:
        raise _form_error({"embeds": _field_error("BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")})
    total = 0
    for i, embed in enumerate(embeds):
        for key, limit in _EMBED_LIMITS.items():
            value = embed.get(key) or ""
            total += len(value)
            if len(value) > limit:
                msg = f"Must be {limit} or fewer in length."
                raise _form_error({"embeds": {str(i): {key: _field_error("BASE_TYPE_MAX_LENGTH", msg)}}})
        fields = embed.get("fields") or []
        if len(fields) > 25:
            msg = "Must be 25 or fewer in length."
            raise _form_error({"embeds": {str(i): {"fields": _field_error("BASE_TYPE_MAX_LENGTH", msg)}}})
        for j, fld in enumerate(fields):
            for key, limit in (("name", 256), ("value", 1024)):
                value = str(fld.get(key) or "")
                total += len(value)
                if len(value) > limit:
                    msg = f"Must be {limit} or fewer in length."
                    err = {"fields": {str(j): {key: _field_error("BASE_TYPE_MAX_LENGTH", msg)}}}
                    raise _form_error({"embeds": {str(i): err}})
        total += len((embed.get("footer") or {}).get("text") or "")
        total += len((embed.get("author") or {}).get("name") or "")
    if total > 6000:
        raise _form_error({"embeds": _field_error("MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")})


def _validate_components(rows: list[dict]) -> None:
    if len(rows) > 5:
        raise _form_error({"components": _field_error("BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")})
    for i, row in enumerate(rows):
        children = row.get("components") or []
        if row.get("type") == 1 and len(children) > 5:
            msg = "Must be 5 or fewer in length."
            raise _form_error({"components": {str(i): {"components": _field_error("BASE_TYPE_MAX_LENGTH", msg)}}})
        for j, comp in enumerate(children):
            for key, limit in (("label", 80), ("custom_id", 100)):
                if len(str(comp.get(key) or "")) > limit:
                    msg = f"Must be {limit} or fewer in length."
                    err = {"components": {str(j): {key: _field_error("BASE_TYPE_MAX_LENGTH", msg)}}}
                    raise _form_error({"components": {str(i): err}})


# --------------------------------------------------------------------------- gateway session


@dataclass(eq=False)
class _Session:
    ws: web.WebSocketResponse
    query: dict[str, str]
    session_id: str = ""
    seq: int = 0
    intents: int = 0
    ready: bool = False
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, payload: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.ws.send_str(json.dumps(payload))

    async def dispatch(self, event: str, data: Any) -> None:
        async with self.send_lock:
            self.seq += 1
            await self.ws.send_str(json.dumps({"op": 0, "t": event, "s": self.seq, "d": data}))


class NotConnected(RuntimeError):
    """Raised when a test pushes a gateway event while no bot is connected."""


# --------------------------------------------------------------------------- the fake


class FakeDiscord:
    """Fake Discord REST API + gateway for end-to-end tests of a discord.py bot."""

    def __init__(
        self,
        *,
        bot_name: str = "DocRag",
        bot_id: int | None = None,
        application_id: int | None = None,
        token: str | None = None,
        heartbeat_interval_ms: int = 41250,
        echo_bot_messages: bool = True,
        allow_privileged_intents: bool = True,
        interaction_ack_timeout: float | None = 3.0,
        host: str = "127.0.0.1",
    ) -> None:
        self._ids = _Snowflakes()
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self.bot_id: int = bot_id or self._ids.next()
        self.application_id: int = application_id or self.bot_id
        self.bot_user: dict[str, Any] = _user_payload(self.bot_id, bot_name, bot=True)
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.echo_bot_messages = echo_bot_messages
        self.allow_privileged_intents = allow_privileged_intents
        self.interaction_ack_timeout = interaction_ack_timeout
        self._host = host
        self._port = 0
        # state
        self._users: dict[int, dict[str, Any]] = {self.bot_id: self.bot_user}
        self._guilds: dict[int, dict[str, Any]] = {}
        self._channels: dict[int, dict[str, Any]] = {}
        self._dms: dict[int, int] = {}
        self._messages: dict[int, dict[str, Any]] = {}
        self._nonces: dict[str, tuple[float, int]] = {}  # nonce -> (created at, message id)
        self._bot_message_ids: list[int] = []
        self._commands: dict[int | None, list[dict[str, Any]]] = {}
        self._interactions: dict[int, dict[str, Any]] = {}
        self._tokens: dict[str, int] = {}
        # records
        self._calls: list[Call] = []
        self._failures: list[dict[str, Any]] = []
        self._message_bucket: tuple[int, float] | None = None  # (limit, window seconds) per channel
        self._bucket_use: dict[str, tuple[float, int]] = {}  # channel id -> (window start, calls)
        self._gateway_events: list[tuple[str, Any, bool]] = []
        self._gateway_frames: list[dict[str, Any]] = []
        self._identify: dict[str, Any] | None = None
        self._connections = 0
        # runtime
        self._sessions: set[_Session] = set()
        self._current: _Session | None = None
        self._resumable: dict[str, _Session] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._startup_error: BaseException | None = None
        self.default_user_id: int = self.add_user("alice")

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "FakeDiscord":
        """Start the server thread; returns once the port is listening."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self._thread_main, args=(ready,), name="FakeDiscord", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("FakeDiscord did not start within 10 s")
        if self._startup_error is not None:
            raise RuntimeError("FakeDiscord failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        """Close gateway sessions, stop the server and join its thread. Close the bot first."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(15)
        self._thread = None

    def __enter__(self) -> "FakeDiscord":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def api_base(self) -> str:
        """Value for ``discord.http.Route.BASE``."""
        return f"{self.base_url}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """Value (wrapped in ``yarl.URL``) for ``DiscordWebSocket.DEFAULT_GATEWAY``."""
        return f"ws://{self._host}:{self._port}{GATEWAY_PATH}"

    @property
    def bot_mention(self) -> str:
        return f"<@{self.bot_id}>"

    @contextlib.contextmanager
    def patch_discord(self) -> Iterator[None]:
        """Point discord.py (process-wide) at this fake; restores the previous values on exit."""
        import discord.gateway
        import discord.http
        import yarl

        old_base, old_gw = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gw

    def _thread_main(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._startup_error = exc
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
        finally:
            self._cancel_leftover_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _startup(self) -> None:
        app = web.Application(middlewares=[self._rest_middleware], client_max_size=64 * 1024 * 1024)
        self._add_routes(app.router)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def _shutdown(self) -> None:
        for session in list(self._sessions):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(session.ws.close(code=1001, message=b"server shutting down"), 2)
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    def _cancel_leftover_tasks(loop: asyncio.AbstractEventLoop) -> None:
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))

    def _run(self, coro: Any, timeout: float = 10.0) -> Any:
        """Run a coroutine on the fake's loop from the test thread and return its result."""
        if self._loop is None or not self._loop.is_running():
            coro.close()
            raise RuntimeError("FakeDiscord is not running (use start() or a with-block)")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("call FakeDiscord's public methods from the test thread, not its loop")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # ------------------------------------------------------------------ world building

    def add_user(self, username: str, *, user_id: int | None = None, bot: bool = False) -> int:
        """Create a user (e.g. a human asking questions); returns its id."""
        uid = user_id or self._ids.next()
        with self._lock:
            self._users[uid] = _user_payload(uid, username, bot=bot)
        return uid

    def add_guild(
        self,
        guild_id: int | None = None,
        name: str = "Test Guild",
        channels: Iterable[int | str | dict[str, Any]] | None = None,
        *,
        members: Iterable[int] = (),
        permissions: int = DEFAULT_PERMISSIONS,
    ) -> int:
        """Create a guild with text channels (ids, names or channel dicts); returns the guild id.

        Guilds added before the bot connects arrive in GUILD_CREATE after READY; guilds added
        later are pushed as GUILD_CREATE right away (the bot "joins" them).
        """
        gid = guild_id or self._ids.next()
        with self._lock:
            self._guilds[gid] = {
                "id": gid, "name": name, "permissions": permissions, "joined_at": _now_iso(),
                "members": [self.bot_id, *members],
            }
        for spec in channels if channels is not None else ["general"]:
            self._add_channel_quietly(gid, spec)
        if self._ready_session() is not None:
            self._run(self._dispatch("GUILD_CREATE", self._guild_create_payload(gid, joined=True)))
        return gid

    def add_channel(self, guild_id: int, name: str = "general", *, channel_id: int | None = None,
                    topic: str | None = None) -> int:
        """Add a text channel; pushed as CHANNEL_CREATE when the bot is connected."""
        cid = self._add_channel_quietly(guild_id, {"id": channel_id, "name": name, "topic": topic})
        if self._ready_session() is not None:
            self._run(self._dispatch("CHANNEL_CREATE", self.channel(cid)))
        return cid

    def add_thread(self, parent_id: int, name: str = "thread", *, thread_id: int | None = None,
                   owner: int | str | None = None, private: bool = False) -> int:
        """Create an existing thread under a text channel (THREAD_CREATE if connected).

        Pass ``thread_id=<starter message id>`` for a thread started from a message.
        """
        with self._lock:
            parent = self._channels[parent_id]
            owner_id = self._resolve_user(owner)["id"]
            tid = thread_id or self._ids.next()
            self._channels[tid] = self._thread_payload(tid, parent, name, int(owner_id), private=private)
        if self._ready_session() is not None:
            self._run(self._dispatch("THREAD_CREATE", {**self.channel(tid), "newly_created": True}))
        return tid

    def open_dm(self, user: int | str | None = None) -> int:
        """Return (creating if needed) the DM channel between ``user`` and the bot."""
        with self._lock:
            uid = int(self._resolve_user(user)["id"])
            if uid not in self._dms:
                cid = self._ids.next()
                self._dms[uid] = cid
                self._channels[cid] = {
                    "id": str(cid), "type": CH_DM, "last_message_id": None, "flags": 0,
                    "recipients": [self._users[uid]],
                }
            return self._dms[uid]

    def channel(self, channel_id: int) -> dict[str, Any]:
        """The channel/thread/DM object as Discord would return it."""
        with self._lock:
            return copy.deepcopy(self._channels[channel_id])

    def channel_by_name(self, name: str, guild_id: int | None = None) -> int:
        """Id of the first channel or thread called ``name`` (optionally in ``guild_id``)."""
        with self._lock:
            for cid, ch in self._channels.items():
                if ch.get("name") == name and (guild_id is None or ch.get("guild_id") == str(guild_id)):
                    return cid
        raise KeyError(name)

    def _add_channel_quietly(self, guild_id: int, spec: int | str | dict[str, Any]) -> int:
        if isinstance(spec, int):
            spec = {"id": spec}
        elif isinstance(spec, str):
            spec = {"name": spec}
        with self._lock:
            cid = int(spec.get("id") or self._ids.next())
            position = sum(1 for c in self._channels.values() if c.get("guild_id") == str(guild_id))
            channel = {
                "id": str(cid), "type": CH_TEXT, "guild_id": str(guild_id), "name": f"channel-{position}",
                "position": position, "parent_id": None, "permission_overwrites": [], "nsfw": False,
                "topic": None, "rate_limit_per_user": 0, "last_message_id": None, "flags": 0,
                "default_auto_archive_duration": 1440,
            }
            channel.update({k: v for k, v in spec.items() if v is not None and k != "id"})
            self._channels[cid] = channel
            return cid

    def _thread_payload(self, tid: int, parent: dict, name: str, owner_id: int, *, private: bool = False,
                        auto_archive_duration: int = 1440) -> dict[str, Any]:
        return {
            "id": str(tid), "type": CH_PRIVATE_THREAD if private else CH_PUBLIC_THREAD,
            "guild_id": parent["guild_id"], "parent_id": parent["id"], "owner_id": str(owner_id),
            "name": name, "last_message_id": None, "rate_limit_per_user": 0, "message_count": 0,
            "member_count": 1, "total_message_sent": 0, "flags": 0,
            "thread_metadata": _thread_metadata(auto_archive_duration),
        }

    def _resolve_user(self, user: int | str | dict | None) -> dict[str, Any]:
        """User payload for an id, a username (created on first use) or None (default user)."""
        with self._lock:
            if user is None:
                return self._users[self.default_user_id]
            if isinstance(user, dict):
                return user
            if isinstance(user, int):
                return self._users[user]
            for payload in self._users.values():
                if payload["username"] == user:
                    return payload
        return self._users[self.add_user(user)]

    def _guild_create_payload(self, guild_id: int, *, joined: bool = False) -> dict[str, Any]:
        """GUILD_CREATE data. ``unavailable: false`` marks a guild from READY (-> on_guild_available);
        a guild joined later has no ``unavailable`` key (-> on_guild_join)."""
        with self._lock:
            g = self._guilds[guild_id]
            channels = [copy.deepcopy(c) for c in self._channels.values()
                        if c.get("guild_id") == str(guild_id) and c["type"] not in THREAD_TYPES]
            threads = [copy.deepcopy(c) for c in self._channels.values()
                       if c.get("guild_id") == str(guild_id) and c["type"] in THREAD_TYPES]
            members = [_member_payload(self._users[uid], joined_at=g["joined_at"]) for uid in g["members"]]
        payload = {
            "id": str(guild_id), "name": g["name"], "unavailable": False, "member_count": len(members),
            "large": False, "owner_id": str(self.default_user_id), "joined_at": g["joined_at"],
            "roles": [_role_payload(guild_id, "@everyone", g["permissions"])],
            "channels": channels, "threads": threads, "members": members, "presences": [],
            "voice_states": [], "emojis": [], "stickers": [], "features": [], "stage_instances": [],
            "guild_scheduled_events": [], "soundboard_sounds": [], "preferred_locale": "en-US",
            "premium_tier": 0, "verification_level": 0, "default_message_notifications": 0,
            "explicit_content_filter": 0, "mfa_level": 0, "nsfw_level": 0, "afk_timeout": 300,
            "system_channel_id": None, "application_id": None,
        }
        if joined:
            del payload["unavailable"]
        return payload

    # ------------------------------------------------------------------ pushing events (test thread)

    def send_message(
        self,
        channel_id: int,
        content: str,
        *,
        author: int | str | None = None,
        mentions: Iterable[int | str] = (),
        guild_id: int | None = None,
        mention_everyone: bool = False,
        reply_to: int | None = None,
        embeds: list[dict[str, Any]] | None = None,
    ) -> int:
        """Push MESSAGE_CREATE from a user; returns the message id.

        Mentions are ``mentions`` plus every ``<@id>`` found in ``content`` (use ``fake.bot_mention``).
        Works for text channels, threads and DM channels (see ``send_dm``).
        """
        with self._lock:
            if channel_id not in self._channels and guild_id is None:
                raise KeyError(f"unknown channel {channel_id}: create it first (add_guild/add_channel/"
                               "add_thread/open_dm) or pass guild_id")
            user = self._resolve_user(author)
            msg = self._new_message(channel_id, content, user, guild_id=guild_id, embeds=embeds or [])
            msg["mention_everyone"] = mention_everyone
            msg["mentions"] = self._mention_payloads(content, mentions, msg.get("guild_id"))
            if reply_to is not None:
                self._attach_reference(msg, {"message_id": reply_to})
            self._store_message(msg)
        self._run(self._dispatch("MESSAGE_CREATE", msg))
        return int(msg["id"])

    def add_reaction(self, message_id: int, emoji: str, *, user: int | str | None = None) -> None:
        """A user reacts to a message with a unicode emoji: push MESSAGE_REACTION_ADD."""
        with self._lock:
            msg = self._messages[message_id]
            reactor = self._resolve_user(user)
            data: dict[str, Any] = {
                "user_id": reactor["id"], "channel_id": msg["channel_id"], "message_id": str(message_id),
                "emoji": {"id": None, "name": emoji}, "message_author_id": msg["author"]["id"],
                "burst": False, "burst_colors": [], "type": 0,
            }
            guild_id = msg.get("guild_id") or self._guild_of(int(msg["channel_id"]))
            if guild_id:
                data["guild_id"] = str(guild_id)
                joined = self._guilds.get(int(guild_id), {}).get("joined_at", _now_iso())
                data["member"] = _member_payload(reactor, joined_at=joined)
        self._run(self._dispatch("MESSAGE_REACTION_ADD", data))

    def send_dm(self, content: str, *, author: int | str | None = None) -> int:
        """Push a DM from ``author`` (default user) to the bot; returns the message id."""
        return self.send_message(self.open_dm(author), content, author=author)

    def edit_message(self, message_id: int, content: str) -> None:
        """A user edits their message: push MESSAGE_UPDATE."""
        with self._lock:
            msg = self._messages[message_id]
            msg.update(content=content, edited_timestamp=_now_iso())
            msg["mentions"] = self._mention_payloads(content, (), msg.get("guild_id"))
            data = copy.deepcopy(msg)
        self._run(self._dispatch("MESSAGE_UPDATE", data))

    def send_slash_command(
        self,
        name: str,
        options: dict[str, Any] | list[dict[str, Any]] | None = None,
        *,
        channel_id: int,
        guild_id: int | None = None,
        user: int | str | None = None,
    ) -> InteractionRef:
        """Push INTERACTION_CREATE type 2 (chat input). ``options`` is ``{name: value}`` or raw list.

        If the bot synced the command, its id is used, option types follow the declaration and
        ``data.guild_id`` is set for guild commands (discord.py needs it to find guild commands).
        """
        with self._lock:
            gid = guild_id or self._guild_of(channel_id)
            command = self._find_command(name, gid)
            data: dict[str, Any] = {
                "id": str(command["id"] if command else self._ids.next()), "name": name, "type": 1,
                "options": self._option_payloads(options, command),
            }
            if command and command.get("guild_id"):
                data["guild_id"] = command["guild_id"]
            payload = self._interaction_payload(2, data, channel_id, gid, self._resolve_user(user))
        self._run(self._dispatch("INTERACTION_CREATE", payload))
        return InteractionRef(int(payload["id"]), payload["token"])

    def click_button(
        self,
        custom_id: str,
        message_id: int,
        channel_id: int | None = None,
        *,
        user: int | str | None = None,
        component_type: int = 2,
        values: list[str] | None = None,
    ) -> InteractionRef:
        """Push INTERACTION_CREATE type 3 for a button (or select, with ``values``) on a message."""
        with self._lock:
            message = copy.deepcopy(self._messages.get(message_id))
            if message is None:
                if channel_id is None:
                    raise KeyError(f"unknown message {message_id}: pass channel_id")
                message = dict(self._new_message(channel_id, "", self.bot_user), id=str(message_id))
            cid = channel_id or int(message["channel_id"])
            gid = self._guild_of(cid)
            data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
            if values is not None:
                data["values"] = values
            payload = self._interaction_payload(3, data, cid, gid, self._resolve_user(user), message=message)
        self._run(self._dispatch("INTERACTION_CREATE", payload))
        return InteractionRef(int(payload["id"]), payload["token"])

    def request_reconnect(self) -> None:
        """Send op 7 RECONNECT; discord.py reconnects to resume_gateway_url and RESUMEs."""
        session = self._ready_session()
        if session is None:
            raise NotConnected("no bot connected to the gateway")
        self._run(session.send({"op": 7, "d": None}))

    # ------------------------------------------------------------------ scripted failures

    def fail_next(
        self,
        path_regex: str,
        status: int = 429,
        *,
        retry_after: float = 0.1,
        method: str | None = None,
        times: int = 1,
        is_global: bool = False,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Answer the next ``times`` matching REST calls with ``status`` (429 in Discord's shape).

        ``path_regex`` is searched in the path after ``/api/v10``, e.g. ``r"/channels/\\d+/messages$"``.
        Note discord.py sleeps 1 s, 3 s, ... before retrying a 500/502/504.
        """
        with self._lock:
            self._failures.append({
                "regex": path_regex, "status": status, "retry_after": retry_after, "method": method,
                "times": times, "global": is_global, "body": body,
            })

    def limit_channel_messages(self, limit: int | None = 5, per_s: float = 5.0) -> None:
        """Rate-limit message creates and edits per channel as Discord does (5 per 5 s by default):
        every such reply carries ``X-RateLimit-Limit/-Remaining/-Reset-After/-Bucket``, and a call
        over the limit gets a 429. discord.py reads the headers and waits on its own. ``None``: no limit."""
        with self._lock:
            self._message_bucket = None if limit is None else (limit, per_s)
            self._bucket_use.clear()

    def _take_bucket(self, method: str, path: str) -> tuple[web.Response | None, dict[str, str]]:
        match = re.fullmatch(r"/channels/(\d+)/messages(?:/\d+)?", path)
        if self._message_bucket is None or match is None or method not in ("POST", "PATCH"):
            return None, {}
        limit, window = self._message_bucket
        now = time.monotonic()
        with self._lock:
            start, used = self._bucket_use.get(match[1], (now, 0))
            if now - start >= window:
                start, used = now, 0
            reset_after = max(0.0, window - (now - start))
            if used >= limit:
                return self._failure_response(
                    {"status": 429, "retry_after": reset_after, "global": False, "body": None}
                ), {}
            self._bucket_use[match[1]] = (start, used + 1)
        return None, {
            "X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(limit - used - 1),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}", "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": f"fake-messages-{match[1]}",
        }

    def _take_failure(self, method: str, path: str) -> web.Response | None:
        with self._lock:
            for failure in self._failures:
                if failure["method"] not in (None, method) or not re.search(failure["regex"], path):
                    continue
                failure["times"] -= 1
                if failure["times"] <= 0:
                    self._failures.remove(failure)
                return self._failure_response(failure)
        return None

    @staticmethod
    def _failure_response(failure: dict[str, Any]) -> web.Response:
        status, body = failure["status"], failure["body"]
        if status != 429:
            return _json_response(body or {"message": f"{status}: Scripted failure", "code": 0}, status)
        retry_after = failure["retry_after"]
        headers = {
            "Retry-After": str(max(1, round(retry_after))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Bucket": "fake-bucket-" + secrets.token_hex(4),
            "X-RateLimit-Scope": "global" if failure["global"] else "user",
            # discord.py treats a 429 without Via as a Cloudflare ban and raises instead of retrying.
            "Via": "1.1 google",
        }
        if failure["global"]:
            headers["X-RateLimit-Global"] = "true"
        data = body or {"message": "You are being rate limited.", "retry_after": retry_after,
                        "global": failure["global"], "code": 0}
        return _json_response(data, 429, headers)

    # ------------------------------------------------------------------ inspection

    @property
    def calls(self) -> list[Call]:
        """Every REST call so far, in completion order."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str | None, path_regex: str) -> list[Call]:
        """Calls with ``method`` (None/"*" for any) whose path matches ``path_regex`` (re.search)."""
        return [c for c in self.calls if c.matches(method, path_regex)]

    def wait_for(
        self,
        predicate_or_path: str | Callable[[Call], bool],
        count: int = 1,
        timeout: float = 10.0,
    ) -> list[Call]:
        """Block until ``count`` matching calls were recorded; returns them.

        A string is a path regex, optionally prefixed by a method: ``"POST /channels/\\d+/typing"``.
        Raises ``TimeoutError`` listing the recent calls.
        """
        predicate = self._as_predicate(predicate_or_path)
        with self._cond:
            done = self._cond.wait_for(lambda: len([c for c in self._calls if predicate(c)]) >= count, timeout)
            matching = [c for c in self._calls if predicate(c)]
            if not done:
                recent = "\n  ".join(f"{c.status} {c.method} {c.path}" for c in self._calls[-15:])
                raise TimeoutError(
                    f"waited {timeout}s for {count} call(s) matching {predicate_or_path!r}, "
                    f"got {len(matching)}; recent calls:\n  {recent}"
                )
            return matching

    @staticmethod
    def _as_predicate(spec: str | Callable[[Call], bool]) -> Callable[[Call], bool]:
        if callable(spec):
            return spec
        method, _, rest = spec.partition(" ")
        if rest and method.isupper() and method.isalpha():
            return lambda c: c.matches(method, rest)
        return lambda c: c.matches(None, spec)

    def sent_messages(self, channel_id: int | None = None) -> list[dict[str, Any]]:
        """Messages the bot created (channel posts, interaction responses, follow-ups), current state."""
        with self._lock:
            msgs = [copy.deepcopy(self._messages[mid]) for mid in self._bot_message_ids
                    if mid in self._messages]  # a deleted one is gone
        return [m for m in msgs if channel_id is None or m["channel_id"] == str(channel_id)]

    def message(self, message_id: int) -> dict[str, Any]:
        """Any stored message (from users or the bot), current state."""
        with self._lock:
            return copy.deepcopy(self._messages[message_id])

    def commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        """Application commands the bot synced (global, or for ``guild_id``)."""
        with self._lock:
            return copy.deepcopy(self._commands.get(guild_id, []))

    def interaction(self, ref: InteractionRef | int) -> dict[str, Any]:
        """State of an interaction: acked, response_type, original_id, followup_ids, ..."""
        with self._lock:
            return copy.deepcopy(self._interactions[int(ref[0] if isinstance(ref, tuple) else ref)])

    @property
    def identify_payload(self) -> dict[str, Any] | None:
        """The ``d`` of the last IDENTIFY (``intents``, ``properties``, ``token``, ...)."""
        with self._lock:
            return copy.deepcopy(self._identify)

    @property
    def intents(self) -> int | None:
        payload = self.identify_payload
        return None if payload is None else payload.get("intents", 0)

    @property
    def gateway_events(self) -> list[tuple[str, Any, bool]]:
        """Dispatches the fake produced: (event name, data as sent, delivered?)."""
        with self._lock:
            return list(self._gateway_events)

    @property
    def gateway_frames(self) -> list[dict[str, Any]]:
        """Frames the bot sent on the gateway (heartbeats, IDENTIFY, RESUME, ...)."""
        with self._lock:
            return list(self._gateway_frames)

    @property
    def connections(self) -> int:
        """How many times the bot IDENTIFYed or RESUMEd successfully."""
        with self._lock:
            return self._connections

    def wait_connected(self, timeout: float = 10.0, connections: int = 1) -> None:
        """Block until READY (+ GUILD_CREATEs) or RESUMED was sent ``connections`` times."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._connections >= connections, timeout):
                raise TimeoutError(f"bot did not connect to the fake gateway within {timeout}s")

    # ------------------------------------------------------------------ message helpers

    def _guild_of(self, channel_id: int | None) -> int | None:
        channel = self._channels.get(channel_id) if channel_id is not None else None
        return int(channel["guild_id"]) if channel and channel.get("guild_id") else None

    def _new_message(self, channel_id: int, content: str, author: dict[str, Any], *,
                     guild_id: int | None = None, embeds: list | None = None) -> dict[str, Any]:
        gid = guild_id or self._guild_of(channel_id)
        msg: dict[str, Any] = {
            "id": str(self._ids.next()), "channel_id": str(channel_id), "type": MSG_DEFAULT,
            "content": content, "author": author, "timestamp": _now_iso(), "edited_timestamp": None,
            "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [],
            "attachments": [], "embeds": embeds or [], "components": [], "pinned": False, "flags": 0,
        }
        if gid is not None:
            msg["guild_id"] = str(gid)
            joined = self._guilds.get(gid, {}).get("joined_at", _now_iso())
            msg["member"] = _member_payload(None, joined_at=joined)
        return msg

    def _mention_payloads(self, content: str, extra: Iterable[int | str], guild_id: str | None) -> list[dict]:
        ids = [int(x) for x in re.findall(r"<@!?(\d{15,20})>", content)]
        ids += [int(self._resolve_user(u)["id"]) for u in extra]
        result, seen = [], set()
        for uid in ids:
            if uid in seen or uid not in self._users:
                continue
            seen.add(uid)
            user = dict(self._users[uid])
            if guild_id is not None:
                user["member"] = _member_payload(None, joined_at=_now_iso())
            result.append(user)
        return result

    def _attach_reference(self, msg: dict[str, Any], ref: dict[str, Any]) -> None:
        target_id = int(ref["message_id"])
        target = self._messages.get(target_id)
        if target is None:
            if ref.get("fail_if_not_exists", True):
                err = _field_error("REPLIES_UNKNOWN_MESSAGE", "Unknown message")
                raise _form_error({"message_reference": err})
            return
        msg["type"] = MSG_REPLY
        msg["message_reference"] = {
            "type": 0, "message_id": target["id"], "channel_id": target["channel_id"],
            "guild_id": target.get("guild_id"),
        }
        msg["referenced_message"] = copy.deepcopy(target)

    def _store_message(self, msg: dict[str, Any], *, by_bot: bool = False) -> None:
        mid = int(msg["id"])
        self._messages[mid] = msg
        channel = self._channels.get(int(msg["channel_id"]))
        if channel is not None:
            channel["last_message_id"] = msg["id"]
            if channel["type"] in THREAD_TYPES:
                channel["message_count"] = channel.get("message_count", 0) + 1
        if by_bot:
            self._bot_message_ids.append(mid)

    def _bot_message_from_payload(self, channel_id: int, payload: dict[str, Any], files: list[dict],
                                  *, author: dict[str, Any] | None = None) -> dict[str, Any]:
        """Build (not store) a message the bot sends, from a create-message payload."""
        msg = self._new_message(channel_id, payload.get("content") or "", author or self.bot_user,
                                embeds=payload.get("embeds") or [])
        msg["components"] = payload.get("components") or []
        msg["flags"] = int(payload.get("flags") or 0)
        msg["tts"] = bool(payload.get("tts", False))
        msg["attachments"] = self._attachments(files)
        msg["mentions"] = self._mention_payloads(msg["content"], (), msg.get("guild_id"))
        if payload.get("message_reference"):
            self._attach_reference(msg, payload["message_reference"])
        return msg

    def _attachments(self, files: list[dict]) -> list[dict[str, Any]]:
        result = []
        for f in files:
            aid = self._ids.next()
            url = f"{self.base_url}/attachments/{aid}/{f['filename']}"
            result.append({
                "id": str(aid), "filename": f["filename"], "size": len(f["data"]), "url": url,
                "proxy_url": url, "content_type": f.get("content_type"),
            })
        return result

    def _same_nonce(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Create message's ``enforce_nonce``: "If true and nonce is present, it will be checked for
        uniqueness in the past few minutes. If another message was created by the same author with
        the same nonce, that message will be returned and no new message will be created." (Discord's
        create-message reference; a nonce is at most 25 characters). The fake's "few minutes": 3."""
        nonce = payload.get("nonce")
        if nonce is not None and len(str(nonce)) > 25:
            raise _form_error({"nonce": _field_error("BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")})
        if nonce is None or not payload.get("enforce_nonce"):
            return None
        seen = self._nonces.get(str(nonce))
        if seen is None or time.monotonic() - seen[0] > NONCE_WINDOW_S:
            return None
        return self._messages.get(seen[1])

    @staticmethod
    def _apply_edit(msg: dict[str, Any], payload: dict[str, Any]) -> None:
        for key in ("content", "embeds", "components", "flags"):
            if key in payload and payload[key] is not None:
                msg[key] = payload[key]
        msg["edited_timestamp"] = _now_iso()

    # ------------------------------------------------------------------ interaction helpers

    def _find_command(self, name: str, guild_id: int | None) -> dict[str, Any] | None:
        for scope in ((guild_id, None) if guild_id else (None,)):
            for cmd in self._commands.get(scope, []):
                if cmd["name"] == name and cmd.get("type", 1) == 1:
                    return cmd
        return None

    @staticmethod
    def _option_payloads(options: dict | list | None, command: dict | None) -> list[dict[str, Any]]:
        if options is None:
            return []
        if isinstance(options, list):
            return options
        declared = {o["name"]: o.get("type", 3) for o in (command or {}).get("options", [])}
        converters: dict[int, Callable[[Any], Any]] = {3: str, 4: int, 5: bool, 10: float}
        result = []
        for name, value in options.items():
            kind = declared.get(name) or (5 if isinstance(value, bool) else 4 if isinstance(value, int)
                                          else 10 if isinstance(value, float) else 3)
            convert = converters.get(kind, lambda v: str(v) if isinstance(v, int) else v)
            result.append({"name": name, "type": kind, "value": convert(value)})
        return result

    def _interaction_payload(self, itype: int, data: dict[str, Any], channel_id: int, guild_id: int | None,
                             user: dict[str, Any], *, message: dict | None = None) -> dict[str, Any]:
        iid, token = self._ids.next(), "fake-" + secrets.token_urlsafe(48)
        channel = copy.deepcopy(self._channels.get(channel_id) or {"id": str(channel_id), "type": CH_TEXT})
        payload: dict[str, Any] = {
            "id": str(iid), "application_id": str(self.application_id), "type": itype, "data": data,
            "token": token, "version": 1, "channel_id": str(channel_id), "channel": channel,
            "app_permissions": str(DEFAULT_PERMISSIONS), "locale": "en-US", "entitlements": [],
            "attachment_size_limit": 26214400, "context": 0 if guild_id else 1,
            "authorizing_integration_owners": {"0": str(guild_id)} if guild_id else {"1": user["id"]},
        }
        if guild_id:
            g = self._guilds.get(guild_id, {})
            payload.update(guild_id=str(guild_id), guild_locale="en-US",
                           guild={"id": str(guild_id), "locale": "en-US", "features": []})
            payload["member"] = _member_payload(user, joined_at=g.get("joined_at", _now_iso()),
                                                permissions=g.get("permissions", DEFAULT_PERMISSIONS))
        else:
            payload["user"] = user
        if message is not None:
            payload["message"] = message
        self._interactions[iid] = {
            "id": iid, "token": token, "type": itype, "created": time.monotonic(), "acked": False,
            "response_type": None, "original_id": int(message["id"]) if message else None,
            "followup_ids": [], "channel_id": channel_id, "guild_id": guild_id, "user": user,
            "name": data.get("name"), "loading": False,
        }
        self._tokens[token] = iid
        return payload

    def _interaction_metadata(self, inter: dict[str, Any]) -> dict[str, Any]:
        meta = {"id": str(inter["id"]), "type": inter["type"], "user": inter["user"],
                "authorizing_integration_owners": {}}
        if inter["name"]:
            meta["name"] = inter["name"]
        return meta

    # ------------------------------------------------------------------ gateway (fake loop)

    def _ready_session(self) -> _Session | None:
        with self._lock:
            session = self._current
            return session if session is not None and session.ready and not session.ws.closed else None

    async def _dispatch(self, event: str, data: Any) -> bool:
        """Send a dispatch to the connected bot, honouring its intents. Returns delivered?"""
        session = self._ready_session()
        if session is None:
            raise NotConnected(f"cannot send {event}: no bot connected to the fake gateway")
        needed = self._required_intent(event, data)
        delivered = needed is None or bool(session.intents & needed)
        if delivered and event in ("MESSAGE_CREATE", "MESSAGE_UPDATE"):
            data = self._visible_message(session, data)
        with self._lock:
            self._gateway_events.append((event, data, delivered))
        if delivered:
            await session.dispatch(event, data)
        return delivered

    @staticmethod
    def _required_intent(event: str, data: dict[str, Any]) -> int | None:
        if event.startswith("MESSAGE_REACTION_"):
            return Intents.GUILD_MESSAGE_REACTIONS if data.get("guild_id") else Intents.DIRECT_MESSAGE_REACTIONS
        if event.startswith("MESSAGE_"):
            return Intents.GUILD_MESSAGES if data.get("guild_id") else Intents.DIRECT_MESSAGES
        if event.startswith(("THREAD_", "CHANNEL_")):
            return Intents.GUILDS
        return None

    def _visible_message(self, session: _Session, msg: dict[str, Any]) -> dict[str, Any]:
        """Strip content like Discord does when MESSAGE_CONTENT was not requested."""
        if session.intents & Intents.MESSAGE_CONTENT or not msg.get("guild_id"):
            return msg
        if msg["author"]["id"] == str(self.bot_id):
            return msg
        if any(m["id"] == str(self.bot_id) for m in msg.get("mentions", [])):
            return msg
        stripped = dict(msg, content="", embeds=[], attachments=[], components=[])
        stripped.pop("poll", None)
        return stripped

    async def _echo(self, event: str, msg: dict[str, Any]) -> None:
        """Echo the bot's own (non-ephemeral) message back over the gateway."""
        if not self.echo_bot_messages or msg["flags"] & FLAG_EPHEMERAL:
            return
        with contextlib.suppress(NotConnected):
            await self._dispatch(event, copy.deepcopy(msg))

    async def _gateway_handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        session = _Session(ws=ws, query=dict(request.query))
        self._sessions.add(session)
        try:
            await session.send({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_frame(session, json.loads(msg.data))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._sessions.discard(session)
            with self._lock:
                if self._current is session:
                    self._current = None
        return ws

    async def _on_frame(self, session: _Session, frame: dict[str, Any]) -> None:
        with self._lock:
            self._gateway_frames.append(frame)
        op, data = frame.get("op"), frame.get("d")
        if op == 1:
            await session.send({"op": 11})
        elif op == 2:
            await self._on_identify(session, data)
        elif op == 6:
            await self._on_resume(session, data)
        elif op == 8:
            await self._on_request_members(session, data)

    async def _on_identify(self, session: _Session, data: dict[str, Any]) -> None:
        with self._lock:
            self._identify = copy.deepcopy(data)
        if self.token is not None and data.get("token") != self.token:
            await session.ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        if intents & Intents.PRIVILEGED and not self.allow_privileged_intents:
            await session.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        session.intents, session.session_id = intents, secrets.token_hex(16)
        with self._lock:
            guild_ids = list(self._guilds)
            self._current = session
        await session.dispatch("READY", self._ready_payload(session, data, guild_ids))
        for gid in guild_ids:
            await session.dispatch("GUILD_CREATE", self._guild_create_payload(gid))
        self._mark_connected(session)

    def _ready_payload(self, session: _Session, identify: dict, guild_ids: list[int]) -> dict[str, Any]:
        payload = {
            "v": API_VERSION, "user": dict(self.bot_user, verified=True, mfa_enabled=False),
            "guilds": [{"id": str(g), "unavailable": True} for g in guild_ids],
            "session_id": session.session_id, "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [], "relationships": [], "presences": [], "guild_join_requests": [],
            "geo_ordered_rtc_regions": [], "user_settings": {}, "_trace": ["fake-discord"],
        }
        if identify.get("shard"):
            payload["shard"] = identify["shard"]
        return payload

    def _mark_connected(self, session: _Session) -> None:
        session.ready = True
        with self._cond:
            self._resumable[session.session_id] = session
            self._connections += 1
            self._cond.notify_all()

    async def _on_resume(self, session: _Session, data: dict[str, Any]) -> None:
        with self._lock:
            old = self._resumable.get(data.get("session_id", ""))
        if old is None:
            await session.send({"op": 9, "d": False})
            return
        session.intents, session.session_id, session.seq = old.intents, old.session_id, old.seq
        with self._lock:
            self._current = session
        await session.dispatch("RESUMED", {"_trace": ["fake-discord"]})
        self._mark_connected(session)

    async def _on_request_members(self, session: _Session, data: dict[str, Any]) -> None:
        gid = int(data["guild_id"])
        with self._lock:
            guild = self._guilds.get(gid)
            members = [_member_payload(self._users[u], joined_at=guild["joined_at"]) for u in guild["members"]] \
                if guild else []
        chunk = {"guild_id": str(gid), "members": members, "chunk_index": 0, "chunk_count": 1, "not_found": []}
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await session.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    # ------------------------------------------------------------------ REST plumbing

    @web.middleware
    async def _rest_middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX):
            return await handler(request)
        call = Call(request.method, request.path[len(API_PREFIX):] or "/", dict(request.query), None)
        try:
            call.json, call.files = await self._read_body(request)
            request[PAYLOAD_KEY], request[FILES_KEY] = call.json, call.files
            # (aiohttp responses are MutableMappings, empty ones are falsy: compare with None)
            response = self._take_failure(call.method, call.path)
            if response is None:
                response = self._check_auth(request, call.path)
            bucket_headers: dict[str, str] = {}
            if response is None:
                response, bucket_headers = self._take_bucket(call.method, call.path)
            if response is None:
                response = await handler(request)
                response.headers.update(bucket_headers)
        except _ApiError as exc:
            response = _json_response(exc.body, exc.status)
        except Exception:  # noqa: BLE001 - a bug in the fake should show as a 500, not hang the bot
            log.exception("FakeDiscord handler crashed for %s %s", call.method, call.path)
            response = _json_response({"message": "500: Internal Server Error (fake crashed)", "code": 0}, 500)
        self._record(call, response)
        return response

    def _record(self, call: Call, response: web.StreamResponse) -> None:
        call.status = response.status
        body = getattr(response, "body", None)
        if isinstance(body, bytes) and body:
            with contextlib.suppress(ValueError):
                call.response = json.loads(body)
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()

    def _check_auth(self, request: web.Request, path: str) -> web.Response | None:
        if self.token is None or path.startswith(("/interactions/", "/webhooks/")):
            return None
        if request.headers.get("Authorization") == f"Bot {self.token}":
            return None
        return _json_response({"message": "401: Unauthorized", "code": 0}, 401)

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[Any, list[dict[str, Any]]]:
        if not request.body_exists:
            return None, []
        if request.content_type == "multipart/form-data":
            payload, files = None, []
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":
                    payload = json.loads(await part.text())
                else:
                    data = await part.read()
                    files.append({"field": part.name, "filename": part.filename, "data": bytes(data),
                                  "content_type": part.headers.get("Content-Type")})
            return payload, files
        raw = await request.read()
        if request.content_type == JSON_TYPE:
            return json.loads(raw or b"null"), []
        return raw.decode(errors="replace"), []

    def _add_routes(self, r: web.UrlDispatcher) -> None:
        p, snow = API_PREFIX, r"{%s:\d+}"
        cid, mid, gid, app = snow % "channel_id", snow % "message_id", snow % "guild_id", snow % "app_id"
        r.add_get(GATEWAY_PATH, self._gateway_handler)
        r.add_get(f"{p}/gateway", self._get_gateway)
        r.add_get(f"{p}/gateway/bot", self._get_gateway)
        r.add_get(f"{p}/users/@me", self._get_me)
        r.add_post(f"{p}/users/@me/channels", self._create_dm)
        r.add_get(f"{p}/users/{snow % 'user_id'}", self._get_user)
        r.add_get(f"{p}/oauth2/applications/@me", self._get_application)
        r.add_get(f"{p}/applications/@me", self._get_application)
        r.add_get(f"{p}/channels/{cid}", self._get_channel)
        r.add_get(f"{p}/channels/{cid}/messages", self._get_messages)
        r.add_post(f"{p}/channels/{cid}/messages", self._create_message)
        r.add_get(f"{p}/channels/{cid}/messages/{mid}", self._get_message)
        r.add_patch(f"{p}/channels/{cid}/messages/{mid}", self._edit_message)
        r.add_delete(f"{p}/channels/{cid}/messages/{mid}", self._delete_message)
        r.add_post(f"{p}/channels/{cid}/typing", self._typing)
        r.add_route("*", f"{p}/channels/{cid}/messages/{mid}/reactions/{{emoji}}/@me", self._reaction)
        r.add_post(f"{p}/channels/{cid}/messages/{mid}/threads", self._start_thread_from_message)
        r.add_post(f"{p}/channels/{cid}/threads", self._start_thread)
        r.add_route("*", f"{p}/channels/{cid}/thread-members/@me", self._join_thread)
        for scope in (f"{p}/applications/{app}/commands", f"{p}/applications/{app}/guilds/{gid}/commands"):
            r.add_get(scope, self._get_commands)
            r.add_put(scope, self._put_commands)
        r.add_post(f"{p}/interactions/{snow % 'interaction_id'}/{{token}}/callback", self._interaction_callback)
        r.add_post(f"{p}/webhooks/{app}/{{token}}", self._create_followup)
        r.add_route("*", f"{p}/webhooks/{app}/{{token}}/messages/{{message_id}}", self._webhook_message)
        r.add_route("*", f"{p}/{{tail:.*}}", self._not_found)

    # ------------------------------------------------------------------ REST handlers

    def _channel_or_404(self, request: web.Request) -> tuple[int, dict[str, Any]]:
        channel_id = int(request.match_info["channel_id"])
        with self._lock:
            channel = self._channels.get(channel_id)
        if channel is None:
            raise _ApiError(404, 10003, "Unknown Channel")
        return channel_id, channel

    def _message_or_404(self, request: web.Request) -> dict[str, Any]:
        channel_id, _ = self._channel_or_404(request)
        with self._lock:
            msg = self._messages.get(int(request.match_info["message_id"]))
        if msg is None or msg["channel_id"] != str(channel_id):
            raise _ApiError(404, 10008, "Unknown Message")
        return msg

    async def _not_found(self, request: web.Request) -> web.Response:
        log.warning("FakeDiscord: unhandled %s %s", request.method, request.path)
        return _json_response({"message": "404: Not Found", "code": 0}, 404)

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return _json_response({
            "url": self.gateway_url, "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 86400000, "max_concurrency": 1},
        })

    async def _get_me(self, request: web.Request) -> web.Response:
        return _json_response(dict(self.bot_user, verified=True, mfa_enabled=False))

    async def _get_user(self, request: web.Request) -> web.Response:
        with self._lock:
            user = self._users.get(int(request.match_info["user_id"]))
        if user is None:
            raise _ApiError(404, 10013, "Unknown User")
        return _json_response(user)

    async def _get_application(self, request: web.Request) -> web.Response:
        return _json_response({
            "id": str(self.application_id), "name": self.bot_user["username"], "description": "",
            "icon": None, "bot_public": True, "bot_require_code_grant": False, "verify_key": "0" * 64,
            "owner": self._users[self.default_user_id], "team": None, "flags": 0, "bot": self.bot_user,
            "redirect_uris": [], "interactions_endpoint_url": None, "tags": [],
        })

    async def _create_dm(self, request: web.Request) -> web.Response:
        recipient = int(request[PAYLOAD_KEY]["recipient_id"])
        with self._lock:
            if recipient not in self._users:
                raise _ApiError(400, 50033, "Invalid Recipient(s)")
        return _json_response(self.channel(self.open_dm(recipient)))

    async def _get_channel(self, request: web.Request) -> web.Response:
        _, channel = self._channel_or_404(request)
        return _json_response(channel)

    async def _get_messages(self, request: web.Request) -> web.Response:
        channel_id, _ = self._channel_or_404(request)
        limit = int(request.query.get("limit", 50))
        with self._lock:
            msgs = [m for m in self._messages.values() if m["channel_id"] == str(channel_id)]
        return _json_response(sorted(msgs, key=lambda m: int(m["id"]), reverse=True)[:limit])

    async def _get_message(self, request: web.Request) -> web.Response:
        return _json_response(self._message_or_404(request))

    async def _create_message(self, request: web.Request) -> web.Response:
        channel_id, _ = self._channel_or_404(request)
        payload, files = request[PAYLOAD_KEY] or {}, request[FILES_KEY]
        _validate_message(payload, files, creating=True)
        with self._lock:
            again = self._same_nonce(payload)
            if again is not None:  # Discord returns the message already created, creates none
                return _json_response(again)
            msg = self._bot_message_from_payload(channel_id, payload, files)
            if payload.get("nonce") is not None:
                msg["nonce"] = payload["nonce"]
                self._nonces[str(payload["nonce"])] = (time.monotonic(), int(msg["id"]))
            self._store_message(msg, by_bot=True)
        await self._echo("MESSAGE_CREATE", msg)
        return _json_response(msg)

    async def _edit_message(self, request: web.Request) -> web.Response:
        msg = self._message_or_404(request)
        if msg["author"]["id"] != str(self.bot_id):
            raise _ApiError(403, 50005, "Cannot edit a message authored by another user")
        payload = request[PAYLOAD_KEY] or {}
        _validate_message(payload, request[FILES_KEY], creating=False)
        with self._lock:
            self._apply_edit(msg, payload)
        await self._echo("MESSAGE_UPDATE", msg)
        return _json_response(msg)

    async def _delete_message(self, request: web.Request) -> web.Response:
        msg = self._message_or_404(request)
        with self._lock:
            self._messages.pop(int(msg["id"]), None)
        return _no_content()

    async def _typing(self, request: web.Request) -> web.Response:
        self._channel_or_404(request)
        return _no_content()

    async def _reaction(self, request: web.Request) -> web.Response:
        msg = self._message_or_404(request)
        emoji = request.match_info["emoji"]
        with self._lock:
            reactions = msg.setdefault("reactions", [])
            existing = next((r for r in reactions if r["emoji"]["name"] == emoji), None)
            if request.method == "PUT" and existing is None:
                reactions.append({"emoji": {"id": None, "name": emoji}, "count": 1, "me": True})
            elif request.method == "DELETE" and existing is not None:
                reactions.remove(existing)
        return _no_content()

    async def _start_thread_from_message(self, request: web.Request) -> web.Response:
        channel_id, channel = self._channel_or_404(request)
        msg = self._message_or_404(request)
        if channel["type"] != CH_TEXT:
            raise _ApiError(400, 50024, "Cannot execute action on this channel type")
        payload = request[PAYLOAD_KEY] or {}
        with self._lock:
            if int(msg["id"]) in self._channels:
                raise _ApiError(400, 160004, "A thread has already been created for this message")
            thread = self._new_bot_thread(int(msg["id"]), channel, payload)
            msg["thread"] = thread
        await self._announce_thread(thread)
        return _json_response(thread)

    async def _start_thread(self, request: web.Request) -> web.Response:
        _, channel = self._channel_or_404(request)
        if channel["type"] != CH_TEXT:
            raise _ApiError(400, 50024, "Cannot execute action on this channel type")
        payload = request[PAYLOAD_KEY] or {}
        with self._lock:
            thread = self._new_bot_thread(self._ids.next(), channel, payload,
                                          private=payload.get("type") == CH_PRIVATE_THREAD)
        await self._announce_thread(thread)
        return _json_response(thread)

    def _new_bot_thread(self, thread_id: int, parent: dict, payload: dict, *, private: bool = False) -> dict:
        name = str(payload.get("name") or "")
        if not 1 <= len(name) <= 100:
            raise _form_error({"name": _field_error("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")})
        thread = self._thread_payload(thread_id, parent, name, self.bot_id, private=private,
                                      auto_archive_duration=int(payload.get("auto_archive_duration") or 1440))
        thread["rate_limit_per_user"] = payload.get("rate_limit_per_user") or 0
        thread["member"] = {"id": str(thread_id), "user_id": str(self.bot_id), "join_timestamp": _now_iso(),
                            "flags": 1}
        self._channels[thread_id] = thread
        return copy.deepcopy(thread)

    async def _announce_thread(self, thread: dict[str, Any]) -> None:
        with contextlib.suppress(NotConnected):
            await self._dispatch("THREAD_CREATE", dict(thread, newly_created=True))

    async def _join_thread(self, request: web.Request) -> web.Response:
        self._channel_or_404(request)
        return _no_content()

    async def _get_commands(self, request: web.Request) -> web.Response:
        gid = request.match_info.get("guild_id")
        return _json_response(self.commands(int(gid) if gid else None))

    async def _put_commands(self, request: web.Request) -> web.Response:
        gid_text = request.match_info.get("guild_id")
        gid = int(gid_text) if gid_text else None
        if int(request.match_info["app_id"]) != self.application_id:
            raise _ApiError(403, 50001, "Missing Access")
        with self._lock:
            old = {c["name"]: c for c in self._commands.get(gid, [])}
            stored = [self._stored_command(cmd, old.get(cmd["name"]), gid) for cmd in request[PAYLOAD_KEY] or []]
            self._commands[gid] = stored
        return _json_response(copy.deepcopy(stored))

    def _stored_command(self, cmd: dict[str, Any], old: dict | None, guild_id: int | None) -> dict[str, Any]:
        stored = {
            "type": 1, "description": "", "options": [], "default_member_permissions": None, "nsfw": False,
            **cmd, "id": old["id"] if old else str(self._ids.next()),
            "application_id": str(self.application_id), "version": str(self._ids.next()),
        }
        if guild_id is not None:
            stored["guild_id"] = str(guild_id)
        return stored

    # ------------------------------------------------------------------ interaction handlers

    def _interaction_by_token(self, token: str) -> dict[str, Any]:
        with self._lock:
            iid = self._tokens.get(token)
            return self._interactions[iid] if iid is not None else {}

    async def _interaction_callback(self, request: web.Request) -> web.Response:
        iid = int(request.match_info["interaction_id"])
        with self._lock:
            inter = self._interactions.get(iid)
        if inter is None or inter["token"] != request.match_info["token"]:
            raise _ApiError(404, 10062, "Unknown interaction")
        timeout = self.interaction_ack_timeout
        if not inter["acked"] and timeout is not None and time.monotonic() - inter["created"] > timeout:
            raise _ApiError(404, 10062, "Unknown interaction")
        if inter["acked"]:
            raise _ApiError(400, 40060, "Interaction has already been acknowledged.")
        body = request[PAYLOAD_KEY] or {}
        rtype, data = int(body.get("type", 0)), body.get("data") or {}
        with self._lock:
            message, event = self._apply_callback(inter, rtype, data, request[FILES_KEY])
        if message is not None and event is not None:
            await self._echo(event, message)
        return _json_response(self._callback_response(inter, rtype, message))

    def _apply_callback(self, inter: dict, rtype: int, data: dict, files: list[dict]) -> tuple[dict | None, str | None]:
        """Update state for an interaction response; returns (message, gateway event) if any."""
        inter.update(acked=True, response_type=rtype)
        if rtype == 4:  # CHANNEL_MESSAGE_WITH_SOURCE
            _validate_message(data, files, creating=True)
            msg = self._interaction_message(inter, data, files)
            self._store_message(msg, by_bot=True)
            inter["original_id"] = int(msg["id"])
            return msg, "MESSAGE_CREATE"
        if rtype == 5:  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE ("thinking")
            msg = self._interaction_message(inter, {"flags": int(data.get("flags") or 0) | FLAG_LOADING}, [])
            self._store_message(msg, by_bot=True)
            inter.update(original_id=int(msg["id"]), loading=True)
            return msg, "MESSAGE_CREATE"
        if rtype == 7 and inter["original_id"] in self._messages:  # UPDATE_MESSAGE
            _validate_message(data, files, creating=False)
            msg = self._messages[inter["original_id"]]
            self._apply_edit(msg, data)
            return msg, "MESSAGE_UPDATE"
        return None, None  # 1 PONG, 6 DEFERRED_UPDATE_MESSAGE, 8 AUTOCOMPLETE, 9 MODAL

    def _interaction_message(self, inter: dict, data: dict, files: list[dict]) -> dict[str, Any]:
        msg = self._bot_message_from_payload(inter["channel_id"], data, files)
        msg.update(webhook_id=str(self.application_id), application_id=str(self.application_id),
                   interaction_metadata=self._interaction_metadata(inter))
        if inter["type"] == 2:
            msg["type"] = MSG_CHAT_INPUT
        return msg

    def _callback_response(self, inter: dict, rtype: int, message: dict | None) -> dict[str, Any]:
        """Body for ``?with_response=1`` (discord.py reads interaction.id and resource.message)."""
        info: dict[str, Any] = {"id": str(inter["id"]), "type": inter["type"]}
        resource: dict[str, Any] = {"type": rtype}
        if message is not None:
            info.update(response_message_id=message["id"],
                        response_message_loading=bool(message["flags"] & FLAG_LOADING),
                        response_message_ephemeral=bool(message["flags"] & FLAG_EPHEMERAL))
            resource["message"] = copy.deepcopy(message)
        return {"interaction": info, "resource": resource}

    def _webhook_interaction(self, request: web.Request) -> dict[str, Any]:
        inter = self._interaction_by_token(request.match_info["token"])
        if int(request.match_info["app_id"]) != self.application_id or not inter or not inter["acked"]:
            raise _ApiError(404, 10015, "Unknown Webhook")
        return inter

    async def _create_followup(self, request: web.Request) -> web.Response:
        inter = self._webhook_interaction(request)
        payload, files = request[PAYLOAD_KEY] or {}, request[FILES_KEY]
        _validate_message(payload, files, creating=True)
        with self._lock:
            if inter["loading"]:  # the first follow-up after a defer replaces the "thinking" message
                msg = self._messages[inter["original_id"]]
                keep_flags = msg["flags"] & FLAG_EPHEMERAL
                self._apply_edit(msg, {**payload, "flags": keep_flags})
                msg["attachments"] = self._attachments(files)
                msg["edited_timestamp"] = None
                inter["loading"], event = False, "MESSAGE_UPDATE"
            else:
                msg = self._interaction_message(inter, payload, files)
                self._store_message(msg, by_bot=True)
                inter["followup_ids"].append(int(msg["id"]))
                event = "MESSAGE_CREATE"
        await self._echo(event, msg)
        if request.query.get("wait") in ("0", "false", "False"):
            return _no_content()
        return _json_response(msg)

    async def _webhook_message(self, request: web.Request) -> web.Response:
        inter = self._webhook_interaction(request)
        raw_id = request.match_info["message_id"]
        with self._lock:
            mid = inter["original_id"] if raw_id == "@original" else int(raw_id) if raw_id.isdigit() else None
            msg = self._messages.get(mid) if mid is not None else None
        if msg is None:
            raise _ApiError(404, 10008, "Unknown Message")
        if request.method == "GET":
            return _json_response(msg)
        if request.method == "DELETE":
            with self._lock:
                self._messages.pop(int(msg["id"]), None)
            return _no_content()
        if request.method != "PATCH":
            raise _ApiError(405, 0, "405: Method Not Allowed")
        payload = request[PAYLOAD_KEY] or {}
        _validate_message(payload, request[FILES_KEY], creating=False)
        with self._lock:
            if msg["flags"] & FLAG_LOADING:
                payload = {**payload, "flags": msg["flags"] & ~FLAG_LOADING}
                inter["loading"] = False
            self._apply_edit(msg, payload)
        await self._echo("MESSAGE_UPDATE", msg)
        return _json_response(msg)
