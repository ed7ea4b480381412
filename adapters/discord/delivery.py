"""Discord's delivery port for the question lifecycle (core/questions/ports.py), over the REST API.

Plain HTTPS calls with the bot token, no gateway connection: any worker can deliver an answer,
whichever process accepted the question, so an answer survives a gateway restart mid-answer.

``Where`` fields: ``channel`` (a DM or thread: answer there); ``channel`` + ``message`` +
``thread_name`` (a mention in a text channel: the placeholder opens a thread on the message);
``application`` + ``token`` (``/ask``: the deferred "thinking" response is the placeholder).
A placeholder is ``<channel id>/<message id>``, or ``@original`` for an interaction; an answer
streamed past 2,000 characters adds its continuation messages: ``<channel>/<message>+<id>+<id>``
(``reference``/``parse_reference``), so a recovery edits them instead of posting them again.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

import httpx

from adapters.discord.events import PLATFORM
from adapters.discord.feedback import custom_id
from adapters.discord.render import EMBED_DESCRIPTION_LIMIT, split_message, sources_embed
from core.answers.edit_buffer import EditBuffer
from core.questions.values import Apology, Notice, NoticeKind, Reply, Where
from core.types import Answer

log = logging.getLogger(__name__)

PLACEHOLDER = "🔎 Searching the docs…"
ORIGINAL = "@original"
TIMEOUT_S = 15
_NO_PINGS = {"parse": []}  # documents may contain @everyone
EDIT_INTERVAL_S = 1.2  # Discord allows about 5 message writes per 5 s per channel
MAX_RATE_WAIT_S = 30.0


def render(reply: Reply) -> list[dict[str, Any]]:
    """Message payloads, in order; the last one carries the sources and the feedback buttons."""
    if isinstance(reply, Answer):
        payloads: list[dict[str, Any]] = [{"content": part} for part in split_message(reply.text)]
        embed = sources_embed(reply.citations, reply.grounded)
        if embed is not None:
            payloads[-1]["embeds"] = [embed.to_dict()]
        if reply.message_id is not None:
            payloads[-1]["components"] = [feedback_row(reply.message_id)]
        return payloads
    if isinstance(reply, Apology):
        text = (f"Sorry, I couldn't answer this: {reply.reason}. Please try again in a few minutes. "
                f"(reference `{reply.reference}`)")
        return [{"content": text}]
    assert isinstance(reply, Notice)
    return [{"content": f"⏳ {reply.text}" if reply.kind is NoticeKind.LIMIT else reply.text}]


def feedback_row(answer_id: int) -> dict[str, Any]:
    """The 👍/👎 buttons (adapters/discord/feedback.py rebuilds them from their custom_id)."""
    def button(score: int, emoji: str, label: str) -> dict[str, Any]:
        return {"type": 2, "style": 2, "emoji": {"name": emoji}, "label": label, "custom_id": custom_id(score, answer_id)}

    return {"type": 1, "components": [button(1, "👍", "Helpful"), button(-1, "👎", "Not helpful")]}


class DiscordDelivery:
    platform = PLATFORM

    def __init__(self, token: str, api_base_url: str, *, once: Callable[[str], bool]) -> None:
        """``once(key)`` is True the first time a key is claimed (core/questions/claims.py): the
        extra parts of a long answer are posted once however often a delivery is retried."""
        self._http = httpx.Client(
            base_url=api_base_url.rstrip("/") + "/",
            headers={"Authorization": f"Bot {token}", "User-Agent": "DocRag (https://example.invalid, 1)"},
            timeout=TIMEOUT_S,
        )
        self._once = once
        self.buckets = Buckets()

    def post_placeholder(self, where: Where) -> str | None:
        if where.get("token"):
            return ORIGINAL  # the door deferred the interaction: Discord shows "thinking…"
        channel = where["channel"]
        if where.get("message"):  # a mention in a text channel: answer in a thread on it
            channel = self._open_thread(where) or channel
        body = {"content": PLACEHOLDER, "allowed_mentions": _NO_PINGS}
        if channel == where["channel"] and where.get("message"):
            body["message_reference"] = {"message_id": where["message"], "fail_if_not_exists": False}
        message = self._call("POST", f"channels/{channel}/messages", body)
        return f"{channel}/{message['id']}"

    def replace(self, where: Where, placeholder: str, reply: Reply) -> bool:
        first_ref, more = parse_reference(placeholder)
        first, *rest = render(reply)
        try:
            self._call("PATCH", self._message_path(where, first_ref), {**first, "allowed_mentions": _NO_PINGS})
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 404:  # deleted by someone: post instead
                return False
            raise
        self._put_rest(where, first_ref, more, rest)
        return True

    def post(self, where: Where, reply: Reply) -> None:
        """A new message: in the interaction, else in the thread opened on the question's message
        (it has the message's id), else in the channel."""
        if where.get("token"):
            path = f"webhooks/{where['application']}/{where['token']}"
        elif where.get("message") and self._exists(where["message"]):
            path = f"channels/{where['message']}/messages"
        else:
            path = f"channels/{where['channel']}/messages"
        for payload in render(reply):
            self._call("POST", path, {**payload, "allowed_mentions": _NO_PINGS})

    def _exists(self, channel: str) -> bool:
        return self._http.get(f"channels/{channel}").status_code == 200

    # -- steps ------------------------------------------------------------------------------------
    def _open_thread(self, where: Where) -> str | None:
        try:
            thread = self._call("POST", f"channels/{where['channel']}/messages/{where['message']}/threads",
                                {"name": where.get("thread_name") or "DocRag answer", "auto_archive_duration": 1440})
        except httpx.HTTPStatusError as exc:
            body = exc.response.json() if exc.response.content else {}
            if body.get("code") == 160004:  # a thread exists on this message already (a retry): use it
                return where["message"]
            log.warning("discord.thread.create_failed message=%s status=%s", where["message"], exc.response.status_code)
            return None
        return str(thread["id"])

    def _put_rest(self, where: Where, first_ref: str, more: list[str], payloads: list[dict[str, Any]]) -> None:
        """The continuation parts: a message the stream already posted is edited; another is
        posted once (its claim), with a nonce Discord dedupes, so a message posted by a stream that
        died before remembering it is returned, not doubled. Streamed parts the finished answer no
        longer needs (a retried model wrote it shorter) are deleted."""
        for index, payload in enumerate(payloads, start=1):
            body = {**payload, "allowed_mentions": _NO_PINGS}
            if index <= len(more) and self._edit_unless_gone(self._part_path(where, first_ref, more[index - 1]), body):
                continue
            if self._once(f"part:{first_ref}:{index}"):
                posted = self._create_part(where, first_ref, index, body)
                if posted.get("content") != body["content"] or not posted.get("components") and body.get("components"):
                    self._call("PATCH", self._part_path(where, first_ref, str(posted["id"])), body)
        for extra in more[len(payloads):]:
            self._edit_unless_gone(self._part_path(where, first_ref, extra), None, method="DELETE")

    def _edit_unless_gone(self, path: str, body: dict[str, Any] | None, *, method: str = "PATCH") -> bool:
        """False when the message is gone (someone deleted it): the part is posted again instead."""
        try:
            self._call(method, path, body)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 404:
                return False
            raise
        return True

    def _create_part(self, where: Where, first_ref: str, index: int, body: dict[str, Any], *,
                     wait: bool = True) -> dict[str, Any]:
        """Post continuation ``index`` of the answer whose first message is ``first_ref``."""
        if where.get("token"):  # a follow-up of the interaction (no nonce there); wait=true: its body
            return self._call("POST", f"webhooks/{where['application']}/{where['token']}?wait=true", body, wait=wait)
        channel, message = first_ref.split("/", 1)
        nonced = {**body, "nonce": f"{message}.{index}", "enforce_nonce": True}  # at most 25 characters
        return self._call("POST", f"channels/{channel}/messages", nonced, wait=wait)

    def _part_path(self, where: Where, first_ref: str, message_id: str) -> str:
        if where.get("token"):
            return f"webhooks/{where['application']}/{where['token']}/messages/{message_id}"
        return f"channels/{first_ref.split('/', 1)[0]}/messages/{message_id}"

    def _message_path(self, where: Where, placeholder: str) -> str:
        if placeholder == ORIGINAL:
            return f"webhooks/{where['application']}/{where['token']}/messages/@original"
        channel, message = placeholder.split("/", 1)
        return f"channels/{channel}/messages/{message}"

    def open_stream(self, where: Where, placeholder: str | None, remember: Callable[[str], None]) -> DiscordLive | None:
        """Edit the placeholder as the answer grows; continuation messages it posts are remembered
        in the placeholder's reference (``first+id+id``)."""
        if placeholder is None:
            return None
        return DiscordLive(self, where, placeholder, remember=remember)

    def edit_if_free(self, path: str, content: str) -> bool:
        """One live edit, only if the route's bucket has room now (else False: the text waits)."""
        if self.buckets.wait_s(path) > 0:
            return False
        try:
            self._call("PATCH", path, {"content": content, "allowed_mentions": _NO_PINGS}, wait=False)
        except (httpx.HTTPError, RateLimitedNow) as exc:
            log.info("discord.live_edit_skipped error=%s", type(exc).__name__)
            return False
        return True

    def post_part_if_free(self, where: Where, first_ref: str, index: int, content: str) -> dict[str, Any] | None:
        """A live continuation message, only if the bucket has room now: the message Discord
        returns (one posted earlier with the same nonce, if any), or None."""
        try:
            return self._create_part(where, first_ref, index, {"content": content, "allowed_mentions": _NO_PINGS},
                                     wait=False)
        except (httpx.HTTPError, RateLimitedNow) as exc:
            log.info("discord.live_part_skipped error=%s", type(exc).__name__)
            return None

    def _call(self, method: str, path: str, body: dict[str, Any] | None, *, wait: bool = True) -> dict[str, Any]:
        """One REST call within Discord's rate limits: it waits while the route's bucket is empty
        (``X-RateLimit-Remaining``/``-Reset-After`` of the last reply, as discord.py does) and on a 429
        for its ``Retry-After``, a few times; ``wait=False`` raises RateLimitedNow instead."""
        for _ in range(4):
            delay = self.buckets.wait_s(path)
            if delay > 0:
                if not wait:
                    raise RateLimitedNow(path)
                time.sleep(min(delay, MAX_RATE_WAIT_S))
            response = self._http.request(method, path, json=body)
            self.buckets.learn(path, response)
            if response.status_code != 429:
                response.raise_for_status()
                return response.json() if response.content else {}
            log.warning("discord.rate_limited path=%s retry_after=%s", path, response.headers.get("Retry-After"))
            if not wait:
                raise RateLimitedNow(path)
            time.sleep(min(float(response.headers.get("Retry-After") or 1), MAX_RATE_WAIT_S))
        response.raise_for_status()  # still limited: the job's retry comes back later
        return {}

    def close(self) -> None:
        self._http.close()


class RateLimitedNow(Exception):
    """A call that would have to wait for its rate-limit bucket (live edits skip instead)."""


class Buckets:
    """What Discord's last reply on each route said about its bucket (the ``X-RateLimit-*``
    headers). Routes are keyed by channel (or webhook), Discord's major parameter for messages."""

    def __init__(self) -> None:
        self._free_at: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(path: str) -> str:
        path = path.split("?", 1)[0]
        return "/".join(path.split("/")[:3 if path.startswith("webhooks/") else 2])

    def wait_s(self, path: str) -> float:
        with self._lock:
            return max(0.0, self._free_at.get(self._key(path), 0.0) - time.monotonic())

    def learn(self, path: str, response: httpx.Response) -> None:
        headers = response.headers
        remaining, reset_after = headers.get("X-RateLimit-Remaining"), headers.get("X-RateLimit-Reset-After")
        if response.status_code == 429:
            remaining, reset_after = "0", headers.get("Retry-After") or reset_after
        if remaining is None or reset_after is None:
            return
        with self._lock:
            key = self._key(path)
            if int(float(remaining)) <= 0:
                self._free_at[key] = time.monotonic() + float(reset_after)
            else:
                self._free_at.pop(key, None)


def reference(first_ref: str, more: list[str]) -> str:
    """A delivery's stored reference: the first message, then the continuation messages' ids."""
    return "+".join([first_ref, *more])


def parse_reference(placeholder: str) -> tuple[str, list[str]]:
    first_ref, *more = placeholder.split("+")
    return first_ref, more


class DiscordLive:
    """The lifecycle's live reply on Discord: the answer's messages edited as it grows, at most
    once per ``EDIT_INTERVAL_S`` and only while the bucket has room. The text is split as the
    finished answer is (``split_message``: paragraph boundaries, code fences closed and reopened),
    so past 2,000 characters the first message is cut at a paragraph and the text goes on in a
    second one, posted live and remembered (``remember``) before more is shown. The finished answer
    is put in place by the lifecycle (``replace``: the final text of every message, the sources
    embed and the buttons on the last)."""

    def __init__(self, port: DiscordDelivery, where: Where, placeholder: str, *,
                 remember: Callable[[str], None] = lambda _reference: None,
                 interval_s: float = EDIT_INTERVAL_S) -> None:
        self.port, self.where, self.remember = port, where, remember
        self.first_ref, self.more = parse_reference(placeholder)
        self.shown: list[str] = []  # what each message shows now
        self.edits = 0
        self.buffer = EditBuffer(self._show, interval_s=interval_s)

    def add(self, piece: str) -> None:
        self.buffer.add(piece)

    def _show(self, _new: str, full: str) -> bool:
        """Bring every message up to ``full``'s split, in order: a part waits for the one before it
        (so no text is shown twice); False when some of it must wait for the bucket."""
        for index, part in enumerate(split_message(full)):
            if index < len(self.shown) and self.shown[index] == part:
                continue
            self.edits += 1
            if not self._show_part(index, part):
                return False
            self.shown[index:index + 1] = [part]
        return True

    def _show_part(self, index: int, part: str) -> bool:
        if index == 0:
            return self.port.edit_if_free(self.port._message_path(self.where, self.first_ref), part)
        if index <= len(self.more):
            path = self.port._part_path(self.where, self.first_ref, self.more[index - 1])
            return self.port.edit_if_free(path, part)
        posted = self.port.post_part_if_free(self.where, self.first_ref, index, part)
        if posted is None:
            return False
        self.more.append(str(posted["id"]))
        self.remember(reference(self.first_ref, self.more))  # a recovery edits it, never posts it again
        if posted.get("content") != part:  # Discord returned the one a dead stream posted (its nonce)
            return self.port.edit_if_free(self.port._part_path(self.where, self.first_ref, self.more[-1]), part)
        return True

    def finish(self, reply: Reply) -> bool:
        return False  # the lifecycle's replace writes the finished answer (one PATCH per message)


__all__ = ["DiscordDelivery", "EMBED_DESCRIPTION_LIMIT", "parse_reference", "reference", "render"]
