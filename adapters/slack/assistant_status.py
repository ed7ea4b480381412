"""The status line of Slack's AI-app container ("DocRag is searching the docs…"), shown through
the delivery path: a decorator around the Slack delivery port.

In an assistant thread (its ``Where`` says so), the lifecycle's placeholder becomes the status
"is searching the docs…" and no placeholder message is posted: Slack clears a thread's status
automatically when the app posts a reply (docs.slack.dev, assistant.threads.setStatus), so a
"Searching…" message would wipe the status at once. The answer is then posted once, under the
lifecycle's ``reply:`` claim. The status becomes "is writing…" when the search is done
(``writing``), and is cleared (an empty status) when the answer has landed. A status that cannot be
set never costs the answer. Everywhere else the wrapped port is used unchanged.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable

from slack_sdk.errors import SlackApiError

from adapters.slack.clients import SlackClients
from core.questions.ports import DeliveryPort, LiveReply
from core.questions.values import Reply, Where

log = logging.getLogger(__name__)

SEARCHING = "is searching the docs…"  # Slack shows "<App name> is searching the docs…"
WRITING = "is writing…"
CLEARED = ""  # an empty status clears the indicator
ASSISTANT_FIELD = "assistant"


def in_assistant_thread(where: Where) -> Where:
    return dataclasses.replace(where, fields={**where.fields, ASSISTANT_FIELD: "1"})


def is_assistant_thread(where: Where) -> bool:
    return where.get(ASSISTANT_FIELD) == "1"


class AssistantStatusDelivery:
    """``port`` (SlackDelivery), with the status line in assistant threads."""

    def __init__(self, port: DeliveryPort, clients: SlackClients) -> None:
        self.port = port
        self.clients = clients
        self.platform = port.platform

    def post_placeholder(self, where: Where) -> str | None:
        if not is_assistant_thread(where):
            return self.port.post_placeholder(where)
        self.set_status(where, SEARCHING)
        return None

    def writing(self, where: Where) -> None:
        if is_assistant_thread(where):
            self.set_status(where, WRITING)

    def replace(self, where: Where, placeholder: str, reply: Reply) -> bool:
        replaced = self.port.replace(where, placeholder, reply)  # in the container: a stream cut short
        if replaced and is_assistant_thread(where):
            self.set_status(where, CLEARED)
        return replaced

    def open_stream(self, where: Where, placeholder: str | None, remember: Callable[[str], None]) -> LiveReply | None:
        """Stated, not reached through ``__getattr__``: the lifecycle's ``isinstance(port, StreamingPort)``
        only sees methods on the class from Python 3.12 on. In the container the stream starts with no
        placeholder (chat.startStream in the assistant thread); its first message clears the status."""
        live = self.port.open_stream(where, placeholder, remember)  # type: ignore[attr-defined]
        if live is None or not is_assistant_thread(where):
            return live
        return AssistantLive(live, lambda: self.set_status(where, CLEARED))

    def post(self, where: Where, reply: Reply) -> None:
        self.port.post(where, reply)
        if is_assistant_thread(where):
            self.set_status(where, CLEARED)  # Slack clears it on the reply too; this says so explicitly

    def set_status(self, where: Where, status: str) -> None:
        """Never raises: after the answer is posted, a failure here must not make the job post it again."""
        try:
            client = self.clients.for_team(where["team"], where.get("enterprise"))
            client.assistant_threads_setStatus(channel_id=where["channel"], thread_ts=where["thread_ts"], status=status)
        except SlackApiError as exc:
            log.info("slack.assistant_status_refused channel=%s status=%r error=%s",
                     where["channel"], status, exc.response.get("error"))
        except Exception:
            log.warning("slack.assistant_status_failed channel=%s status=%r", where["channel"], status, exc_info=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.port, name)  # whatever else the Slack port offers; protocol methods are stated above


class AssistantLive:
    """A streamed answer in the container; the status is cleared once the stream has stopped (Slack
    clears it on a posted reply, a stream is not guaranteed to count), never before: a refused stop
    falls back to a post, which clears it."""

    def __init__(self, live: LiveReply, clear_status: Callable[[], None]) -> None:
        self.live = live
        self.clear_status = clear_status

    def add(self, piece: str) -> None:
        self.live.add(piece)

    def finish(self, reply: Reply) -> bool:
        finished = self.live.finish(reply)
        if finished:
            self.clear_status()
        return finished
