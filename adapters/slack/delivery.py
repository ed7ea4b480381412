"""Slack's delivery port for the question lifecycle (core/questions/ports.py).

A question's ``Where`` holds the workspace, channel and thread; the placeholder is the ts of the
"Searching the docs…" message. Clients come from the workspace's bot token, so any worker can
deliver, whichever process accepted the question.
"""
from __future__ import annotations

import logging
from typing import Callable

from slack_sdk.errors import SlackApiError

from adapters.slack.clients import SlackClients
from adapters.slack.events import PLATFORM, SlackQuestion
from adapters.slack.messages import post, post_placeholder, replace
from adapters.slack.render import Reply as SlackMessage
from adapters.slack.render import render_answer, render_apology, render_notice
from adapters.slack.streaming import SlackStreamer, StreamTarget
from core.questions.values import Apology, Notice, NoticeKind, Reply, Where
from core.types import Answer

log = logging.getLogger(__name__)

STREAMED = "stream:"  # a placeholder that is a streamed message (chat.startStream), not a posted one


def where_of(question: SlackQuestion) -> Where:
    fields = {"team": question.team_id, "channel": question.channel, "thread_ts": question.thread_ts,
              "user": question.user}  # the stream's recipient (Slack requires one outside DMs)
    if question.enterprise_id:
        fields["enterprise"] = question.enterprise_id
    return Where(PLATFORM, fields)


def render(reply: Reply) -> SlackMessage:
    if isinstance(reply, Answer):
        return render_answer(reply)
    if isinstance(reply, Apology):
        return render_apology(reply.reference, reply.reason)
    assert isinstance(reply, Notice)
    return render_notice(reply.text, emoji=":hourglass:" if reply.kind is NoticeKind.LIMIT else ":warning:")


class SlackDelivery:
    platform = PLATFORM

    def __init__(self, clients: SlackClients) -> None:
        self.clients = clients

    def post_placeholder(self, where: Where) -> str | None:
        return post_placeholder(self._client(where), where["channel"], where["thread_ts"])

    def replace(self, where: Where, placeholder: str, reply: Reply) -> bool:
        client = self._client(where)
        if placeholder.startswith(STREAMED):  # a stream cut short (a crash): end it, then replace it
            placeholder = placeholder[len(STREAMED):]
            try:
                client.chat_stopStream(channel=where["channel"], ts=placeholder)
            except SlackApiError as exc:  # already stopped, or expired: it can be replaced all the same
                log.info("slack.stale_stream_not_stopped error=%s", exc.response.get("error"))
        return replace(client, where["channel"], placeholder, render(reply))

    def open_stream(self, where: Where, placeholder: str | None, remember: Callable[[str], None]) -> SlackLive | None:
        if placeholder and placeholder.startswith(STREAMED):
            return None  # a recovery: the finished answer replaces the partial stream in one edit
        target = StreamTarget(where["channel"], where["thread_ts"], user_id=where.get("user"),
                              team_id=where.get("team"), placeholder_ts=placeholder)
        return SlackLive(SlackStreamer(self._client(where), target, on_started=lambda ts: remember(STREAMED + ts)))

    def post(self, where: Where, reply: Reply) -> None:
        post(self._client(where), where["channel"], render(reply), thread_ts=where["thread_ts"])

    def _client(self, where: Where):  # type: ignore[no-untyped-def]
        return self.clients.for_team(where["team"], where.get("enterprise"))


class SlackLive:
    """The lifecycle's live reply on Slack: chat.startStream/appendStream/stopStream (streaming.py)."""

    def __init__(self, streamer: SlackStreamer) -> None:
        self.streamer = streamer

    def add(self, piece: str) -> None:
        self.streamer.add(piece)

    def finish(self, reply: Reply) -> bool:
        return self.streamer.settle(reply if isinstance(reply, Answer) else None)
