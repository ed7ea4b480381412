"""Discord's delivery port for the question lifecycle (core/questions/ports.py), over the REST API.

Plain HTTPS calls with the bot token, no gateway connection: any worker can deliver an answer,
whichever process accepted the question, so an answer survives a gateway restart mid-answer.

``Where`` fields: ``channel`` (a DM or thread: answer there); ``channel`` + ``message`` +
``thread_name`` (a mention in a text channel: the placeholder opens a thread on the message);
``application`` + ``token`` (``/ask``: the deferred "thinking" response is the placeholder).
A placeholder is ``<channel id>/<message id>``, or ``@original`` for an interaction.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import httpx

from adapters.discord.events import PLATFORM
from adapters.discord.feedback import custom_id
from adapters.discord.render import EMBED_DESCRIPTION_LIMIT, split_message, sources_embed
from core.questions.values import Apology, Notice, NoticeKind, Reply, Where
from core.types import Answer

log = logging.getLogger(__name__)

PLACEHOLDER = "🔎 Searching the docs…"
ORIGINAL = "@original"
TIMEOUT_S = 15
_NO_PINGS = {"parse": []}  # documents may contain @everyone


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
        first, *rest = render(reply)
        try:
            self._call("PATCH", self._message_path(where, placeholder), {**first, "allowed_mentions": _NO_PINGS})
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 404:  # deleted by someone: post instead
                return False
            raise
        self._post_rest(where, placeholder, rest)
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

    def _post_rest(self, where: Where, placeholder: str, payloads: list[dict[str, Any]]) -> None:
        if where.get("token"):
            path = f"webhooks/{where['application']}/{where['token']}"
        else:
            path = f"channels/{placeholder.split('/', 1)[0]}/messages"
        for index, payload in enumerate(payloads, start=1):
            if self._once(f"part:{placeholder}:{index}"):
                self._call("POST", path, {**payload, "allowed_mentions": _NO_PINGS})

    def _message_path(self, where: Where, placeholder: str) -> str:
        if placeholder == ORIGINAL:
            return f"webhooks/{where['application']}/{where['token']}/messages/@original"
        channel, message = placeholder.split("/", 1)
        return f"channels/{channel}/messages/{message}"

    def _call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._http.request(method, path, json=body)
        if response.status_code == 429:  # Discord says how long to wait; the job's retry waits longer
            log.warning("discord.rate_limited path=%s retry_after=%s", path, response.headers.get("Retry-After"))
        response.raise_for_status()
        return response.json() if response.content else {}

    def close(self) -> None:
        self._http.close()


__all__ = ["DiscordDelivery", "EMBED_DESCRIPTION_LIMIT", "render"]
