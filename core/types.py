"""Values that cross layers: what adapters hand the engine and what it hands back."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SessionKey:
    """Identifies one conversation: a thread on one platform.

    ``workspace`` is a Slack team id, a Discord guild id, or a name such as ``cli``;
    ``thread`` is the thread's root id (Slack ``thread_ts``, Discord thread id, a CLI name).
    ``user`` is who asks now; it takes part in rate limits, not in the conversation's identity.
    ``address`` is the client's network address where a door knows it (the playground, whose user
    id is only a cookie); it is rate-limited too, and never stored with the conversation.
    """

    platform: str
    workspace: str
    channel: str
    thread: str
    user: str = ""
    address: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"{self.platform}:{self.workspace}:{self.channel}:{self.thread}"


@dataclass(frozen=True)
class Citation:
    """A numbered source the answer refers to as ``[n]``."""

    n: int
    title: str
    source: str  # a link: URL (with #anchor where known) or file URI
    heading: str = ""


@dataclass(frozen=True)
class Passage:
    """A retrieved piece of a document, ready to show or to put into a prompt."""

    chunk_id: int
    document_id: int
    title: str
    heading: str
    source: str
    text: str
    score: float


@dataclass(frozen=True)
class Answer:
    text: str
    citations: list[Citation] = field(default_factory=list)
    grounded: bool = True  # False when the documents did not cover the question
    message_id: int | None = None  # the stored assistant message, for feedback
    timings_ms: dict[str, float] = field(default_factory=dict)
