"""Slack's AI-app container through bolt's ``Assistant`` middleware (docs/slack-assistant.md).

- ``assistant_thread_started``: the new thread offers 3-4 suggested prompts taken from the
  workspace's collection (core/questions/suggestions.py: the most asked questions, then the
  largest documents' titles).
- a user's message in the thread: the same intake as any DM (claim, durable backstop, the
  lifecycle's answer job, one answer), marked as an assistant message; in a thread Slack opened
  in the container (remembered from ``assistant_thread_started``) the delivery path shows the
  status line instead of a placeholder (adapters/slack/assistant_status.py) and the first question
  titles the thread; a threaded reply in an ordinary DM keeps the placeholder
  (adapters/slack/assistant_threads.py). Follow-ups are replies in the same thread, so they carry
  its history as any thread does.
- ``assistant_thread_context_changed``: acknowledged and nothing else. DocRag answers from the
  workspace's collection whatever channel the user is looking at, so the context is not needed;
  bolt's default handler would store it with Slack API calls inside the request instead.

As everywhere in this adapter, Slack API calls run after the ack (``services.after_ack``).
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable

from slack_bolt import Assistant, BoltContext, SetSuggestedPrompts
from slack_sdk import WebClient

from adapters.slack.assistant_threads import remember_thread
from adapters.slack.events import parse_event
from adapters.slack.intake import Intake
from core.questions.suggestions import SuggestedPrompt

log = logging.getLogger(__name__)

PROMPTS_TITLE = "Ask the documentation"
MIN_PROMPTS = 3  # fewer than this from the collection: none at all rather than a thin list
MAX_PROMPTS = 4  # Slack shows up to four (assistant.threads.setSuggestedPrompts)

PromptSource = Callable[[str, str | None], list[SuggestedPrompt]]  # (team, enterprise) -> prompts


def build_assistant(intake: Intake, prompts_for: PromptSource) -> Assistant:
    assistant = Assistant()

    @assistant.thread_started
    def thread_started(body: dict[str, Any], payload: dict[str, Any], set_suggested_prompts: SetSuggestedPrompts) -> None:
        team = str(body.get("team_id") or "")
        enterprise = body.get("enterprise_id") or None
        thread = payload.get("assistant_thread") or {}
        intake.services.after_ack.submit(open_thread, intake, thread, prompts_for, team, enterprise,
                                         set_suggested_prompts)

    @assistant.user_message
    def user_message(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        question = parse_event(body, bot_user=context.bot_user_id)
        if question is not None:
            question = dataclasses.replace(question, assistant=True)
        intake.receive(question, client)

    @assistant.thread_context_changed
    def context_changed(payload: dict[str, Any]) -> None:
        thread = payload.get("assistant_thread") or {}
        log.debug("slack.assistant_context_changed channel=%s", thread.get("channel_id"))

    return assistant


def open_thread(intake: Intake, thread: dict[str, Any], prompts_for: PromptSource, team: str,
                enterprise: str | None, set_suggested_prompts: SetSuggestedPrompts) -> int:
    """After the ack: remember that Slack opened this thread in the container (its questions get
    the status line and a title, adapters/slack/assistant_threads.py), then offer the prompts."""
    try:
        remember_thread(intake.services.sessions, str(thread.get("channel_id") or ""), str(thread.get("thread_ts") or ""))
    except Exception:  # the database: the thread's questions get placeholders instead of the status line
        log.warning("slack.assistant_thread_not_remembered channel=%s", thread.get("channel_id"), exc_info=True)
    return offer_prompts(prompts_for, team, enterprise, set_suggested_prompts)


def offer_prompts(
    prompts_for: PromptSource, team: str, enterprise: str | None, set_suggested_prompts: SetSuggestedPrompts
) -> int:
    """Set the thread's suggested prompts; how many were offered."""
    prompts = prompts_for(team, enterprise)[:MAX_PROMPTS]
    if len(prompts) < MIN_PROMPTS:
        log.info("slack.assistant_no_prompts team=%s found=%s", team, len(prompts))
        return 0
    set_suggested_prompts(prompts=[{"title": p.title, "message": p.message} for p in prompts], title=PROMPTS_TITLE)
    return len(prompts)
