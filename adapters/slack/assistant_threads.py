"""Which DM threads are threads of Slack's AI-app container, and their titles.

bolt's ``Assistant`` treats *every* person's threaded ``message.im`` as an assistant message
(``is_user_message_event_in_assistant_thread`` checks only ``thread_ts``), so a follow-up in the
thread of an ordinary DM answer arrives there too. Only a thread Slack opened in the container
announces itself, with ``assistant_thread_started``: that event is remembered (a claim on the
thread), and a threaded DM is answered as an assistant thread (status line, title) only when its
thread was so announced, or its root message has the subtype ``assistant_app_thread`` (which
Slack gives the root of every thread opened in the container); otherwise it gets the ordinary
placeholder flow. See docs/slack-assistant.md for why.

Titles: ``assistant.threads.setTitle(channel_id, thread_ts, title)`` names the thread in the
container's history; DocRag sets it once per thread, from the thread's first accepted question.
Slack documents no length limit, so the title is kept short by choice (``TITLE_MAX`` characters,
cut at a word boundary).
"""
from __future__ import annotations

import logging
import re

from slack_sdk import WebClient

from adapters.slack.events import PLATFORM
from core.questions.claims import claim, is_claimed, release

log = logging.getLogger(__name__)

ASSISTANT_ROOT_SUBTYPE = "assistant_app_thread"  # the root message of a thread opened in the container
TITLE_MAX = 60  # the container's history lists titles on one line
_MENTION = re.compile(r"<@[A-Z0-9]+>")


def _thread_key(channel: str, thread_ts: str) -> str:
    return f"assistant-thread:{channel}:{thread_ts}"


def remember_thread(sessions, channel: str, thread_ts: str) -> None:  # type: ignore[no-untyped-def]
    """``assistant_thread_started`` came for this thread: it is a thread of the container."""
    claim(sessions, PLATFORM, _thread_key(channel, thread_ts))


def is_container_thread(sessions, client: WebClient, channel: str, thread_ts: str) -> bool:  # type: ignore[no-untyped-def]
    """Was this DM thread opened in the container? Remembered from its ``assistant_thread_started``;
    else (the event was missed, or its claim pruned after a week) its root message tells: Slack
    gives it the subtype ``assistant_app_thread``. Unknown (an API or database error): False, the
    ordinary placeholder, which works in either kind of thread."""
    try:
        if is_claimed(sessions, PLATFORM, _thread_key(channel, thread_ts)):
            return True
        replies = client.conversations_replies(channel=channel, ts=thread_ts, limit=1)
        root = (replies.get("messages") or [{}])[0]
        if root.get("subtype") != ASSISTANT_ROOT_SUBTYPE:
            return False
        remember_thread(sessions, channel, thread_ts)
        return True
    except Exception as exc:
        log.info("slack.assistant_thread_unknown channel=%s error=%s", channel, type(exc).__name__)
        return False


def thread_title(question: str, limit: int = TITLE_MAX) -> str:
    """The question on one line, at most ``limit`` characters, cut between words ("…" when cut)."""
    text = " ".join(_MENTION.sub("", question).split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut and text[limit - 1] != " ":
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.-") + "…"


def title_once(sessions, client: WebClient, channel: str, thread_ts: str, question: str) -> bool:  # type: ignore[no-untyped-def]
    """Title the thread from its first question; True when this call set it. A title is a nicety:
    a failure is logged (and the next question may try again), never raised."""
    title = thread_title(question)
    key = f"assistant-title:{channel}:{thread_ts}"
    claimed = False
    try:
        claimed = bool(title) and claim(sessions, PLATFORM, key)
        if claimed:
            client.assistant_threads_setTitle(channel_id=channel, thread_ts=thread_ts, title=title)
        return claimed
    except Exception as exc:  # refused, rate limited, network, the database
        log.info("slack.assistant_title_failed channel=%s error=%s", channel, type(exc).__name__)
        if claimed:
            try:
                release(sessions, PLATFORM, key)
            except Exception:
                log.warning("slack.assistant_title_claim_kept channel=%s", channel, exc_info=True)
        return False
