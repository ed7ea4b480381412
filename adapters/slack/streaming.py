"""Stream an answer into a Slack thread as the model writes it (chat.startStream/appendStream/stopStream).

    streamer = SlackStreamer(client, StreamTarget(channel, thread_ts, user_id, team_id, placeholder_ts))
    answer = streamer.deliver(engine.answer_stream(question_id))

The first words start the stream (and the "Searching the docs…" placeholder, if any, is removed);
later words are appended at most once per ``interval_s``; the stop adds the sources and Slack's
``feedback_buttons``. Whatever goes wrong on Slack's side, the thread ends with exactly one
complete answer:

- the stream cannot start (a workspace or token without streaming, a refused call): today's
  post-then-replace, the placeholder replaced by the finished answer;
- an append or the stop is refused (the stream expired, ``message_not_in_streaming_state``,
  ``msg_too_long``, ...): nothing more is appended, and the streamed message is replaced by the
  finished answer with ``chat.update`` (a new message if it is gone);
- the finished text is not what was streamed (a model stream retried in other words): replaced too;
- the model fails mid-answer: the streamed message (or the placeholder) is replaced by the apology
  and the error re-raised for the caller's bookkeeping;
- the user pressed stop (``stopped_by_user``): their choice stands, nothing more is written.

An answer that is ready at once (the extract, "not covered") is not streamed: post-then-replace.
Text an append could not deliver stays pending and goes out with the next call, so nothing is lost
and nothing is sent twice.
"""
from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from adapters.slack import messages
from adapters.slack.render import Reply, _sources_block, render_answer, render_apology
from core.answers.edit_buffer import EditBuffer
from core.errors import UpstreamUnavailable
from core.types import Answer

log = logging.getLogger(__name__)

FEEDBACK_BUTTONS = "docrag_feedback_buttons"  # the feedback_buttons element's action_id
INTERVAL_S = 1.0  # appendStream is tier 4 (100+/min): one a second per answer leaves room for many answers
MAX_APPEND_CHARS = 11_000  # Slack takes at most 12,000 characters of markdown_text per call
_TRANSIENT = frozenset({"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
                        "request_timeout"})


@dataclass(frozen=True)
class StreamTarget:
    channel: str
    thread_ts: str
    user_id: str | None = None  # the asker: Slack requires recipient user and team in channels
    team_id: str | None = None
    placeholder_ts: str | None = None  # today's "Searching the docs…" message, if one was posted


class SlackStreamer:
    def __init__(self, client: WebClient, target: StreamTarget, *, interval_s: float = INTERVAL_S,
                 on_started: Callable[[str], None] | None = None) -> None:
        self.client = client
        self.target = target
        self.on_started = on_started  # told the streamed message's ts before the placeholder goes
        self.ts: str | None = None  # the streamed message, once started
        self.streaming = False  # appends are still accepted
        self.user_stopped = False
        self.gave_up = False  # streaming failed: the finished answer replaces or is posted
        self.calls = 0  # Slack API calls made for this answer (start, appends, stop, update/post)
        self.buffer = EditBuffer(self._send, interval_s=interval_s, max_pending_chars=MAX_APPEND_CHARS)

    def deliver(self, stream: Generator[str, None, Answer]) -> Answer:
        try:
            while True:
                try:
                    piece = next(stream)
                except StopIteration as done:
                    answer: Answer = done.value
                    break
                self.buffer.add(piece)
        except UpstreamUnavailable as exc:
            self.fail(render_apology(exc.reference))
            raise
        self.finish(answer)
        return answer

    # -- the steps, for callers that drive them themselves ------------------------------------------
    def add(self, piece: str) -> None:
        self.buffer.add(piece)

    def finish(self, answer: Answer) -> None:
        if self.user_stopped:
            return
        if self.ts is None or self.gave_up:
            self._replace_or_post(render_answer(answer))
            return
        rest = answer.text[len(self.buffer.sent):] if answer.text.startswith(self.buffer.sent) else None
        if rest is not None and self._stop(rest, _final_blocks(answer)):
            return
        self._replace_or_post(render_answer(answer))  # stop refused, or the text changed: one full answer

    def settle(self, answer: Answer | None) -> bool:
        """Finish for the question lifecycle, which posts and replaces itself: True when the stream
        now holds the finished ``answer`` (or the user stopped it); False when the lifecycle must
        replace the streamed message or the placeholder (nothing streamed, refused, text changed,
        or no answer: an apology). A stream still open is stopped first, so it can be replaced."""
        if self.user_stopped:
            return True
        if self.ts is None:
            return False
        if answer is not None and not self.gave_up:
            sent = self.buffer.sent
            if answer.text.startswith(sent) and self._stop(answer.text[len(sent):], _final_blocks(answer)):
                return True
        if self.streaming:
            self._stop("", None)
        return False

    def fail(self, apology: Reply) -> None:
        """Put the apology in place of whatever was shown."""
        if self.user_stopped:
            return
        if self.streaming:
            self._stop("", None)
        self._replace_or_post(apology)

    # -- Slack calls ---------------------------------------------------------------------------
    def _send(self, new: str, _full: str) -> bool:
        if self.user_stopped or self.gave_up:
            return True  # nothing more is shown; the finished answer settles it
        if self.ts is None:
            return self._start(new)
        return self._call("chat_appendStream", channel=self.target.channel, ts=self.ts, markdown_text=new)

    def _start(self, text: str) -> bool:
        started = self._call(
            "chat_startStream", channel=self.target.channel, thread_ts=self.target.thread_ts, markdown_text=text,
            recipient_user_id=self.target.user_id, recipient_team_id=self.target.team_id,
        )
        if started and self.on_started is not None and self.ts is not None:
            try:
                self.on_started(self.ts)
            except Exception:  # the answer still arrives; only a crash now would leave the partial one
                log.warning("slack.stream_not_remembered ts=%s", self.ts, exc_info=True)
        if started and self.target.placeholder_ts:
            self._delete_placeholder()
        return started

    def _stop(self, text: str, blocks: list[dict[str, Any]] | None) -> bool:
        stopped = self._call(
            "chat_stopStream", channel=self.target.channel, ts=self.ts, markdown_text=text or None, blocks=blocks,
        )
        self.streaming = False
        return stopped

    def _call(self, method: str, **kwargs: Any) -> bool:
        """One stream call; False when Slack refused it (then streaming ends, except for a
        transient refusal: the text stays pending for the next call)."""
        self.calls += 1
        try:
            response = getattr(self.client, method)(**{k: v for k, v in kwargs.items() if v is not None})
        except SlackApiError as exc:
            error = str(exc.response.get("error", ""))
            log.warning("slack.stream_refused method=%s error=%s", method, error)
            if error == "stopped_by_user":
                self.user_stopped = True
                self.streaming = False
            elif error not in _TRANSIENT or method == "chat_startStream":
                self.gave_up = True
                self.streaming = False
            return False
        except SlackClientError as exc:  # the connection failed: treat as transient
            log.warning("slack.stream_failed method=%s error=%s", method, type(exc).__name__)
            return False
        if method == "chat_startStream":
            self.ts, self.streaming = str(response["ts"]), True
        return True

    def _delete_placeholder(self) -> None:
        try:
            self.client.chat_delete(channel=self.target.channel, ts=self.target.placeholder_ts)
        except SlackApiError as exc:
            log.info("slack.placeholder_not_deleted error=%s", exc.response.get("error"))

    def _replace_or_post(self, reply: Reply) -> None:
        """Today's post-then-replace: the streamed message, else the placeholder, else a new reply."""
        self.calls += 1
        for ts in (self.ts, self.target.placeholder_ts if self.ts is None else None):
            if ts and messages.replace(self.client, self.target.channel, ts, reply):
                return
        messages.post(self.client, self.target.channel, reply, thread_ts=self.target.thread_ts)


def _final_blocks(answer: Answer) -> list[dict[str, Any]]:
    blocks = [_sources_block(answer.citations)] if answer.citations else []
    if answer.message_id is not None:
        blocks.append(feedback_block(answer.message_id))
    return blocks


def feedback_block(message_id: int) -> dict[str, Any]:
    """Slack's feedback_buttons (inside a context_actions block), tied to the stored answer."""

    def button(label: str, value: str, spoken: str) -> dict[str, Any]:
        return {"text": {"type": "plain_text", "text": label}, "value": value, "accessibility_label": spoken}

    return {
        "type": "context_actions",
        "block_id": f"docrag_feedback_{message_id}",
        "elements": [{
            "type": "feedback_buttons",
            "action_id": FEEDBACK_BUTTONS,
            "positive_button": button("👍", f"up:{message_id}", "This answer helped"),
            "negative_button": button("👎", f"down:{message_id}", "This answer did not help"),
        }],
    }


def feedback_from_action(action: dict[str, Any]) -> tuple[int, int] | None:
    """(answer message id, +1/-1) from a feedback_buttons click's action, or None if it is not one."""
    if action.get("action_id") != FEEDBACK_BUTTONS:
        return None
    kind, _, message_id = str(action.get("value", "")).partition(":")
    if kind not in ("up", "down") or not message_id.isdigit():
        return None
    return int(message_id), 1 if kind == "up" else -1
