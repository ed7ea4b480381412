"""From a Slack delivery to an accepted question with its answer job queued.

The ack path does the minimum. Inside the request (before Slack gets its HTTP 200), after Bolt
verified the signature and timestamp, only one thing touches the database: ONE INSERT of a durable
*backstop* job that holds the delivery. Its queueing lock names the message, so a retry or a
double delivery arriving while it waits is refused by that same INSERT. Right after the ack, on a
lowered-priority thread (adapters/slack/afterack.py), the same process takes the delivery in hand:
is it for DocRag (the follow-up rule, which may read the conversation), claim it in the database
(retries and double deliveries stop here, in every process), hand the question to the lifecycle
(core/questions/lifecycle.py: validation, rate limits, storage, the placeholder, the answer job).
If the process died before doing so, the backstop job does it ~30 s later; if the process did
it, the backstop finds the claim taken and does nothing.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from adapters.slack.assistant_status import in_assistant_thread
from adapters.slack.assistant_threads import is_container_thread, title_once
from adapters.slack.delivery import where_of
from adapters.slack.events import PLATFORM, SlackCommand, SlackQuestion, parse_command
from adapters.slack.messages import post, respond, tell_user
from adapters.slack.queue import defer_intake, drop_intake
from adapters.slack.render import USAGE, render_notice, render_question
from adapters.slack.services import SlackServices
from core.errors import DocRagError, InvalidQuestion, NotFound
from core.questions.claims import AlreadyClaimed, claim, is_claimed, release
from core.questions.follow_up import Addressing

log = logging.getLogger(__name__)

CANNOT_POST = (
    "I can't post in this conversation. Invite me first (`/invite @DocRag`), "
    "or ask me in a direct message."
)
THANKS = {1: "Thanks! Your 👍 was recorded.", -1: "Thanks! Your 👎 was recorded; it helps improve the answers."}
EVENT, COMMAND = "event", "command"


class Intake:
    def __init__(self, services: SlackServices) -> None:
        self.services = services
        self.engine = services.engine

    # -- in the request: decide, hold durably, hand over --------------------------------------------
    def receive(self, question: SlackQuestion | None, client: WebClient) -> str:
        """Handle one message event before it is acknowledged; returns what happened (logs, tests).
        Only pure checks and one INSERT here: the follow-up rule's lookups wait until after the ack."""
        if question is None:
            return "ignored"
        payload = dataclasses.asdict(question)
        backstop = defer_intake(self.services.jobs, kind=EVENT, payload=payload, lock=question.message_key)
        if backstop is None:
            return "duplicate"  # a delivery of this message is already held
        self.services.after_ack.submit(self.take_in_hand, question, client, backstop)
        return "queued"

    def ask_command(self, ack: Callable[..., Any], body: dict[str, Any], client: WebClient) -> None:
        command = parse_command(body)
        if not command.text.strip():
            ack(text=USAGE)  # a command's ack text is shown to the asker only
            return
        try:
            self.engine.clean_question(command.text)
        except InvalidQuestion as exc:
            ack(text=str(exc))
            return
        backstop = defer_intake(self.services.jobs, kind=COMMAND, payload=dataclasses.asdict(command),
                                lock=command.dedupe_key)
        ack()
        self.services.after_ack.submit(self.take_in_hand, command, client, backstop)

    def _is_for_us(self, question: SlackQuestion) -> bool:
        return self.services.follow_ups.is_for_us(
            Addressing(question.key, direct=question.is_dm, mentioned=question.mentioned, in_thread=question.in_thread)
        )

    # -- after the ack (or from the backstop job) ---------------------------------------------------
    def take_in_hand(
        self, delivery: SlackQuestion | SlackCommand, client: WebClient, backstop: int | None, *, late: bool = False
    ) -> str:
        """Right after the ack: handle the delivery, then drop its backstop job (it was not needed).
        If this raises, the backstop stays queued and handles the delivery later (``late``)."""
        if isinstance(delivery, SlackQuestion):
            outcome = self.take_question(delivery, client, late=late) if self._is_for_us(delivery) else "ignored"
        else:
            outcome = self.take_command(delivery, client)
        if backstop is not None:
            drop_intake(self.services.jobs, backstop)
        return outcome

    def take_question(self, question: SlackQuestion, client: WebClient, *, late: bool = False) -> str:
        """Claim the delivery, then accept it. The question is stored with a ``handled`` mark in one
        transaction, so the backstop (``late``) can tell a delivery whose process died between the
        claim and the acceptance from one that was handled, and finish it."""
        keys = question.dedupe_keys()
        handled = f"handled:{question.message_key}"
        if not claim(self.services.sessions, PLATFORM, *keys):
            if not late or is_claimed(self.services.sessions, PLATFORM, handled):
                return "duplicate"
            log.warning("slack.taking_over_claimed_delivery message=%s", question.message_key)
        try:
            self._start_answer(question, once=handled, client=client)
        except AlreadyClaimed:
            return "duplicate"
        except DocRagError as exc:  # invalid, rate limited, no collection: the user is told why, once
            if claim(self.services.sessions, PLATFORM, handled):
                tell_user(client, channel=question.channel, user=question.user, thread_ts=question.thread_ts,
                          reply=render_notice(str(exc), emoji=":information_source:"), is_dm=question.is_dm)
            return "refused"
        except Exception:
            release(self.services.sessions, PLATFORM, *keys)  # leave it to the backstop job
            raise
        return "accepted"

    def take_command(self, command: SlackCommand, client: WebClient) -> str:
        if not claim(self.services.sessions, PLATFORM, command.dedupe_key):
            return "duplicate"
        # Slash commands cannot run in threads: post the question as the bot and answer under it.
        try:
            ts = post(client, command.channel, render_question(command.user, command.text))
        except SlackApiError as exc:
            log.info("slack.cannot_post channel=%s error=%s", command.channel, exc.response.get("error"))
            respond(command.response_url, CANNOT_POST)
            return "refused"
        question = SlackQuestion(team_id=command.team_id, enterprise_id=command.enterprise_id,
                                 channel=command.channel, user=command.user, text=command.text,
                                 ts=ts, thread_ts=ts, is_dm=command.is_dm)
        try:
            self._start_answer(question)
        except DocRagError as exc:
            client.chat_delete(channel=command.channel, ts=ts)  # keep the channel free of unanswered posts
            respond(command.response_url, str(exc))
            return "refused"
        return "accepted"

    def _start_answer(self, question: SlackQuestion, *, once: str | None = None, client: WebClient | None = None) -> int:
        """Accepted, placeholder shown, answer job queued (core/questions/lifecycle.py). In a thread
        of the AI-app container the status line stands for the placeholder and the thread is titled
        from its first question; a threaded reply in an ordinary DM (bolt's Assistant passes those
        on as assistant messages too) gets the ordinary placeholder (adapters/slack/assistant_threads.py)."""
        assistant = question.assistant and client is not None and is_container_thread(
            self.services.sessions, client, question.channel, question.thread_ts)
        where = in_assistant_thread(where_of(question)) if assistant else where_of(question)
        question_id = self.services.lifecycle.accept(question.key, question.text, where, once=once)
        log.info("slack.question_accepted question_id=%s session=%s assistant=%s", question_id, question.key, assistant)
        if assistant and client is not None:
            title_once(self.services.sessions, client, question.channel, question.thread_ts, question.text)
        return question_id

    # -- 👍 / 👎 ----------------------------------------------------------------------------------
    def feedback(self, ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any], score: int) -> None:
        try:
            self.engine.record_feedback(int(action.get("value", "")), platform=PLATFORM,
                                        user_id=body["user"]["id"], score=score)
            text = THANKS[score]
        except (NotFound, ValueError):
            text = "That answer no longer exists, so the feedback could not be recorded."
        ack()
        self.services.after_ack.submit(respond, str(body.get("response_url", "")), text)


def from_payload(kind: str, payload: dict[str, Any]) -> SlackQuestion | SlackCommand:
    """A delivery held by a backstop job, as it was in the request."""
    return SlackQuestion(**payload) if kind == EVENT else SlackCommand(**payload)
