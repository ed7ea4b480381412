"""Raw Slack payloads -> small values the rest of the adapter works with.

One function per event type, chosen from a dispatch table (the opsdroid pattern): everything
about Slack's payload shapes lives here, and everything downstream sees a ``SlackQuestion``.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from core.types import SessionKey

PLATFORM = "slack"
# Subtypes that are still a person writing a message; every other one (edits, deletions, joins,
# bot messages...) is not a question.
_USER_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})


@dataclass(frozen=True)
class SlackQuestion:
    """A message that may be a question for DocRag, with where to answer it."""

    team_id: str
    channel: str
    user: str
    text: str
    ts: str  # the message itself
    thread_ts: str  # the conversation: the thread it is in, or the thread it starts
    event_id: str = ""
    enterprise_id: str | None = None
    mentioned: bool = False  # the text mentions the bot
    is_dm: bool = False
    in_thread: bool = False  # a reply inside an existing thread
    assistant: bool = False  # in a thread of Slack's AI-app container (adapters/slack/assistant.py)

    @property
    def key(self) -> SessionKey:
        return SessionKey(PLATFORM, self.team_id, self.channel, self.thread_ts, self.user)

    @property
    def message_key(self) -> str:
        """The message, whichever delivery (retry, app_mention or message event) brought it."""
        return f"msg:{self.team_id}:{self.channel}:{self.ts}"

    def dedupe_keys(self) -> list[str]:
        """The names one delivery is known by: its event id and the message's channel + ts."""
        return [f"event:{self.event_id}", self.message_key] if self.event_id else [self.message_key]


@dataclass(frozen=True)
class SlackCommand:
    """A slash command invocation (``/ask ...``)."""

    team_id: str
    channel: str
    user: str
    text: str
    command: str
    response_url: str = ""  # where to tell the asker something privately
    trigger_id: str = ""  # unique per invocation
    enterprise_id: str | None = None
    is_dm: bool = False

    @property
    def dedupe_key(self) -> str:
        return f"cmd:{self.team_id}:{self.trigger_id}"


def bot_user_id(body: dict[str, Any]) -> str | None:
    """The bot user the event was delivered to (Events API ``authorizations``), if any."""
    for authorization in body.get("authorizations") or []:
        if authorization.get("is_bot") and authorization.get("user_id"):
            return str(authorization["user_id"])
    return None


def mentions(text: str, user_id: str | None) -> bool:
    return bool(user_id) and re.search(rf"<@{re.escape(user_id)}(\|[^>]*)?>", text) is not None


def parse_event(body: dict[str, Any], *, bot_user: str | None = None) -> SlackQuestion | None:
    """The question in an ``event_callback`` body, or None when it is not one."""
    event = body.get("event") or {}
    parse = _PARSERS.get(event.get("type", ""))
    bot_user = bot_user or bot_user_id(body)
    if parse is None or not _written_by_a_person(event, bot_user):
        return None
    return parse(body, event, bot_user)


def parse_command(body: dict[str, Any]) -> SlackCommand:
    channel = str(body.get("channel_id", ""))
    return SlackCommand(
        team_id=str(body.get("team_id", "")),
        channel=channel,
        user=str(body.get("user_id", "")),
        text=str(body.get("text", "")),
        command=str(body.get("command", "")),
        response_url=str(body.get("response_url", "")),
        trigger_id=str(body.get("trigger_id") or uuid.uuid4().hex),  # always there; never let two collide
        enterprise_id=body.get("enterprise_id") or None,
        is_dm=channel.startswith("D") or body.get("channel_name") == "directmessage",
    )


def _written_by_a_person(event: dict[str, Any], bot_user: str | None) -> bool:
    if event.get("bot_id") or event.get("bot_profile") or not event.get("user"):
        return False  # any bot, including DocRag itself: never answer a bot (no reply loops)
    if bot_user and event.get("user") == bot_user:
        return False
    if event.get("subtype") not in _USER_SUBTYPES or event.get("hidden"):
        return False
    return "edited" not in event  # an edit re-delivers an old message; it was handled the first time


def _base(body: dict[str, Any], event: dict[str, Any], bot_user: str | None) -> dict[str, Any]:
    ts = str(event.get("ts", ""))
    thread_ts = str(event.get("thread_ts") or ts)
    text = str(event.get("text") or "")
    return {
        "team_id": str(body.get("team_id") or event.get("team") or ""),
        "enterprise_id": body.get("enterprise_id") or None,
        "channel": str(event.get("channel", "")),
        "user": str(event["user"]),
        "text": text,
        "ts": ts,
        "thread_ts": thread_ts,
        "event_id": str(body.get("event_id", "")),
        "in_thread": thread_ts != ts,
        "mentioned": mentions(text, bot_user),
    }


def _from_mention(body: dict[str, Any], event: dict[str, Any], bot_user: str | None) -> SlackQuestion | None:
    fields = _base(body, event, bot_user)
    fields["mentioned"] = True  # Slack says so, whatever the text looks like
    return SlackQuestion(**fields)


def _from_message(body: dict[str, Any], event: dict[str, Any], bot_user: str | None) -> SlackQuestion | None:
    fields = _base(body, event, bot_user)
    is_dm = event.get("channel_type") == "im" or fields["channel"].startswith("D")
    if not (is_dm or fields["mentioned"] or fields["in_thread"]):
        return None  # ordinary channel chatter: not for DocRag
    return SlackQuestion(**fields, is_dm=is_dm)


_PARSERS: dict[str, Callable[[dict[str, Any], dict[str, Any], str | None], SlackQuestion | None]] = {
    "app_mention": _from_mention,
    "message": _from_message,
}
