"""Slack's delivery port for the question lifecycle (core/questions/ports.py).

A question's ``Where`` holds the workspace, channel and thread; the placeholder is the ts of the
"Searching the docs…" message. Clients come from the workspace's bot token, so any worker can
deliver, whichever process accepted the question.
"""
from __future__ import annotations

from adapters.slack.clients import SlackClients
from adapters.slack.events import PLATFORM, SlackQuestion
from adapters.slack.messages import post, post_placeholder, replace
from adapters.slack.render import Reply as SlackMessage
from adapters.slack.render import render_answer, render_apology, render_notice
from core.questions.values import Apology, Notice, NoticeKind, Reply, Where
from core.types import Answer


def where_of(question: SlackQuestion) -> Where:
    fields = {"team": question.team_id, "channel": question.channel, "thread_ts": question.thread_ts}
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
        return replace(self._client(where), where["channel"], placeholder, render(reply))

    def post(self, where: Where, reply: Reply) -> None:
        post(self._client(where), where["channel"], render(reply), thread_ts=where["thread_ts"])

    def _client(self, where: Where):  # type: ignore[no-untyped-def]
        return self.clients.for_team(where["team"], where.get("enterprise"))
