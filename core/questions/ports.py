"""What each chat platform provides the lifecycle: a small delivery port.

A port is built from settings alone (tokens, API URLs), so a worker in any process can deliver
a question accepted by another one that has since died. Every call is given the question's
``Where`` (stored with it) rather than live platform objects.
"""
from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

from core.questions.values import Reply, Where


@runtime_checkable
class DeliveryPort(Protocol):
    platform: str

    def post_placeholder(self, where: Where) -> str | None:
        """Show that the question was heard ("Searching the docs…"); the placeholder's reference
        (stored, so the answer replaces it even after a restart), or None if it could not be shown."""

    def replace(self, where: Where, placeholder: str, reply: Reply) -> bool:
        """Replace the placeholder with ``reply``: safe to repeat (the same content again).
        False when the placeholder is gone (deleted by someone)."""

    def post(self, where: Where, reply: Reply) -> None:
        """Post ``reply`` as a new message in the question's thread (no placeholder to replace)."""

    # Optional: ``writing(where) -> None``, called once the search is done and the answer is being
    # written (Slack's assistant status line, adapters/slack/assistant_status.py). A port without
    # it is not asked; a failure in it is logged and the answer goes on (lifecycle._writing_hook).


class LiveReply(Protocol):
    """An answer shown while the model writes it (issue 12), in the question's thread."""

    def add(self, piece: str) -> None:
        """More of the answer's text; the port decides when to show it (coalesced, within the
        platform's rate limits). Never raises for a platform error: the finished reply settles it."""

    def finish(self, reply: Reply) -> bool:
        """Put the finished ``reply`` in place of what was streamed. False when the port did not
        (nothing was streamed, streaming was refused, the text changed, an apology): the lifecycle
        then delivers ``reply`` as usual, replacing the reference the stream remembered."""


@runtime_checkable
class StreamingPort(Protocol):
    """A delivery port that can also stream (optional: the lifecycle checks with isinstance)."""

    def open_stream(self, where: Where, placeholder: str | None, remember: Callable[[str], None]) -> LiveReply | None:
        """A live reply for this delivery, or None where the port will not stream (for instance a
        recovery whose placeholder is a partly streamed message: the finished answer replaces it).
        ``remember(reference)`` stores the streamed message's reference as the placeholder, before
        the old one is removed, so a crash mid-stream still finds the message to replace."""
