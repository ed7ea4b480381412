"""Slack threads that end well become learned answers (core/ingest/learned_jobs.py).

Three signals, each turned into a durable learning job inside the request (a quick insert):
- a 👍 on DocRag's answer: its "Helpful" button (or the streaming feedback_buttons), or a 👍
  reaction on the answer message;
- a ✅ reaction (white_check_mark, heavy_check_mark, ballot_box_with_check) by a person on the
  answer or on the question that opened the thread;
- a thread reply that is just ``resolved`` (optionally after a mention of DocRag). Slack runs no
  custom slash command inside a thread, so a word in the thread is the command.
The job asks Slack (``SlackThreadFacts``) whether the conversation is private, the channel's
name, a permalink to the thread and who confirmed it.

These listeners are registered before the others: Bolt runs the first listener that matches, so a
``resolved`` reply is never taken for a follow-up question, and the feedback middleware sees
every click before the feedback listener records it.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Callable

from slack_bolt import App, BoltContext
from slack_sdk.errors import SlackApiError

from adapters.slack.clients import SlackClients
from adapters.slack.events import PLATFORM, bot_user_id
from adapters.slack.render import FEEDBACK_UP
from adapters.slack.services import SlackServices
from adapters.slack.streaming import feedback_from_action
from core.ingest.learned import Learned
from core.ingest.learned_jobs import Confirmation, ThreadFacts, defer_learning, now_iso
from core.ingest.learned_threads import AcceptedAnswer, Target

log = logging.getLogger(__name__)

THUMBS_UP = frozenset({"+1", "thumbsup"})
RESOLVED_REACTIONS = frozenset({"white_check_mark", "heavy_check_mark", "ballot_box_with_check"})
TOLD = {
    Learned.LEARNED: "Thanks! I'll keep this answer for the next person who asks, cited as this thread.",
    Learned.PRIVATE: "Noted. Answers from private conversations are never shared with the whole workspace, "
                     "so I won't keep this one.",
    Learned.TURNED_OFF: "Noted. Learning from resolved threads is turned off in this channel.",
    Learned.NOT_COVERED: "Noted. The answer here did not come from the documentation, so there is nothing to keep.",
}
RESOLVED_TEXT = re.compile(r"^\s*(?:<@[A-Z0-9]+(?:\|[^>]*)?>\s*)?resolved\s*[.!]*\s*$", re.IGNORECASE)


# -- what counts (pure) ----------------------------------------------------------------------------
def helpful_answer_id(action: dict[str, Any]) -> int | None:
    """The answer a click called helpful, or None for any other click."""
    if action.get("action_id") == FEEDBACK_UP:
        value = str(action.get("value", ""))
        return int(value) if value.isdigit() else None
    found = feedback_from_action(action)
    return found[0] if found is not None and found[1] > 0 else None


def reaction_confirmation(body: dict[str, Any], bot_user: str | None) -> Confirmation | None:
    event = body.get("event") or {}
    item = event.get("item") or {}
    name = str(event.get("reaction", "")).split("::", 1)[0]  # "+1::skin-tone-3"
    user = str(event.get("user", ""))
    if item.get("type") != "message" or not user or user == bot_user:
        return None
    channel, ts, team = str(item.get("channel", "")), str(item.get("ts", "")), _team(body)
    if name in THUMBS_UP:  # a 👍 counts on DocRag's answer only
        target = Target(PLATFORM, team, channel, placeholder=ts, placeholder_channel=channel)
    elif name in RESOLVED_REACTIONS:  # on the answer, or on the question that opened the thread
        target = Target(PLATFORM, team, channel, placeholder=ts, placeholder_channel=channel, thread=ts)
    else:
        return None
    return Confirmation(target, user, "thumbs_up" if name in THUMBS_UP else "reaction", now_iso())


def resolved_confirmation(body: dict[str, Any], bot_user: str | None) -> Confirmation | None:
    """A person's thread reply saying ``resolved``; None for anything else."""
    event = body.get("event") or {}
    text, ts, thread_ts = str(event.get("text") or ""), event.get("ts"), event.get("thread_ts")
    if not thread_ts or thread_ts == ts or not RESOLVED_TEXT.match(text):
        return None
    user = str(event.get("user") or "")
    if not user or user == bot_user or event.get("bot_id") or event.get("subtype"):
        return None
    channel = str(event.get("channel", ""))
    return Confirmation(Target(PLATFORM, _team(body), channel, thread=str(thread_ts)), user, "resolved", now_iso())


def _team(body: dict[str, Any]) -> str:
    return str(body.get("team_id") or (body.get("team") or {}).get("id") or "")


# -- the listeners -----------------------------------------------------------------------------------
def register_learning(app: App, services: SlackServices) -> None:
    def queue(confirmation: Confirmation | None) -> None:
        if confirmation is not None and defer_learning(services.jobs, confirmation):
            log.info("slack.learning_queued how=%s target=%s", confirmation.how, confirmation.target)

    @app.middleware
    def learn_from_helpful_clicks(body: dict[str, Any], next: Callable[[], Any]) -> Any:
        if body.get("type") == "block_actions":
            for action in body.get("actions") or []:
                answer_id = helpful_answer_id(action)
                if answer_id is None:
                    continue
                channel = str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id", ""))
                try:
                    queue(Confirmation(Target(PLATFORM, _team(body), channel, answer_id=answer_id),
                                       str((body.get("user") or {}).get("id", "")), "thumbs_up", now_iso()))
                except Exception:  # the click's own feedback must still be recorded and acknowledged
                    log.exception("slack.learning_not_queued answer_id=%s", answer_id)
        return next()

    @app.event("reaction_added")
    def reaction_added(body: dict[str, Any], context: BoltContext) -> None:
        queue(reaction_confirmation(body, context.bot_user_id or bot_user_id(body)))

    def says_resolved(body: dict[str, Any], context: BoltContext) -> bool:
        return resolved_confirmation(body, context.bot_user_id or bot_user_id(body)) is not None

    @app.event("message", matchers=[says_resolved])
    @app.event("app_mention", matchers=[says_resolved])
    def resolved(body: dict[str, Any], context: BoltContext) -> None:
        queue(resolved_confirmation(body, context.bot_user_id or bot_user_id(body)))


# -- in the job: what Slack knows about the thread ------------------------------------------------------
class SlackThreadFacts:
    """The facts a learned document needs, from the Web API. Any doubt about privacy (Slack
    refused ``conversations.info``, e.g. a missing ``groups:read`` scope) counts as private."""

    def __init__(self, clients: SlackClients) -> None:
        self.clients = clients

    def facts(self, confirmation: Confirmation, answer: AcceptedAnswer) -> ThreadFacts:
        client = self.clients.for_team(answer.key.workspace)
        channel, thread_ts = answer.key.channel, answer.key.thread
        try:
            info = client.conversations_info(channel=channel)["channel"]
            private = bool(info.get("is_private") or info.get("is_im") or info.get("is_mpim"))
            name = str(info.get("name") or channel)
        except SlackApiError as exc:
            log.warning("slack.learning_channel_unknown channel=%s error=%s", channel, exc.response.get("error"))
            private, name = True, channel
        private = private or channel.startswith(("D", "G"))  # DMs and legacy private groups, whatever Slack said
        return ThreadFacts(name, private, self._permalink(client, channel, thread_ts), self._name(client, confirmation.user))

    def tell(self, confirmation: Confirmation, answer: AcceptedAnswer, outcome: Learned) -> None:
        """An ephemeral note in the thread, to the person who marked it resolved."""
        client = self.clients.for_team(answer.key.workspace)
        client.chat_postEphemeral(channel=answer.key.channel, user=confirmation.user, thread_ts=answer.key.thread,
                                  text=TOLD[outcome])

    @staticmethod
    def _permalink(client: Any, channel: str, ts: str) -> str:
        try:
            return str(client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"])
        except SlackApiError:  # the standard archive URL opens the same thread for anyone in the workspace
            return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"

    @staticmethod
    def _name(client: Any, user: str) -> str:
        try:
            found = client.users_info(user=user)["user"]
        except SlackApiError:
            return user
        profile = found.get("profile") or {}
        return str(profile.get("display_name") or profile.get("real_name") or found.get("real_name") or found.get("name") or user)
